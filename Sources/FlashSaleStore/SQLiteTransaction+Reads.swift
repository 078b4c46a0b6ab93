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

    func bookings(of user: UserID, in sale: SaleID, after: BookingID?, limit: Int) throws -> [Booking]? {
        var from: Int64 = 0
        if let after {
            let found = try db.firstRow("SELECT rowid FROM booking WHERE id = :id AND sale = :sale AND user = :user",
                                        [":id": .text(after.text), ":sale": .text(sale.text), ":user": .text(user.text)]) { $0.int64(0) }
            guard let found else { return nil }
            from = found
        }
        return try db.rows(selectBookingPageOfUser, [":sale": .text(sale.text), ":user": .text(user.text), ":after": .integer(from),
                                                     ":limit": .integer(Int64(limit))], decodeBooking)
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
