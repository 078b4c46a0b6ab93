import FlashSaleCore

/// A row a store read, its columns read by name: each store's own row type, so that both
/// stores turn their rows into values with the one decoder below for each. A store's
/// SELECT names the columns as the decoder reads them (PostgreSQL's `user_id AS "user"`).
///
/// The names are literals: both stores' rows find a column by the literal's address once
/// it has been seen (`ColumnFinder`), a string compare saved on every read.
public protocol StoredRow {
    func text(_ column: StaticString) throws -> String
    func optionalText(_ column: StaticString) throws -> String?
    func int64(_ column: StaticString) throws -> Int64
    func optionalInt64(_ column: StaticString) throws -> Int64?
    func bool(_ column: StaticString) throws -> Bool
}

public func decodeSale(_ row: some StoredRow) throws -> Sale {
    guard let state = OperatorState(rawValue: try row.text("state")) else {
        throw StoreFailure.unusable(detail: "sale \(Quoted(try row.text("id"))) has the unknown state '\(Quoted(try row.text("state")))'")
    }
    return try Sale(
        id: SaleID(trusted: row.text("id")), name: row.text("name"), operatorState: state,
        counters: Counters(total: row.int64("total"), available: row.int64("available"), held: row.int64("held"),
                           booked: row.int64("booked"), cancelled: row.int64("cancelled"), expired: row.int64("expired")),
        hold: Span(milliseconds: row.int64("hold_ms")), perUser: row.int64("per_user"), perIP: row.optionalInt64("per_ip"),
        waitlist: row.bool("waitlist"),
        startsAt: Instant(milliseconds: row.int64("starts_at")), endsAt: row.optionalInt64("ends_at").map(Instant.init),
        createdAt: Instant(milliseconds: row.int64("created_at")), highWater: Instant(milliseconds: row.int64("high_water")))
}

public func decodeBooking(_ row: some StoredRow) throws -> Booking {
    guard let status = BookingStatus(rawValue: try row.text("status")) else {
        throw StoreFailure.unusable(detail: "booking \(Quoted(try row.text("id"))) has the unknown status '\(Quoted(try row.text("status")))'")
    }
    return try Booking(
        id: BookingID(trusted: row.text("id")), sale: SaleID(trusted: row.text("sale")), user: UserID(trusted: row.text("user")), status: status,
        createdAt: Instant(milliseconds: row.int64("created_at")), expiresAt: Instant(milliseconds: row.int64("expires_at")),
        confirmedAt: row.optionalInt64("confirmed_at").map(Instant.init),
        cancelledAt: row.optionalInt64("cancelled_at").map(Instant.init),
        expiredAt: row.optionalInt64("expired_at").map(Instant.init),
        ip: row.optionalText("ip"), userAgent: row.optionalText("user_agent"), key: row.optionalText("key"))
}

public func decodeEvent(_ row: some StoredRow) throws -> Event {
    guard let kind = EventKind(rawValue: try row.text("kind")) else {
        throw StoreFailure.unusable(detail: "event \(try row.int64("seq")) has the unknown kind '\(Quoted(try row.text("kind")))'")
    }
    return try Event(seq: row.int64("seq"), NewEvent(
        at: Instant(milliseconds: row.int64("at")), sale: row.text("sale"), kind: kind,
        booking: row.optionalText("booking").map(BookingID.init(trusted:)), user: row.optionalText("user").map(UserID.init(trusted:)),
        request: row.optionalInt64("request").map { RequestID($0) }, detail: row.optionalText("detail")))
}

/// A request with its decision, the event that names it (`decision`, its `reason`,
/// `booking` and `decided_at`); all four NULL while it is queued.
public func decodeRequest(_ row: some StoredRow) throws -> QueuedRequest {
    let status: RequestStatus
    if let text = try row.optionalText("decision") {
        guard let decision = EventKind(rawValue: text)?.requestStatus else {
            throw StoreFailure.unusable(detail: "request \(try row.int64("id")) was decided by an event of the kind '\(Quoted(text))'")
        }
        status = decision
    } else {
        status = .queued
    }
    return try QueuedRequest(
        id: RequestID(row.int64("id")), sale: SaleID(trusted: row.text("sale")), user: UserID(trusted: row.text("user")),
        ip: row.optionalText("ip"), userAgent: row.optionalText("user_agent"), key: row.optionalText("key"), status: status,
        reason: status == .rejected ? row.optionalText("reason") : nil,
        booking: status == .accepted ? row.optionalText("booking").map(BookingID.init(trusted:)) : nil,
        submittedAt: Instant(milliseconds: row.int64("submitted_at")),
        decidedAt: row.optionalInt64("decided_at").map(Instant.init), position: nil)
}

public func decodeBlock(_ row: some StoredRow) throws -> Block {
    guard let kind = BlockKind(rawValue: try row.text("kind")) else {
        throw StoreFailure.unusable(detail: "a block has the unknown kind '\(Quoted(try row.text("kind")))'")
    }
    let value = try row.text("value")
    do {
        return try Block(kind: kind, value: value, contains: row.bool("contains"),
                         sale: row.optionalText("sale").map(SaleID.init(trusted:)), reason: row.optionalText("reason"),
                         createdAt: Instant(milliseconds: row.int64("created_at")))
    } catch let error as any StoreError {
        throw error
    } catch {
        // A row that was never written through Block: the database was changed by hand.
        throw StoreFailure.unusable(detail: "the \(kind.rawValue) block '\(Quoted(value))' is not a valid block")
    }
}

extension AttemptTotals {
    /// Adds one of `sale`'s stored totals: a row of `value` (empty for all attempts, else
    /// the code they were declined with) and its count, `attempts`.
    public mutating func add(storedTotal row: some StoredRow, of sale: SaleID) throws {
        let reason = try row.text("value")
        let count = try row.int64("attempts")
        if reason.isEmpty {
            attempts += count
        } else if let code = ErrorCode(rawValue: reason) {
            declined[code, default: 0] += count
        } else {
            throw StoreFailure.unusable(detail: "sale \(Quoted(sale.text)) has attempts declined for the unknown reason '\(Quoted(reason))'")
        }
    }

    /// Adds what a transaction has counted in `sale` and not written yet.
    public mutating func add(unwritten: [(sale: SaleID, tally: AttemptTally)], of sale: SaleID) {
        for (unwrittenSale, tally) in unwritten where unwrittenSale == sale {
            let totals = tally.totals
            attempts += totals.attempts
            declined.merge(totals.declined, uniquingKeysWith: +)
        }
    }
}
