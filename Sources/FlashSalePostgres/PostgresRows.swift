import FlashSaleCore
import FlashSaleEngine

// MARK: - SQL shared by several statements

/// The expiry boundary of `Rules.isExpired`, mirrored once in SQL: a hold is overdue
/// from the instant `now >= expires_at`. `now` is the parameter given.
func overdueHold(now: String) -> String { "(status = 'held' AND expires_at <= \(now))" }
/// What counts against the per-user limit: booked, or held and not yet expired.
func activeBooking(now: String) -> String { "(status IN ('held', 'booked') AND NOT \(overdueHold(now: now)))" }

let saleColumns = """
    state, id, name, total, available, held, booked, cancelled, expired, hold_ms, per_user, per_ip,
    waitlist, starts_at, ends_at, created_at, high_water
    """
let bookingColumns = """
    status, id, sale, user_id, created_at, expires_at, confirmed_at, cancelled_at, expired_at,
    ip, user_agent, key
    """

// MARK: - Rows

func decodeSale(_ row: Row) throws -> Sale {
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

func decodeBooking(_ row: Row) throws -> Booking {
    guard let status = BookingStatus(rawValue: try row.text("status")) else {
        throw StoreFailure.unusable(detail: "booking \(Quoted(try row.text("id"))) has the unknown status '\(Quoted(try row.text("status")))'")
    }
    return try Booking(
        id: BookingID(trusted: row.text("id")), sale: SaleID(trusted: row.text("sale")), user: UserID(trusted: row.text("user_id")),
        status: status,
        createdAt: Instant(milliseconds: row.int64("created_at")), expiresAt: Instant(milliseconds: row.int64("expires_at")),
        confirmedAt: row.optionalInt64("confirmed_at").map(Instant.init),
        cancelledAt: row.optionalInt64("cancelled_at").map(Instant.init),
        expiredAt: row.optionalInt64("expired_at").map(Instant.init),
        ip: row.optionalText("ip"), userAgent: row.optionalText("user_agent"), key: row.optionalText("key"))
}

func decodeEvent(_ row: Row) throws -> Event {
    guard let kind = EventKind(rawValue: try row.text("kind")) else {
        throw StoreFailure.unusable(detail: "event \(try row.int64("seq")) has the unknown kind '\(Quoted(try row.text("kind")))'")
    }
    return try Event(seq: row.int64("seq"), NewEvent(
        at: Instant(milliseconds: row.int64("at")), sale: row.text("sale"), kind: kind,
        booking: row.optionalText("booking").map(BookingID.init(trusted:)), user: row.optionalText("user_id").map(UserID.init(trusted:)),
        request: row.optionalInt64("request").map { RequestID($0) }, detail: row.optionalText("detail")))
}

func decodeRequest(_ row: Row) throws -> QueuedRequest {
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
        id: RequestID(row.int64("id")), sale: SaleID(trusted: row.text("sale")), user: UserID(trusted: row.text("user_id")),
        ip: row.optionalText("ip"), userAgent: row.optionalText("user_agent"), key: row.optionalText("key"), status: status,
        reason: status == .rejected ? row.optionalText("reason") : nil,
        booking: status == .accepted ? row.optionalText("booking").map(BookingID.init(trusted:)) : nil,
        submittedAt: Instant(milliseconds: row.int64("submitted_at")),
        decidedAt: row.optionalInt64("decided_at").map(Instant.init), position: nil)
}

func decodeBlock(_ row: Row) throws -> Block {
    guard let kind = BlockKind(rawValue: try row.text("kind")) else {
        throw StoreFailure.unusable(detail: "a block has the unknown kind '\(Quoted(try row.text("kind")))'")
    }
    let value = try row.text("value")
    do {
        return try Block(kind: kind, value: value, contains: row.bool("contains"),
                         sale: row.optionalText("sale").map(SaleID.init(trusted:)), reason: row.optionalText("reason"),
                         createdAt: Instant(milliseconds: row.int64("created_at")))
    } catch let error as PostgresError {
        throw error
    } catch {
        // A row that was never written through Block: the table was changed by hand.
        throw StoreFailure.unusable(detail: "the \(kind.rawValue) block '\(Quoted(value))' is not a valid block")
    }
}
