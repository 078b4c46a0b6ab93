import CSQLite
import FlashSaleCore

/// `suspects`: every booking attempt of a sale, read in three sorted passes and tallied
/// by Core's `SuspicionTally`. Read-only.
extension SQLiteStore {
    /// The sale's suspects, highest score first (exit 3 for no such sale).
    ///
    /// One read transaction: the report is one snapshot, and in WAL mode it holds up no
    /// writer while it reads. The attempts are streamed three times, each sorted by SQLite
    /// (in temporary files) by requester, agent or user and then by time, so that only
    /// one group is in memory at a time: a sale of millions of attempts from millions of
    /// addresses takes a few megabytes, where a dictionary of every address took hundreds.
    public func suspects(of saleID: SaleID, thresholds: SuspicionThresholds = .standard) throws -> [Suspect] {
        try SuspectFunctions.register(on: db)
        // The connection keeps temporary data in memory (for bulk submit's statement
        // journal); here that would hold every attempt of the sale while it is sorted,
        // hundreds of megabytes for millions. Sorted in temporary files instead, the report
        // takes a few. (temp_store can only change outside a transaction.)
        let tempStore = try db.firstRow("PRAGMA temp_store") { $0.int64(0) } ?? 0
        try db.execute("PRAGMA temp_store = FILE")
        defer { try? db.execute("PRAGMA temp_store = \(tempStore)") }
        return try db.readTransaction {
            _ = try requireSale(saleID)
            var tally = SuspicionTally(thresholds: thresholds)
            let sale: KeyValuePairs<String, SQLValue> = [":sale": .text(saleID.text)]
            try db.forEachRow(
                """
                SELECT at, user, ip, user_agent, declined FROM (\(attempts))
                WHERE suspect_requester(ip) IS NOT NULL ORDER BY suspect_requester(ip), at
                """, sale
            ) { tally.addByRequester(try attempt($0)) }
            // Only script agents are suspects, so only their attempts need sorting.
            try db.forEachRow(
                """
                SELECT at, user, ip, user_agent, declined FROM (\(attempts))
                WHERE suspect_script(user_agent) ORDER BY user_agent, at
                """, sale
            ) { tally.addByAgent(try attempt($0)) }
            try db.forEachRow("SELECT at, user, ip, user_agent, declined FROM (\(attempts)) ORDER BY user, at", sale) {
                tally.addByUser(try attempt($0))
            }
            return tally.ranked()
        }
    }
}

/// The two SQL functions the passes sort and filter by, the rules of Core's
/// `SuspicionTally` (so the groups SQLite sorts together are the groups Core counts).
/// Registered on the connection for each report; DIRECTONLY keeps them out of schema
/// and triggers.
enum SuspectFunctions {
    static func register(on connection: Connection) throws {
        let flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY
        var code = sqlite3_create_function_v2(connection.handle, "suspect_requester", 1, flags, nil, { context, _, arguments in
            // suspect_requester(ip): `203.0.113.7`, `2001:db8:1:2::/64`, or NULL.
            guard let ip = firstArgument(arguments), let requester = SuspicionTally.requester(of: ip) else {
                sqlite3_result_null(context)
                return
            }
            var text = requester
            text.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) {
                    sqlite3_result_text(context, $0.baseAddress, Int32($0.count), csqlite_transient())
                }
            }
        }, nil, nil, nil)
        guard code == SQLITE_OK else { throw SQLiteError(code: code, connection: connection.handle) }
        code = sqlite3_create_function_v2(connection.handle, "suspect_script", 1, flags, nil, { context, _, arguments in
            // suspect_script(user_agent): 1 when the agent looks like a script, else 0.
            let script = firstArgument(arguments).map(SuspicionTally.looksLikeScript) ?? false
            sqlite3_result_int(context, script ? 1 : 0)
        }, nil, nil, nil)
        guard code == SQLITE_OK else { throw SQLiteError(code: code, connection: connection.handle) }
    }
}

/// The first argument of a SQL function call as text; nil for NULL.
private func firstArgument(_ arguments: UnsafeMutablePointer<OpaquePointer?>?) -> String? {
    guard let value = arguments?[0], let bytes = sqlite3_value_text(value) else { return nil }
    return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_value_bytes(value))), as: UTF8.self)
}

/// Each booking attempt of sale `:sale` once: a queued request at the time it was submitted
/// (whatever came of it), and a booking only if it was made directly, since a booking that
/// a request became would count that attempt twice, at the time `process` ran. A request's
/// decision is the event that names it (see Schema, version 4).
private let attempts = """
    SELECT created_at AS at, user, ip, user_agent, 0 AS declined FROM booking
    WHERE sale = :sale
      AND id NOT IN (SELECT booking FROM event WHERE sale = :sale AND request IS NOT NULL AND kind IN ('held', 'accepted'))
    UNION ALL
    SELECT request.submitted_at, request.user, request.ip, request.user_agent, coalesce(decision.kind = 'rejected', 0)
    FROM request LEFT JOIN event AS decision ON decision.request = request.id
    WHERE request.sale = :sale
    """

private func attempt(_ row: Row) throws -> Observation {
    try Observation(at: Instant(milliseconds: row.int64("at")), user: row.text("user"), ip: row.optionalText("ip"),
                    userAgent: row.optionalText("user_agent"), declined: row.int64("declined") != 0)
}
