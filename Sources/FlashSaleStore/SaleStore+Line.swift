import FlashSaleCore

/// A sale's line: its requests in FIFO (id) order, kept as runs of consecutive ids in
/// `request_run`, and its cursor `sale.decided_through`, the last request it decided.
/// Decisions are taken strictly in FIFO order, so a request is decided exactly when the
/// cursor has passed it, and its decision is the one event that names it (a unique index
/// refuses a second). See Schema, version 4.
extension SaleStore {
    /// Adds requests `first...last`, just inserted for `sale`, to the end of its line. A
    /// bulk submit's requests have consecutive ids, so they grow one run, not an index.
    func extendLine(of sale: SaleID, from first: Int64, through last: Int64) throws {
        let range: KeyValuePairs<String, SQLValue> = [":sale": .text(sale.text), ":first": .integer(first), ":last": .integer(last)]
        try db.execute("UPDATE request_run SET last_id = :last WHERE sale = :sale AND last_id = :first - 1", range)
        if db.changes == 0 {
            try db.execute("INSERT INTO request_run (sale, first_id, last_id) VALUES (:sale, :first, :last)", range)
        }
    }

    /// How many requests of `sale` are still queued: one row read per run, not per request.
    func queuedRequests(in sale: SaleID) throws -> Int64 {
        try queuedRequests(in: sale, after: Line(of: sale, in: self).cursor, through: .max)
    }

    /// How many of the sale's requests after `cursor` have an id up to `last`: for the
    /// last one queued, its position in line.
    func queuedRequests(in sale: SaleID, after cursor: Int64, through last: Int64) throws -> Int64 {
        try count(
            """
            SELECT coalesce(sum(min(last_id, :last) - max(first_id, :cursor + 1) + 1), 0) FROM request_run
            WHERE sale = :sale AND last_id > :cursor AND first_id <= :last
            """, [":sale": .text(sale.text), ":cursor": .integer(cursor), ":last": .integer(last)])
    }

    /// The submission time of the sale's first queued request, if any.
    func headSubmittedAt(in sale: SaleID) throws -> Instant? {
        try db.firstRow("SELECT submitted_at FROM request WHERE id = \(lineHead)",
                        [":sale": .text(sale.text), ":cursor": .integer(Line(of: sale, in: self).cursor)]) {
            Instant(milliseconds: $0.int64(0))
        }
    }

    /// One sale's line inside a write transaction.
    struct Line {
        private let store: SaleStore
        private let sale: SaleID
        /// The last decided request, as of this transaction.
        private(set) var cursor: Int64

        init(of sale: SaleID, in store: SaleStore) throws {
            self.store = store
            self.sale = sale
            cursor = try store.db.firstRow("SELECT decided_through FROM sale WHERE id = :sale",
                                           [":sale": .text(sale.text)]) { $0.int64(0) } ?? 0
        }

        /// The first undecided request.
        func head() throws -> (Int64, BookingRequest)? {
            try store.db.firstRow(
                "SELECT id, user, ip, user_agent, key FROM request WHERE id = \(lineHead)",
                [":sale": .text(sale.text), ":cursor": .integer(cursor)],
                { [sale] row in
                    (row.int64(0), BookingRequest(sale: sale, user: row.text(1), ip: row.optionalText(2),
                                                  userAgent: row.optionalText(3), key: row.optionalText(4)))
                })
        }

        /// The head was decided by an event already written (its hold's).
        mutating func passed(_ id: Int64) {
            cursor = id
        }

        mutating func accept(_ id: Int64, user: String, booking: BookingID, at now: Instant) throws {
            try store.appendEvent(at: now, sale: sale, kind: "accepted", booking: booking, user: user, request: id)
            cursor = id
        }

        mutating func reject(_ id: Int64, user: String, reason: String, at now: Instant) throws {
            try store.appendEvent(at: now, sale: sale, kind: "rejected", user: user, request: id, detail: reason)
            cursor = id
        }

        /// How far from the head the set-based rejection may go: at most `limit` requests,
        /// stopping before the first whose key already has a booking. `last` is nil for none.
        func rejectableRun(limit: Int64) throws -> (last: Int64?, stoppedAtKey: Bool) {
            try store.db.firstRow(
                """
                WITH line AS (SELECT request.id, request.key \(lineFrom) LIMIT :limit),
                     stop AS (SELECT min(id) AS id FROM line WHERE key IS NOT NULL
                              AND EXISTS (SELECT 1 FROM booking WHERE booking.sale = :sale AND booking.key = line.key))
                SELECT max(id), (SELECT id FROM stop) IS NOT NULL FROM line
                WHERE (SELECT id FROM stop) IS NULL OR id < (SELECT id FROM stop)
                """, [":sale": .text(sale.text), ":cursor": .integer(cursor), ":last": .integer(.max), ":limit": .integer(limit)]
            ) { ($0.optionalInt64(0), $0.int64(1) != 0) } ?? (nil, false)
        }

        /// Rejects the line up to `last` where nobody can hold: not_open, else user_limit for
        /// a user at the limit, else sold_out — the reasons one-at-a-time decisions would
        /// give, since no booking changes among them. One statement for the whole run, its
        /// events in id order.
        mutating func rejectAtOnce(through last: Int64, in sale: Sale, at now: Instant) throws -> Int64 {
            try store.db.execute(
                """
                INSERT INTO event (at, sale, kind, user, request, detail)
                SELECT :now, :sale, 'rejected', request.user, request.id, CASE
                    WHEN :open = 0 THEN 'not_open'
                    WHEN (SELECT count(*) FROM booking
                          WHERE booking.sale = :sale AND booking.user = request.user AND \(activeBooking)) >= :per_user
                        THEN 'user_limit'
                    ELSE 'sold_out' END
                \(lineFrom)
                """,
                [":sale": .text(sale.id.text), ":cursor": .integer(cursor), ":last": .integer(last), ":now": .integer(now.milliseconds),
                 ":open": .integer(sale.state(at: now) == .open ? 1 : 0), ":per_user": .integer(sale.perUser)])
            cursor = last
            return store.db.changes
        }

        /// Stores the cursor, with the sale's high-water clock. The cursor only moves forward:
        /// anything else would decide a request twice.
        func commitCursor(at now: Instant) throws {
            try store.db.execute(
                """
                UPDATE sale SET decided_through = :cursor, high_water = max(high_water, :now)
                WHERE id = :sale AND decided_through < :cursor
                """, [":sale": .text(sale.text), ":cursor": .integer(cursor), ":now": .integer(now.milliseconds)])
            guard store.db.changes == 1 else {
                throw FlashSaleError.internalFailure("the line of sale \(sale) would move back to request \(cursor)")
            }
        }
    }
}

/// The queued requests of sale `:sale` after `:cursor` up to `:last`, in FIFO order: each
/// run that reaches past the cursor, in order, and its requests by rowid range. Both loops
/// deliver their order, so SQLite sorts nothing.
private let lineFrom = """
    FROM request_run AS run
    JOIN request ON request.id BETWEEN max(run.first_id, :cursor + 1) AND min(run.last_id, :last)
    WHERE run.sale = :sale AND run.last_id > :cursor AND run.first_id <= :last
    ORDER BY run.last_id, request.id
    """

/// The id of the first queued request of sale `:sale` after `:cursor` (NULL for none): the
/// first id after the cursor in the first run that reaches past it.
private let lineHead = """
    (SELECT max(first_id, :cursor + 1) FROM request_run
     WHERE sale = :sale AND last_id > :cursor ORDER BY last_id LIMIT 1)
    """
