import FlashSaleCore
import FlashSaleEngine

/// The reads of reports: bookings one at a time, requests with their decision, the event log.
extension SQLiteTransaction {
    func forEachBooking(of sale: SaleID, user: String?, _ body: (Booking) throws -> Void) throws {
        try db.forEachRow(
            """
            SELECT \(bookingColumns) FROM booking
            WHERE sale = :sale AND (:user IS NULL OR user = :user) ORDER BY rowid
            """,
            [":sale": .text(sale.text), ":user": .text(user)]
        ) { try body(decodeBooking($0)) }
    }

    /// A request's decision is the event that names it: none while queued, 'rejected'
    /// with its reason, 'held' or 'accepted' with its booking.
    func request(_ id: RequestID) throws -> QueuedRequest? {
        try db.firstRow(
            """
            SELECT request.id, request.sale, request.user, request.ip, request.user_agent, request.key,
                decision.kind, decision.detail, decision.booking, request.submitted_at, decision.at
            FROM request LEFT JOIN event AS decision ON decision.request = request.id
            WHERE request.id = :id
            """, [":id": .integer(id.value)], decodeRequest)
    }

    /// Two statements rather than `(:sale IS NULL OR sale = :sale)`, which would keep
    /// SQLite from using the index event_by_sale (sale, seq) for one sale.
    ///
    /// Reading in pages by `seq` loses and repeats nothing, because the event table is
    /// written only inside write transactions, which SQLite runs one at a time: `seq`
    /// (AUTOINCREMENT, never reused) grows in commit order, so once a reader has seen
    /// `seq` N, no transaction can still commit an event below N.
    func events(after: Int64, sale: SaleID?, limit: Int64) throws -> [Event] {
        if let sale {
            return try db.rows(
                """
                SELECT seq, at, sale, kind, booking, user, request, detail FROM event
                WHERE sale = :sale AND seq > :after ORDER BY seq LIMIT :limit
                """,
                [":sale": .text(sale.text), ":after": .integer(after), ":limit": .integer(limit)], decodeEvent)
        }
        return try db.rows(
            """
            SELECT seq, at, sale, kind, booking, user, request, detail FROM event
            WHERE seq > :after ORDER BY seq LIMIT :limit
            """,
            [":after": .integer(after), ":limit": .integer(limit)], decodeEvent)
    }
}

private func decodeRequest(_ row: Row) throws -> QueuedRequest {
    let status: RequestStatus
    if let text = row.optionalText(6) {
        guard let decision = EventKind(rawValue: text)?.requestStatus else {
            throw FlashSaleError.cantOpen("request \(row.int64(0)) was decided by an event of the kind '\(Quoted(text))'")
        }
        status = decision
    } else {
        status = .queued
    }
    return QueuedRequest(
        id: RequestID(row.int64(0)), sale: SaleID(trusted: row.text(1)), user: row.text(2), ip: row.optionalText(3),
        userAgent: row.optionalText(4), key: row.optionalText(5), status: status,
        reason: status == .rejected ? row.optionalText(7) : nil,
        booking: status == .accepted ? row.optionalText(8).map(BookingID.init(trusted:)) : nil,
        submittedAt: Instant(milliseconds: row.int64(9)),
        decidedAt: row.optionalInt64(10).map(Instant.init), position: nil)
}

private func decodeEvent(_ row: Row) throws -> Event {
    guard let kind = EventKind(rawValue: row.text(3)) else {
        throw FlashSaleError.cantOpen("event \(row.int64(0)) has the unknown kind '\(Quoted(row.text(3)))'")
    }
    return Event(
        seq: row.int64(0), at: Instant(milliseconds: row.int64(1)), sale: row.text(2), kind: kind,
        booking: row.optionalText(4).map(BookingID.init(trusted:)), user: row.optionalText(5),
        request: row.optionalInt64(6).map { RequestID($0) }, detail: row.optionalText(7))
}
