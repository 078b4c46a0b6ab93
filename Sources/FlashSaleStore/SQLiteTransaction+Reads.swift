import FlashSaleCore
import FlashSaleEngine

/// The reads of reports: bookings one at a time, requests with their decision, the event log.
extension SQLiteTransaction {
    func forEachBooking(of sale: SaleID, user: UserID?, _ body: (Booking) throws -> Void) throws {
        guard let user else {
            return try db.forEachRow(selectBookingsOfSale, [":sale": .text(sale.text)]) { try body(decodeBooking($0)) }
        }
        try db.forEachRow(selectBookingsOfUser, [":sale": .text(sale.text), ":user": .text(user.text)]) { try body(decodeBooking($0)) }
    }

    /// A request's decision is the event that names it: none while queued, 'rejected'
    /// with its reason, 'held' or 'accepted' with its booking.
    func request(_ id: RequestID) throws -> QueuedRequest? {
        try db.firstRow(
            """
            SELECT decision.kind AS decision, request.id, request.sale, request.user, request.ip, request.user_agent,
                request.key, decision.detail AS reason, decision.booking AS booking, request.submitted_at,
                decision.at AS decided_at
            FROM request LEFT JOIN event AS decision ON decision.request = request.id
            WHERE request.id = :id
            """, [":id": .integer(id.value)], decodeRequest)
    }

    /// Two statements rather than `(:sale IS NULL OR sale = :sale)`, which would keep
    /// SQLite from using the index event_by_sale (sale, seq) for one sale.
    ///
    /// Reading in pages by `seq` loses and repeats nothing, because the event table is
    /// written only inside write transactions, which SQLite runs one at a time: `seq`
    /// (max(seq) + 1, never reused as no event is ever deleted) grows in commit order, so
    /// once a reader has seen `seq` N, no transaction can still commit an event below N.
    func latestEventSeq() throws -> Int64 {
        try db.firstRow("SELECT coalesce(max(seq), 0) FROM event") { $0.int64(0) } ?? 0
    }

    func events(after: Int64, sale: SaleID?, limit: Int64) throws -> [Event] {
        if let sale {
            return try db.rows(
                """
                SELECT kind, seq, at, sale, booking, user, request, detail FROM event
                WHERE sale = :sale AND seq > :after ORDER BY seq LIMIT :limit
                """,
                [":sale": .text(sale.text), ":after": .integer(after), ":limit": .integer(limit)], decodeEvent)
        }
        return try db.rows(
            """
            SELECT kind, seq, at, sale, booking, user, request, detail FROM event
            WHERE seq > :after ORDER BY seq LIMIT :limit
            """,
            [":after": .integer(after), ":limit": .integer(limit)], decodeEvent)
    }
}

private func decodeRequest(_ row: Row) throws -> QueuedRequest {
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

private func decodeEvent(_ row: Row) throws -> Event {
    guard let kind = EventKind(rawValue: try row.text("kind")) else {
        throw StoreFailure.unusable(detail: "event \(try row.int64("seq")) has the unknown kind '\(Quoted(try row.text("kind")))'")
    }
    return try Event(seq: row.int64("seq"), NewEvent(
        at: Instant(milliseconds: row.int64("at")), sale: row.text("sale"), kind: kind,
        booking: row.optionalText("booking").map(BookingID.init(trusted:)), user: row.optionalText("user").map(UserID.init(trusted:)),
        request: row.optionalInt64("request").map { RequestID($0) }, detail: row.optionalText("detail")))
}
