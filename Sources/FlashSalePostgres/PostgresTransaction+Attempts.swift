import FlashSaleCore
import FlashSaleEngine

/// The attempt counters, as in SQLite (its Schema, version 7): a transaction's tallies are
/// kept in memory until it commits, then added to `attempt_counter` by upserts, one query
/// of the commit's statement for all of its counters.
extension PostgresTransaction {
    /// An empty tally is no write: kept, it made the commit say it had changed the
    /// database (an empty `submit --file`, found by probing).
    func addAttempts(_ tally: AttemptTally, of sale: SaleID) throws {
        guard !tally.isEmpty else { return }
        unwrittenAttempts.append((sale, tally))
    }

    /// Rows in a fixed order (sale, kind, value, bucket, by their bytes), so that two
    /// transactions adding to the same counters lock them in the same order.
    func addAttemptCounts(to batch: inout WriteBatch) {
        var rows: [ExactText: (kind: String, value: String, bucket: Int64, counts: [Int64], script: String?, users: UserSample,
                            sale: String)] = [:]
        func add(_ sale: SaleID, _ kind: String, _ value: String, _ bucket: Int64, _ counts: [Int64], _ script: String?,
                 _ users: UserSample = UserSample()) {
            let key = ExactText("\(sale.text)\u{0}\(kind)\u{0}\(value)\u{0}\(bucket)")
            if var row = rows[key] {
                row.counts = zip(row.counts, counts).map(+)
                row.script = row.script ?? script
                row.users.formUnion(users)
                rows[key] = row
            } else {
                rows[key] = (kind, value, bucket, counts, script, users, sale.text)
            }
        }
        for (sale, tally) in unwrittenAttempts {
            for counter in tally.counters() {
                add(sale, counter.kind.rawValue, counter.value, counter.bucket.milliseconds,
                    [counter.attempts, counter.declined, counter.scripted, counter.agentless], counter.script, counter.users)
            }
            let totals = tally.totals
            if totals.attempts > 0 { add(sale, Self.totalKind, "", 0, [totals.attempts, 0, 0, 0], nil) }
            for (code, count) in totals.declined where count > 0 {
                add(sale, Self.totalKind, code.rawValue, 0, [count, 0, 0, 0], nil)
            }
        }
        unwrittenAttempts.removeAll(keepingCapacity: true)
        guard !rows.isEmpty else { return }
        // One statement from arrays (`ArrayRows`): a VALUES list of nine parameters a row
        // stops at 7,281 counters (65,535 parameters), which a group deciding for ten sales
        // or more (768 counters each at most) could reach.
        let ordered = rows.keys.sorted { $0.text.utf8.lexicographicallyPrecedes($1.text.utf8) }.compactMap { rows[$0] }
        var columns = batch.rows()
        columns.text("sale", ordered.map(\.sale))
        columns.text("kind", ordered.map(\.kind))
        columns.text("value", ordered.map(\.value))
        columns.int("bucket", ordered.map(\.bucket))
        for (index, name) in ["attempts", "declined", "scripted", "agentless"].enumerated() {
            columns.int(name, ordered.map { $0.counts[index] })
        }
        columns.optionalText("script", ordered.map(\.script))
        columns.optionalText("users", ordered.map(\.users.json))
        // No row brings users (a `book` without --ip or --agent): the stored ones stay, and
        // the merge is left out of the statement, which a new connection's server parses and
        // plans from scratch: 0.7 ms of a single `book`'s 17 on PostgreSQL.
        let users = ordered.contains { !$0.users.isEmpty } ? Self.usersAdded : "attempt_counter.users"
        batch.add(
            """
            INSERT INTO attempt_counter (sale, kind, value, bucket, attempts, declined, scripted, agentless, script, users)
            \(columns.select())
            ON CONFLICT (sale, kind, value, bucket) DO UPDATE SET
                attempts = attempt_counter.attempts + excluded.attempts,
                declined = attempt_counter.declined + excluded.declined,
                scripted = attempt_counter.scripted + excluded.scripted,
                agentless = attempt_counter.agentless + excluded.agentless,
                script = coalesce(attempt_counter.script, excluded.script),
                users = \(users)
            """, rows: columns)
    }

    /// The users of the stored counter and of the added one, as `UserSample.formUnion` adds
    /// them: the smallest of both, at most `UserSample.kept`. Merged only when both have
    /// some and they differ: the same user again from the same address is most upserts.
    private static let usersAdded = """
        CASE WHEN excluded.users IS NULL OR excluded.users = attempt_counter.users THEN attempt_counter.users
             WHEN attempt_counter.users IS NULL THEN excluded.users ELSE (
            SELECT '[' || string_agg(hash::text, ',' ORDER BY hash) || ']' FROM (
                SELECT value::bigint AS hash FROM json_array_elements_text(attempt_counter.users::json)
                UNION SELECT value::bigint FROM json_array_elements_text(excluded.users::json)
                ORDER BY hash LIMIT \(UserSample.kept)) AS kept
        ) END
        """

    static var totalKind: String { "sale" }

    /// As stored, plus what this transaction has counted and not written yet.
    func attemptTotals(of sale: SaleID) throws -> AttemptTotals {
        var totals = AttemptTotals()
        for row in try session.rows("SELECT value, attempts FROM attempt_counter WHERE sale = $1 AND kind = $2",
                                    [.text(sale.text), .text(Self.totalKind)], { $0 }) {
            try totals.add(storedTotal: row, of: sale)
        }
        totals.add(unwritten: unwrittenAttempts, of: sale)
        return totals
    }

    func attempts(by kind: SuspectKind, _ value: String, in sale: SaleID) throws -> Int64 {
        let stored = try session.count(
            "SELECT coalesce(sum(attempts), 0)::bigint FROM attempt_counter WHERE sale = $1 AND kind = $2 AND value = $3",
            [.text(sale.text), .text(kind.rawValue), .text(value)])
        return unwrittenAttempts.filter { $0.sale == sale }.reduce(stored) { total, unwritten in
            total + unwritten.tally.counters().filter { $0.kind == kind && $0.value.utf8.elementsEqual(value.utf8) }.reduce(0) { $0 + $1.attempts }
        }
    }
}
