import FlashSaleCore
import FlashSaleEngine

/// A sale's line: its requests after its cursor `sale.decided_through`, in id order
/// (the primary key, sale and id). A sale's requests are added, and its cursor moved, under
/// its row lock, so ids grow in commit order within a sale and no request is passed over.
extension PostgresTransaction {
    func lineCursor(of sale: SaleID) throws -> RequestID {
        RequestID(try session.count("SELECT decided_through FROM sale WHERE id = $1", [.text(sale.text)]))
    }

    /// Read before the writes held back are sent, which change no request: those of the run
    /// before are sent after the next run's read-ahead (see `readAhead`).
    func lineHeads(of sale: SaleID, after cursor: RequestID, limit: Int64) throws -> [(RequestID, BookingRequest)] {
        try store.session.firstRows(
            "SELECT id, user_id, ip, user_agent, key FROM request WHERE sale = $1 AND id > $2 ORDER BY id",
            [.text(sale.text), .int(cursor.value)], limit: limit
        ) { row in
            try (RequestID(row.int64("id")), BookingRequest(sale: sale, user: UserID(trusted: row.text("user_id")), ip: row.optionalText("ip"),
                                                            userAgent: row.optionalText("user_agent"), key: row.optionalText("key")))
        }
    }

    func queuedRequests(in sale: SaleID) throws -> Int64 {
        try queuedRequests(in: sale, through: RequestID(.max))
    }

    func queuedRequests(in sale: SaleID, through last: RequestID) throws -> Int64 {
        try session.count(
            """
            SELECT count(*) FROM request JOIN sale ON sale.id = request.sale
            WHERE request.sale = $1 AND request.id > sale.decided_through AND request.id <= $2
            """, [.text(sale.text), .int(last.value)])
    }

    func oldestQueuedSubmission(in sale: SaleID) throws -> Instant? {
        try session.firstRow(
            """
            SELECT request.submitted_at FROM request JOIN sale ON sale.id = request.sale
            WHERE request.sale = $1 AND request.id > sale.decided_through ORDER BY request.id LIMIT 1
            """, [.text(sale.text)]) { Instant(milliseconds: try $0.int64("submitted_at")) }
    }

    func salesWithQueuedRequests() throws -> [SaleID] {
        try session.rows(
            """
            SELECT id FROM sale
            WHERE EXISTS (SELECT 1 FROM request WHERE request.sale = sale.id AND request.id > sale.decided_through)
            ORDER BY id
            """) { SaleID(trusted: try $0.text("id")) }
    }

    func request(withKey key: String, in sale: SaleID) throws -> (id: RequestID, user: UserID)? {
        if let known = bookingsReadAhead, known.knows(key: key, in: sale) { return known.request(withKey: key) }
        return try session.firstRow(PostgresKeys.lookup("id, user_id", in: "request", key: "$2", sale: "$1"),
                                    [.text(sale.text), .text(key)]) {
            try (RequestID($0.int64("id")), UserID(trusted: $0.text("user_id")))
        }
    }

    func enqueue(_ request: BookingRequest, at now: Instant) throws -> RequestID {
        wrote = true
        let values: [SQLValue] = [.text(request.sale.text), .text(request.user.text), .text(request.ip),
                                  .text(request.userAgent), .text(request.key), .int(now.milliseconds)]
        let id: Int64
        if let next = nextRequestID {
            // The counter's row lock is this transaction's: the id is known, the counter moves later.
            id = try session.count(
                """
                INSERT INTO request (id, sale, user_id, ip, user_agent, key, submitted_at)
                VALUES ($7, $1, $2, $3, $4, $5, $6) RETURNING id
                """, values + [.int(next)])
            idsOwedToCounter += 1
        } else {
            id = try session.count(
                """
                WITH counter AS (UPDATE request_counter SET last = last + 1 RETURNING last)
                INSERT INTO request (id, sale, user_id, ip, user_agent, key, submitted_at)
                SELECT last, $1, $2, $3, $4, $5, $6 FROM counter RETURNING id
                """, values)
        }
        nextRequestID = id + 1
        if let key = request.key { bookingsReadAhead?.addRequest(RequestID(id), key: key, user: request.user, in: request.sale) }
        return RequestID(id)
    }

    /// Moves the counter past the ids taken without moving it (`idsOwedToCounter`); sent,
    /// its answer checked with the next statement's.
    func settleRequestCounter() throws {
        guard idsOwedToCounter > 0 else { return }
        try store.session.send("UPDATE request_counter SET last = last + $1", [.int(idsOwedToCounter)])
        idsOwedToCounter = 0
    }

    /// Thousands: each is a round trip or two (a run of `submit --file` one COPY, a group's
    /// read-ahead one statement of arrays, which have no parameter limit). 4,096, not more:
    /// with 8,192, process's peak RSS on W2 (every request a hold) came to 31 MiB of its
    /// 32 MiB budget (bench/pg.sh); with 4,096, 29 MiB.
    var rowsAtOnce: Int { 4096 }

    /// The ids taken at once (consecutive), the rows copied in by one COPY (`CopyText`).
    /// Only the transaction's first run of ids waits for the counter's answer: its row lock
    /// is then this transaction's to the commit, so the ids after are known without asking,
    /// and each later run's counter move and rows are sent without waiting for the server to
    /// store them (only for it to start taking the rows, `sendCopy`), while the caller reads
    /// and encodes the next. `submit --file` on W1 spent 1.5 s of its 2.4 s in the server's
    /// INSERTs and 0.7 s reading the file, one after the other. One run in flight at a time:
    /// each waits for the answer to the run before it.
    func enqueue(new records: ArraySlice<RequestRecord>, in sale: SaleID, at now: Instant) throws -> ClosedRange<RequestID> {
        let count = Int64(records.count)
        guard count > 0 else { throw FlashSaleError.internalFailure("no requests to enqueue") }
        wrote = true
        let first: Int64
        if let next = nextRequestID {
            try session.awaitSent()
            first = next
            try session.send("UPDATE request_counter SET last = last + $1", [.int(count + idsOwedToCounter)])
            idsOwedToCounter = 0
        } else {
            first = try session.count("UPDATE request_counter SET last = last + $1 RETURNING last - $1 + 1", [.int(count)])
        }
        // A W1 row is about 110 bytes: one allocation for most runs.
        var rows = CopyText(capacity: records.count * 160)
        for (offset, record) in records.enumerated() {
            let id = first + Int64(offset)
            rows.int(id)
            rows.text(sale.text)
            rows.text(record.user)
            rows.text(record.ip)
            rows.text(record.userAgent)
            rows.text(record.key)
            rows.int(now.milliseconds)
            rows.endRow()
            if let key = record.key { bookingsReadAhead?.addRequest(RequestID(id), key: key, user: UserID(trusted: record.user), in: sale) }
        }
        try session.sendCopy(into: "request", columns: ["id", "sale", "user_id", "ip", "user_agent", "key", "submitted_at"], rows)
        nextRequestID = first + count
        return RequestID(first)...RequestID(first + count - 1)
    }

    /// The cursor only moves forward: anything else would decide a request twice.
    func moveLineCursor(of sale: SaleID, to cursor: RequestID, at now: Instant) throws {
        let moved = try write(
            """
            UPDATE sale SET decided_through = $1, high_water = greatest(high_water, $2)
            WHERE id = $3 AND decided_through < $1
            """, [.int(cursor.value), .int(now.milliseconds), .text(sale.text)])
        guard moved == 1 else {
            throw FlashSaleError.internalFailure("the line of sale \(sale) would move back to request \(cursor)")
        }
    }

    /// A run of at most `rowsAtOnce`: a page of the log reads the whole of each run it
    /// takes events from (an array's slice is cut from the whole array): runs of 100,000
    /// made `events` read their arrays again for each page, five times as slow as rows.
    func rejectableRun(of sale: SaleID, after cursor: RequestID, limit wanted: Int64) throws -> (last: RequestID?, stoppedAtKey: Bool) {
        let limit = min(wanted, Int64(rowsAtOnce))
        guard limit > 0 else { return (nil, false) }
        // The run's bound first, through a cursor (`firstRows`: `ORDER BY id LIMIT` may read
        // and sort the whole line), then the run as a range, which needs no order.
        let bound = try session.firstRows("SELECT id FROM request WHERE sale = $1 AND id > $2 ORDER BY id",
                                          [.text(sale.text), .int(cursor.value)], skipping: limit - 1, limit: 1) {
            try $0.int64("id")
        }.first ?? .max
        // A key's booking looked up by the key (`PostgresKeys`): by (sale, key), stale
        // statistics had the planner read all the sale's bookings for each request of the
        // run (found by probing: 20,000 keyed rejections 54 s, or exit 75).
        return try session.firstRow(
            """
            WITH line AS (SELECT id, key FROM request WHERE sale = $1 AND id > $2 AND id <= $3),
                 stop AS (SELECT min(id) AS id FROM line WHERE key IS NOT NULL
                          AND EXISTS (\(PostgresKeys.lookup("1", in: "booking", key: "line.key", sale: "$1"))))
            SELECT max(id) AS last, (SELECT id FROM stop) IS NOT NULL AS stopped_at_key FROM line
            WHERE (SELECT id FROM stop) IS NULL OR id < (SELECT id FROM stop)
            """, [.text(sale.text), .int(cursor.value), .int(bound)]
        ) { try ($0.optionalInt64("last").map { RequestID($0) }, $0.bool("stopped_at_key")) } ?? (nil, false)
    }

    /// One statement for the whole run, stored as one `rejected_run` (see the schema's
    /// version 5), its events numbered there; the user's count of active bookings is the
    /// one mirror of `Rules` in SQL (`activeBooking`). A sale of at most `rowsAtOnce`
    /// bookings has its users at their limit found once, in a hashed set (W1's runs took
    /// 3.3 ms each, against 8 ms for an index probe per request); a bigger one, a probe per
    /// request, whose cost does not grow with the sale's bookings. The sale's stored
    /// counters count its bookings (`verify` checks it) but this transaction's own, which
    /// only the choice depends on: both ways count the same rows.
    ///
    /// The numbering takes the seq counter's row lock to the commit: `process` decides one
    /// sale a transaction, so no sale's row lock is waited for after it (one that was could
    /// deadlock with a transaction holding that sale and waiting for the counter). Other
    /// writers' commits wait for the counter meanwhile: for the rest of the batch when the
    /// run stopped at a keyed request, which is decided one by one after it.
    func rejectRun(of sale: SaleID, after cursor: RequestID, through last: RequestID, atLimit: DeclineReason,
                   otherwise: DeclineReason, perUser: Int64, at now: Instant) throws -> (atLimit: Int64, otherwise: Int64) {
        wrote = true
        try sendHeldEventsNumbered()
        let (limited, rejected) = try session.firstRow(
            """
            WITH line AS (
                SELECT request.id, request.user_id, $4::text != $5::text AND CASE
                    WHEN (SELECT held + booked + cancelled + expired <= $8 FROM sale WHERE id = $2) THEN request.user_id IN (
                        SELECT user_id FROM booking WHERE booking.sale = $2 AND \(activeBooking(now: "$1"))
                        GROUP BY user_id HAVING count(*) >= $6)
                    ELSE (SELECT count(*) FROM booking WHERE booking.sale = $2 AND booking.user_id = request.user_id
                          AND \(activeBooking(now: "$1"))) >= $6 END AS at_limit
                FROM request WHERE request.sale = $2 AND request.id > $3 AND request.id <= $7),
            run AS (
                SELECT count(*) AS events, min(id) AS first_request, max(id) AS last_request,
                    array_agg(id ORDER BY id) AS requests, array_agg(user_id ORDER BY id) AS users,
                    coalesce(array_agg(id ORDER BY id) FILTER (WHERE at_limit), '{}') AS limited
                FROM line),
            numbered AS (UPDATE event_counter SET last = last + (SELECT events FROM run) RETURNING last)
            INSERT INTO rejected_run (first_seq, last_seq, at, sale, detail, limited_detail, first_request, last_request,
                                      requests, users, limited)
            SELECT numbered.last - run.events + 1, numbered.last, $1, $2, $5, $4, run.first_request, run.last_request,
                run.requests, run.users, run.limited
            FROM run, numbered WHERE run.events > 0
            RETURNING cardinality(limited) AS limited, last_seq - first_seq + 1 AS rejected
            """,
            [.int(now.milliseconds), .text(sale.text), .int(cursor.value), .text(atLimit.rawValue), .text(otherwise.rawValue),
             .int(perUser), .int(last.value), .int(Int64(rowsAtOnce))]
        ) { (try $0.int64("limited"), try $0.int64("rejected")) } ?? (0, 0)
        return (limited, rejected - limited)
    }
}
