import FlashSaleCore
import FlashSaleEngine

/// A sale's line: its requests in FIFO (id) order, kept as runs of consecutive ids in
/// `request_run`, and its cursor `sale.decided_through`, the last request it decided.
/// Decisions are taken strictly in FIFO order, so a request is decided exactly when the
/// cursor has passed it, and its decision is the one event that names it (a unique index
/// refuses a second). See Schema, version 4.
extension SQLiteTransaction {
    func lineCursor(of sale: SaleID) throws -> RequestID {
        RequestID(try db.firstRow("SELECT decided_through FROM sale WHERE id = :sale",
                                  [":sale": .text(sale.text)]) { try $0.int64("decided_through") } ?? 0)
    }

    func lineHeads(of sale: SaleID, after cursor: RequestID, limit: Int64) throws -> [(RequestID, BookingRequest)] {
        try db.rows(
            "SELECT request.id, request.user, request.ip, request.user_agent, request.key \(lineFrom) LIMIT :limit",
            [":sale": .text(sale.text), ":cursor": .integer(cursor.value), ":last": .integer(.max), ":limit": .integer(limit)]
        ) { row in
            try (RequestID(row.int64("id")), BookingRequest(sale: sale, user: UserID(trusted: row.text("user")), ip: row.optionalText("ip"),
                                                            userAgent: row.optionalText("user_agent"), key: row.optionalText("key")))
        }
    }

    func queuedRequests(in sale: SaleID) throws -> Int64 {
        try queuedRequests(in: sale, through: RequestID(.max))
    }

    /// One row read per run, not per request.
    func queuedRequests(in sale: SaleID, through last: RequestID) throws -> Int64 {
        try store.count(
            """
            SELECT coalesce(sum(min(last_id, :last) - max(first_id, sale.decided_through + 1) + 1), 0)
            FROM request_run JOIN sale ON sale.id = request_run.sale
            WHERE request_run.sale = :sale AND last_id > sale.decided_through AND first_id <= :last
            """, [":sale": .text(sale.text), ":last": .integer(last.value)])
    }

    /// The head of the line, where min(submitted_at) would read every queued request.
    func oldestQueuedSubmission(in sale: SaleID) throws -> Instant? {
        try db.firstRow("SELECT submitted_at FROM request WHERE id = \(lineHeadID)",
                        [":sale": .text(sale.text), ":cursor": .integer(lineCursor(of: sale).value)]) {
            Instant(milliseconds: try $0.int64("submitted_at"))
        }
    }

    func salesWithQueuedRequests() throws -> [SaleID] {
        // One probe of the line per sale, where DISTINCT over the queue would read every
        // queued request.
        try db.rows(
            """
            SELECT id FROM sale
            WHERE EXISTS (SELECT 1 FROM request_run AS run WHERE run.sale = sale.id AND run.last_id > sale.decided_through)
            ORDER BY id
            """) { SaleID(trusted: try $0.text("id")) }
    }

    func request(withKey key: String, in sale: SaleID) throws -> (id: RequestID, user: UserID)? {
        try db.firstRow("SELECT id, user FROM request WHERE sale = :sale AND key = :key",
                        [":sale": .text(sale.text), ":key": .text(key)]) { try (RequestID($0.int64("id")), UserID(trusted: $0.text("user"))) }
    }

    func enqueue(_ request: BookingRequest, at now: Instant) throws -> RequestID {
        try store.rowStatements.insertRequest.run(.text(request.sale.text), .text(request.user.text), .text(request.ip),
                                                  .text(request.userAgent), .text(request.key), .integer(now.milliseconds))
        let id = RequestID(db.lastInsertedRowID)
        try extendLine(of: request.sale, with: id...id)
        return id
    }

    /// 64, what the engine used for every store before each chose its own; a submit's rows
    /// go `RequestRows.perStatement` to a statement whatever the batch.
    var rowsAtOnce: Int { 64 }

    /// Requests inserted `RequestRows.perStatement` at a time by one multi-row INSERT:
    /// per-statement work in SQLite, not the row itself, is most of the cost of inserting
    /// a row at a time. The sale and the time, the same for every row, are bound once per
    /// statement.
    func enqueue(new records: ArraySlice<RequestRecord>, in sale: SaleID, at now: Instant) throws -> ClosedRange<RequestID> {
        var first: RequestID?
        var last = RequestID.none
        var start = records.startIndex
        while start < records.endIndex {
            let chunk = records[start..<min(start + RequestRows.perStatement, records.endIndex)]
            start = chunk.endIndex
            // Keys only where the chunk has one: binding one for every row cost a key-less
            // file of 200,000 requests 3.5% more instructions, looking for one 1%.
            let keyed = chunk.indices.contains { chunk[$0].key != nil }
            var values: [SQLValue] = []
            values.reserveCapacity(chunk.count * (keyed ? 4 : 3) + 2)
            for record in chunk {
                values.append(.text(record.user))
                values.append(.text(record.ip))
                values.append(.text(record.userAgent))
                if keyed { values.append(.text(record.key)) }
            }
            let statement = chunk.count == RequestRows.perStatement
                ? try keyed ? store.rowStatements.insertKeyedRequests : store.rowStatements.insertRequests
                : try RowStatement(db, RequestRows.insert(rows: chunk.count, keyed: keyed),
                                   parameters: RequestRows.parameters(rows: chunk.count, keyed: keyed))
            values.append(.text(sale.text))
            values.append(.integer(now.milliseconds))
            try statement.run(values)
            // Appended in one statement with no explicit ids: consecutive rowids.
            last = RequestID(db.lastInsertedRowID)
            let ids = RequestID(last.value - Int64(chunk.count) + 1)...last
            try extendLine(of: sale, with: ids)
            first = first ?? ids.lowerBound
        }
        return (first ?? last)...last
    }

    /// Adds requests just inserted for `sale` to the end of its line. A bulk submit's
    /// requests have consecutive ids, so they grow one run, not an index.
    private func extendLine(of sale: SaleID, with ids: ClosedRange<RequestID>) throws {
        let range: KeyValuePairs<String, SQLValue> = [
            ":sale": .text(sale.text), ":first": .integer(ids.lowerBound.value), ":last": .integer(ids.upperBound.value),
        ]
        try db.execute("UPDATE request_run SET last_id = :last WHERE sale = :sale AND last_id = :first - 1", range)
        if db.changes == 0 {
            try db.execute("INSERT INTO request_run (sale, first_id, last_id) VALUES (:sale, :first, :last)", range)
        }
    }

    /// Stores the cursor, with the sale's high-water clock. The cursor only moves forward:
    /// anything else would decide a request twice.
    func moveLineCursor(of sale: SaleID, to cursor: RequestID, at now: Instant) throws {
        try db.execute(
            """
            UPDATE sale SET decided_through = :cursor, high_water = max(high_water, :now)
            WHERE id = :sale AND decided_through < :cursor
            """, [":sale": .text(sale.text), ":cursor": .integer(cursor.value), ":now": .integer(now.milliseconds)])
        guard db.changes == 1 else {
            throw FlashSaleError.internalFailure("the line of sale \(sale) would move back to request \(cursor)")
        }
    }

    func rejectableRun(of sale: SaleID, after cursor: RequestID, limit: Int64) throws -> (last: RequestID?, stoppedAtKey: Bool) {
        try db.firstRow(
            """
            WITH line AS (SELECT request.id, request.key \(lineFrom) LIMIT :limit),
                 stop AS (SELECT min(id) AS id FROM line WHERE key IS NOT NULL
                          AND EXISTS (SELECT 1 FROM booking WHERE booking.sale = :sale AND booking.key = line.key))
            SELECT max(id) AS last, (SELECT id FROM stop) IS NOT NULL AS stopped_at_key FROM line
            WHERE (SELECT id FROM stop) IS NULL OR id < (SELECT id FROM stop)
            """,
            [":sale": .text(sale.text), ":cursor": .integer(cursor.value), ":last": .integer(.max), ":limit": .integer(limit)]
        ) { try ($0.optionalInt64("last").map { RequestID($0) }, $0.bool("stopped_at_key")) } ?? (nil, false)
    }

    /// One statement for the whole run, its events in id order. The user's count of active
    /// bookings is the one mirror of `Rules` in SQL (`activeBooking`); which reason comes
    /// first is the engine's. Those at the limit are counted as SQLite writes them
    /// (`Connection.counted`): reading the run's events back cost a third of the run.
    func rejectRun(of sale: SaleID, after cursor: RequestID, through last: RequestID, atLimit: DeclineReason,
                   otherwise: DeclineReason, perUser: Int64, at now: Instant) throws -> (atLimit: Int64, otherwise: Int64) {
        db.counted.count = 0
        try db.execute(
            """
            INSERT INTO event (at, sale, kind, user, request, detail)
            SELECT :now, :sale, 'rejected', request.user, request.id, CASE
                WHEN :at_limit = :otherwise THEN :otherwise
                WHEN (SELECT count(*) FROM booking
                      WHERE booking.sale = :sale AND booking.user = request.user AND \(activeBooking)) >= :per_user
                    THEN counted(:at_limit)
                ELSE :otherwise END
            \(lineFrom)
            """,
            [":sale": .text(sale.text), ":cursor": .integer(cursor.value), ":last": .integer(last.value),
             ":now": .integer(now.milliseconds), ":at_limit": .text(atLimit.rawValue), ":otherwise": .text(otherwise.rawValue),
             ":per_user": .integer(perUser)])
        let rejected = db.changes
        let limited = atLimit == otherwise ? rejected : db.counted.count
        return (limited, rejected - limited)
    }
}

/// The SQL of a bulk submit's multi-row INSERT.
enum RequestRows {
    static let perStatement = 64

    /// OR FAIL: a failing row would keep the rows before it instead of undoing the
    /// statement, so SQLite keeps no statement journal (a copy of every page the
    /// statement changes); the whole transaction rolls back on any error anyway.
    static func insert(rows: Int, keyed: Bool) -> String {
        "INSERT OR FAIL INTO request (user, ip, user_agent, \(keyed ? "key, " : "")sale, submitted_at) VALUES "
            + (0..<rows).map { "(:u\($0), :i\($0), :a\($0), \(keyed ? ":k\($0), " : ""):sale, :now)" }.joined(separator: ", ")
    }

    static func parameters(rows: Int, keyed: Bool) -> [String] {
        (0..<rows).flatMap { [":u\($0)", ":i\($0)", ":a\($0)"] + (keyed ? [":k\($0)"] : []) } + [":sale", ":now"]
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
let lineHeadID = """
    (SELECT max(first_id, :cursor + 1) FROM request_run
     WHERE sale = :sale AND last_id > :cursor ORDER BY last_id LIMIT 1)
    """
