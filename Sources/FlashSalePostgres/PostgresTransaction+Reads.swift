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

    func bookings(of user: UserID, in sale: SaleID, after: BookingID?, limit: Int) throws -> [Booking]? {
        var from: Int64 = 0
        if let after {
            let found = try session.firstRow("SELECT made FROM booking WHERE id = $1 AND sale = $2 AND user_id = $3",
                                             [.text(after.text), .text(sale.text), .text(user.text)]) { try $0.int64("made") }
            guard let found else { return nil }
            from = found
        }
        return try session.rows("SELECT \(bookingColumns) FROM booking WHERE sale = $1 AND user_id = $2 AND made > $3 ORDER BY made LIMIT $4",
                                [.text(sale.text), .text(user.text), .int(from), .int(Int64(limit))], decodeBooking)
    }

    /// A request's decision is the event that names it, as in SQLite, or the rejected run
    /// that holds it: the sale's run that ends first at or after it, if it starts at or
    /// before it (a run holds every request of its sale from its first to its last). A
    /// request's key begins with its sale: it is looked for in each sale, a probe each.
    func request(_ id: RequestID) throws -> QueuedRequest? {
        try session.firstRow(
            """
            SELECT coalesce(decision.kind, CASE WHEN run.last_seq IS NOT NULL THEN 'rejected' END) AS decision, request.id,
                request.sale, request.user_id AS "user", request.ip, request.user_agent, request.key,
                coalesce(decision.detail, CASE WHEN request.id = ANY(run.limited) THEN run.limited_detail ELSE run.detail END)
                    AS reason,
                decision.booking AS booking, request.submitted_at, coalesce(decision.at, run.at) AS decided_at
            FROM sale CROSS JOIN LATERAL (SELECT * FROM request WHERE request.sale = sale.id AND request.id = $1) AS request
            LEFT JOIN event AS decision ON decision.request = request.id
            LEFT JOIN LATERAL (SELECT last_seq, first_request, at, detail, limited_detail, limited FROM rejected_run
                               WHERE rejected_run.sale = request.sale AND rejected_run.last_request >= request.id
                               ORDER BY rejected_run.last_request LIMIT 1) AS run ON run.first_request <= request.id
            """, [.int(id.value)], decodeRequest)
    }

    func latestEventSeq() throws -> Int64 {
        try session.count("SELECT \(RejectedRuns.lastSeq)")
    }

    /// Seqs are given in commit order (see `commit`), so reading in pages by seq loses
    /// and repeats nothing. A page through a cursor (`firstRows`), or each page of a sale's
    /// log filled since autovacuum last looked would read and sort the rest of it. The
    /// events of rejected runs are read as far as the page's own: a full page of events
    /// ends at its last one.
    func events(after: Int64, sale: SaleID?, limit: Int64) throws -> [Event] {
        let columns = "SELECT kind, seq, at, sale, booking, user_id AS \"user\", request, detail FROM event"
        let stored = try sale.map { sale in
            try session.firstRows("\(columns) WHERE sale = $1 AND seq > $2 ORDER BY seq",
                                  [.text(sale.text), .int(after)], limit: limit, decodeEvent)
        } ?? session.firstRows("\(columns) WHERE seq > $1 ORDER BY seq", [.int(after)], limit: limit, decodeEvent)
        let bound = stored.count == limit ? stored.last?.seq ?? .max : .max
        let rejected = try rejectedRunEvents(after: after, through: bound, sale: sale, limit: limit)
        guard !rejected.isEmpty else { return stored }
        return Array((stored + rejected).sorted { $0.seq < $1.seq }.prefix(Int(clamping: limit)))
    }
}
