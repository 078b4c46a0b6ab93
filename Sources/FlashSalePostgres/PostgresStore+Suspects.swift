import FlashSaleCore
import FlashSaleEngine

/// `suspects`: a sale's attempt counters and stored attempts, tallied by Core's
/// `SuspicionTally` in three passes (by requester, agent, user), each sorted by the server
/// in group and time order (a group's rows together, which is all the tally needs) and
/// read a page at a time: the report takes the memory of a page, as SQLite's does, where
/// holding a pass's rows to sort them here took 159 MiB for 200,000 bookings. The groups
/// are Core's, which PostgreSQL cannot compute: an address's requester
/// (`SuspicionTally.requester(of:)`) is looked up here once per distinct address and handed
/// to the server in `suspect_requester`; a script agent (`scriptName(of:)`) is picked here
/// as its group is read.
extension PostgresStore {
    public func suspects(of saleID: SaleID, thresholds: SuspicionThresholds) throws -> [Suspect] {
        // Made before the report's transaction, which is read only; emptied by each commit.
        // In byte order, as the tables it is joined with (schema version 4).
        try executeOutsideTransaction("""
            CREATE TEMPORARY TABLE IF NOT EXISTS suspect_requester (
                ip text COLLATE "C" PRIMARY KEY, requester text COLLATE "C" NOT NULL) ON COMMIT DELETE ROWS
            """)
        return try report { transaction in
            guard try transaction.sale(saleID) != nil else { throw SaleError.saleNotFound(saleID) }
            let sale = SQLValue.text(saleID.text)
            try mapRequesters(of: sale, atOnce: transaction.rowsAtOnce)
            var tally = SuspicionTally(thresholds: thresholds)
            try session.forEachRow(pass(counting: "'ip', 'network'", stored: """
                SELECT mapped.requester, stored.at, 0, stored.declined, 0, 0, NULL, stored.user_id, NULL
                FROM stored JOIN suspect_requester AS mapped ON mapped.ip = stored.ip
                """), [sale]) { tally.addByRequester(try $0.text("grouped"), try observation($0)) }
            // Only script agents are suspects: each agent's name is looked at once, as its
            // group begins.
            var agent: (text: String, isScript: Bool)?
            try session.forEachRow(pass(counting: "'agent'", stored: """
                SELECT user_agent, at, 0, declined, 0, 0, NULL, user_id, NULL FROM stored WHERE user_agent IS NOT NULL
                """), [sale]) { row in
                let text = try row.text("grouped")
                if !(agent?.text.utf8.elementsEqual(text.utf8) ?? false) {
                    agent = (text, SuspicionTally.scriptName(of: text) != nil)
                }
                if agent?.isScript == true { tally.addByAgent(text, try observation(row)) }
            }
            // A user's own stored attempts add only the queue's declines, without a user.
            try session.forEachRow(pass(counting: "'user'", stored: """
                SELECT user_id, at, 0, declined, 0, 0, NULL, NULL, NULL FROM stored WHERE declined > 0
                """), [sale]) { tally.addByUser(try $0.text("grouped"), try observation($0)) }
            return tally.ranked()
        }
    }

    /// Each distinct address of the sale's stored attempts with its requester, into
    /// `suspect_requester`, `atOnce` rows a statement; an address that is none is left out.
    private func mapRequesters(of sale: SQLValue, atOnce: Int) throws {
        var addresses: [String] = []
        var requesters: [String] = []
        func flush() throws {
            guard !addresses.isEmpty else { return }
            var rows = ArrayRows()
            rows.text("ip", addresses)
            rows.text("requester", requesters)
            try session.execute("INSERT INTO suspect_requester (ip, requester) " + rows.select(), rows.values)
            addresses.removeAll(keepingCapacity: true)
            requesters.removeAll(keepingCapacity: true)
        }
        try session.forEachRow(
            "SELECT ip FROM booking WHERE sale = $1 AND ip IS NOT NULL UNION SELECT ip FROM request WHERE sale = $1 AND ip IS NOT NULL",
            [sale]) { row in
            let address = try row.text("ip")
            guard let requester = SuspicionTally.requester(of: address) else { return }
            addresses.append(address)
            requesters.append(requester)
            if addresses.count == atOnce { try flush() }
        }
        try flush()
    }
}

/// A sale's stored attempts: its bookings, and its queued requests with whether their
/// decision declined them. The sale is `$1`.
private let storedAttempts = """
    stored AS (
        SELECT created_at AS at, user_id, ip, user_agent, 0::bigint AS declined FROM booking WHERE sale = $1
        UNION ALL
        SELECT request.submitted_at, request.user_id, request.ip, request.user_agent,
               CASE WHEN decision.kind = 'rejected' OR ran.request IS NOT NULL THEN 1::bigint ELSE 0::bigint END
        FROM request LEFT JOIN event AS decision ON decision.request = request.id
        LEFT JOIN (\(RejectedRuns.ofSale)) AS ran ON ran.request = request.id
        WHERE request.sale = $1)
    """

/// One pass: the sale's counters of `kinds` and its stored attempts as `stored` selects them
/// (from `stored`, the same columns), in group and time order. The sale is `$1`.
private func pass(counting kinds: String, stored: String) -> String {
    """
    WITH \(storedAttempts)
    SELECT value AS grouped, bucket AS at, attempts, declined, scripted, agentless, script, NULL::text AS user_id,
           users
    FROM attempt_counter WHERE sale = $1 AND kind IN (\(kinds))
    UNION ALL
    \(stored)
    ORDER BY grouped, at
    """
}

private func observation(_ row: Row) throws -> Observation {
    try Observation(at: Instant(milliseconds: row.int64("at")), attempts: Int(row.int64("attempts")),
                    declines: Int(row.int64("declined")), scripted: Int(row.int64("scripted")),
                    withoutAgent: Int(row.int64("agentless")), script: row.optionalText("script"),
                    user: row.optionalText("user_id"),
                    users: UserSample(json: row.optionalText("users")))
}
