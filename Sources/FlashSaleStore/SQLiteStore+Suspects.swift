import Glibc
import CSQLite
import FlashSaleCore

/// `suspects`: a sale's attempt counters and stored attempts, read in three sorted passes
/// and tallied by Core's `SuspicionTally`. Read-only.
extension SQLiteStore {
    /// The sale's suspects, highest score first (exit 3 for no such sale).
    ///
    /// One read transaction: the report is one snapshot, and in WAL mode it holds up no
    /// writer while it reads. The observations are streamed three times, each sorted by
    /// SQLite (in temporary files) by requester, agent or user and then by time, so that
    /// only one group is in memory at a time: a sale of millions of attempts from millions
    /// of addresses takes a few megabytes, where a dictionary of every address took hundreds.
    public func suspects(of saleID: SaleID, thresholds: SuspicionThresholds) throws -> [Suspect] {
        try SuspectFunctions.register(on: db)
        // The connection keeps temporary data in memory (for bulk submit's statement
        // journal); here that would hold every stored attempt of the sale while it is
        // sorted, hundreds of megabytes for millions. Sorted in temporary files instead, the
        // report takes a few. (temp_store can only change outside a transaction.)
        let tempStore = try db.firstRow("PRAGMA temp_store") { $0.int64(0) } ?? 0
        try db.execute("PRAGMA temp_store = FILE")
        defer { try? db.execute("PRAGMA temp_store = \(tempStore)") }
        do {
            return try ranked(saleID, thresholds: thresholds)
        } catch let error as SQLiteError {
            // Full, a report writes nothing but its sorts: "the disk is full; nothing was
            // written" blamed the database's disk, with room to spare (found by probing).
            guard case .full? = error.failure else { throw error }
            throw FlashSaleError.io("no room to sort the sale's attempts in \(SQLiteTemporaryDirectory.path ?? "SQLite's temporary directory") "
                                    + "(SQLITE_TMPDIR, else TMPDIR, else /var/tmp): point TMPDIR at a disk with room")
        }
    }

    private func ranked(_ saleID: SaleID, thresholds: SuspicionThresholds) throws -> [Suspect] {
        try db.readTransaction {
            _ = try requireSale(saleID)
            var tally = SuspicionTally(thresholds: thresholds)
            let sale: KeyValuePairs<String, SQLValue> = [":sale": .text(saleID.text)]
            try db.forEachRow(
                """
                WITH \(storedAttempts)
                SELECT value AS grouped, bucket AS at, attempts, declined, scripted, agentless, script, NULL AS user, users
                FROM attempt_counter WHERE sale = :sale AND (kind = 'ip' OR kind = 'network')
                UNION ALL
                SELECT suspect_requester(ip), at, 0, declined, 0, 0, NULL, user, NULL FROM stored
                WHERE suspect_requester(ip) IS NOT NULL
                ORDER BY grouped, at
                """, sale
            ) { tally.addByRequester(try $0.text("grouped"), try observation($0)) }
            // Only script agents are suspects, so only theirs need sorting.
            try db.forEachRow(
                """
                WITH \(storedAttempts)
                SELECT value AS grouped, bucket AS at, attempts, declined, scripted, agentless, script, NULL AS user, users
                FROM attempt_counter WHERE sale = :sale AND kind = 'agent' AND suspect_script(value) IS NOT NULL
                UNION ALL
                SELECT user_agent, at, 0, declined, 0, 0, NULL, user, NULL FROM stored WHERE suspect_script(user_agent) IS NOT NULL
                ORDER BY grouped, at
                """, sale
            ) { tally.addByAgent(try $0.text("grouped"), try observation($0)) }
            // A user's own stored attempts add only the queue's declines.
            try db.forEachRow(
                """
                WITH \(storedAttempts)
                SELECT value AS grouped, bucket AS at, attempts, declined, scripted, agentless, script, NULL AS user, users
                FROM attempt_counter WHERE sale = :sale AND kind = 'user'
                UNION ALL
                SELECT user, at, 0, declined, 0, 0, NULL, NULL, NULL FROM stored WHERE declined
                ORDER BY grouped, at
                """, sale
            ) { tally.addByUser(try $0.text("grouped"), try observation($0)) }
            return tally.ranked()
        }
    }
}

/// Where SQLite puts a connection's temporary files (its sorts, with `temp_store = FILE`):
/// the first writable directory of `$SQLITE_TMPDIR`, `$TMPDIR`, /var/tmp, /usr/tmp, /tmp
/// and `.`, as its Unix VFS chooses (`unixTempFileDir`); nil when none is.
enum SQLiteTemporaryDirectory {
    static var path: String? {
        let candidates = [getenv("SQLITE_TMPDIR").map { String(cString: $0) }, getenv("TMPDIR").map { String(cString: $0) },
                          "/var/tmp", "/usr/tmp", "/tmp", "."]
        return candidates.lazy.compactMap { $0 }.first { directory in
            var status = stat()
            return stat(directory, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR && access(directory, W_OK | X_OK) == 0
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
            guard let ip = SQLFunctionValues.text(of: arguments?[0]), let requester = SuspicionTally.requester(of: ip) else {
                sqlite3_result_null(context)
                return
            }
            SQLFunctionValues.result(requester, of: context)
        }, nil, nil, nil)
        guard code == SQLITE_OK else { throw SQLiteError(code: code, connection: connection.handle) }
        code = sqlite3_create_function_v2(connection.handle, "suspect_script", 1, flags, nil, { context, _, arguments in
            // suspect_script(user_agent): the script name the agent gives away, or NULL.
            guard let agent = SQLFunctionValues.text(of: arguments?[0]), let name = SuspicionTally.scriptName(of: agent) else {
                sqlite3_result_null(context)
                return
            }
            SQLFunctionValues.result(name, of: context)
        }, nil, nil, nil)
        guard code == SQLITE_OK else { throw SQLiteError(code: code, connection: connection.handle) }
    }
}

/// The stored attempts of sale `:sale`: every booking, and every request, declined if
/// `process` rejected it (its decision is the event that names it: Schema, version 4).
/// Their attempts are in the counters (since version 7, which counted those stored
/// before); these add who was behind them, and the queue's declines.
private let storedAttempts = """
    stored AS (
        SELECT created_at AS at, user, ip, user_agent, 0 AS declined FROM booking WHERE sale = :sale
        UNION ALL
        SELECT request.submitted_at, request.user, request.ip, request.user_agent, coalesce(decision.kind = 'rejected', 0)
        FROM request LEFT JOIN event AS decision ON decision.request = request.id
        WHERE request.sale = :sale)
    """

private func observation(_ row: Row) throws -> Observation {
    try Observation(at: Instant(milliseconds: row.int64("at")), attempts: Int(row.int64("attempts")),
                    declines: Int(row.int64("declined")), scripted: Int(row.int64("scripted")),
                    withoutAgent: Int(row.int64("agentless")), script: row.optionalText("script"),
                    user: row.optionalText("user"),
                    users: UserSample(json: row.optionalText("users")))
}
