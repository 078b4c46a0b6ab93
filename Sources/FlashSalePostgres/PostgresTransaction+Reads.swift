import FlashSaleCore
import FlashSaleEngine

/// The reads of reports: bookings one at a time, requests with their decision, the event log.
extension PostgresTransaction {
    /// Through a cursor, in the order the bookings were made: constant memory.
    func forEachBooking(of sale: SaleID, user: UserID?, _ body: (Booking) throws -> Void) throws {
        guard let user else {
            return try session.forEachRow("SELECT \(bookingColumns) FROM booking WHERE sale = $1 ORDER BY made",
                                          [.text(sale.text)]) { try body(decodeBooking($0)) }
        }
        try session.forEachRow("SELECT \(bookingColumns) FROM booking WHERE sale = $1 AND user_id = $2 ORDER BY made",
                               [.text(sale.text), .text(user.text)]) { try body(decodeBooking($0)) }
    }

    /// A request's decision is the event that names it, as in SQLite.
    func request(_ id: RequestID) throws -> QueuedRequest? {
        try session.firstRow(
            """
            SELECT decision.kind AS decision, request.id, request.sale, request.user_id AS "user", request.ip, request.user_agent,
                request.key, decision.detail AS reason, decision.booking AS booking, request.submitted_at,
                decision.at AS decided_at
            FROM request LEFT JOIN event AS decision ON decision.request = request.id
            WHERE request.id = $1
            """, [.int(id.value)], decodeRequest)
    }

    func latestEventSeq() throws -> Int64 {
        try session.count("SELECT coalesce(max(seq), 0) FROM event")
    }

    /// Seqs are given in commit order (see `commit`), so reading in pages by seq loses
    /// and repeats nothing. A page through a cursor (`firstRows`), or each page of a sale's
    /// log filled since autovacuum last looked would read and sort the rest of it.
    func events(after: Int64, sale: SaleID?, limit: Int64) throws -> [Event] {
        let columns = "SELECT kind, seq, at, sale, booking, user_id AS \"user\", request, detail FROM event"
        if let sale {
            return try session.firstRows("\(columns) WHERE sale = $1 AND seq > $2 ORDER BY seq",
                                         [.text(sale.text), .int(after)], limit: limit, decodeEvent)
        }
        return try session.firstRows("\(columns) WHERE seq > $1 ORDER BY seq", [.int(after)], limit: limit, decodeEvent)
    }
}
