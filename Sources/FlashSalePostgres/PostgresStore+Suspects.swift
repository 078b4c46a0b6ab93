import FlashSaleCore
import FlashSaleEngine

/// `suspects`: a sale's attempt counters and stored attempts, tallied by Core's
/// `SuspicionTally` in three passes (by requester, agent, user), each in group and time
/// order. The groups are Core's (`SuspicionTally.requester(of:)`, `scriptName(of:)`),
/// which PostgreSQL cannot call, so each pass is sorted here: it holds one pass's rows.
extension PostgresStore {
    public func suspects(of saleID: SaleID, thresholds: SuspicionThresholds) throws -> [Suspect] {
        try report { transaction in
            guard try transaction.sale(saleID) != nil else { throw SaleError.saleNotFound(saleID) }
            var tally = SuspicionTally(thresholds: thresholds)
            let sale = SQLValue.text(saleID.text)
            let counters = { (kinds: String) throws -> [(String, Observation)] in
                try self.session.rows(
                    """
                    SELECT value, bucket AS at, attempts, declined, scripted, agentless, script, NULL::text AS user_id
                    FROM attempt_counter WHERE sale = $1 AND kind IN (\(kinds))
                    """, [sale]) { (try $0.text("value"), try observation($0)) }
            }
            let stored = try session.rows(
                """
                SELECT created_at AS at, user_id, ip, user_agent, false AS declined FROM booking WHERE sale = $1
                UNION ALL
                SELECT request.submitted_at, request.user_id, request.ip, request.user_agent,
                       coalesce(decision.kind = 'rejected', false)
                FROM request LEFT JOIN event AS decision ON decision.request = request.id
                WHERE request.sale = $1
                """, [sale]) { row in
                (ip: try row.optionalText("ip"), agent: try row.optionalText("user_agent"), user: try row.text("user_id"),
                  observation: Observation(at: Instant(milliseconds: try row.int64("at")),
                                          declines: try row.bool("declined") ? 1 : 0, user: try row.text("user_id")))
            }
            var byRequester = try counters("'ip', 'network'")
            var byAgent = try counters("'agent'").filter { SuspicionTally.scriptName(of: $0.0) != nil }
            var byUser = try counters("'user'")
            for attempt in stored {
                if let requester = attempt.ip.flatMap(SuspicionTally.requester(of:)) {
                    byRequester.append((requester, attempt.observation))
                }
                // Only script agents are suspects.
                if let agent = attempt.agent, SuspicionTally.scriptName(of: agent) != nil {
                    byAgent.append((agent, attempt.observation))
                }
                // A user's own stored attempts add only the queue's declines, without a user.
                if attempt.observation.declines > 0 {
                    byUser.append((attempt.user, Observation(at: attempt.observation.at, declines: 1)))
                }
            }
            for (requester, observation) in ordered(byRequester) { tally.addByRequester(requester, observation) }
            for (agent, observation) in ordered(byAgent) { tally.addByAgent(agent, observation) }
            for (user, observation) in ordered(byUser) { tally.addByUser(user, observation) }
            return tally.ranked()
        }
    }
}

/// In group order, then time order, as the tally takes them (SQLite's ORDER BY grouped, at,
/// which compares text by its bytes).
private func ordered(_ rows: [(String, Observation)]) -> [(String, Observation)] {
    rows.sorted { a, b in
        if !a.0.utf8.elementsEqual(b.0.utf8) { return a.0.utf8.lexicographicallyPrecedes(b.0.utf8) }
        return a.1.at < b.1.at
    }
}

private func observation(_ row: Row) throws -> Observation {
    try Observation(at: Instant(milliseconds: row.int64("at")), attempts: Int(row.int64("attempts")),
                    declines: Int(row.int64("declined")), scripted: Int(row.int64("scripted")),
                    withoutAgent: Int(row.int64("agentless")), script: row.optionalText("script"),
                    user: row.optionalText("user_id"))
}
