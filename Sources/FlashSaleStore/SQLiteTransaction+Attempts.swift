import FlashSaleCore
import FlashSaleEngine

/// The attempt counters (see Schema, version 7): a transaction's tallies are kept in memory
/// until it commits, then added to `attempt_counter` by upserts, a row per counter and per
/// total.
extension SQLiteTransaction {
    func addAttempts(_ tally: AttemptTally, of sale: SaleID) throws {
        unwrittenAttempts.append((sale, tally))
    }

    func writeAttempts() throws {
        for (sale, tally) in unwrittenAttempts {
            for counter in tally.counters() {
                try add(to: sale, kind: counter.kind.rawValue, value: counter.value, bucket: counter.bucket.milliseconds,
                        attempts: counter.attempts, declined: counter.declined, scripted: counter.scripted,
                        agentless: counter.agentless, script: counter.script, users: counter.users)
            }
            let totals = tally.totals
            try addToTotal(of: sale, reason: "", totals.attempts)
            for (code, count) in totals.declined {
                try addToTotal(of: sale, reason: code.rawValue, count)
            }
        }
        unwrittenAttempts.removeAll(keepingCapacity: true)
    }

    /// A sale's total: kind 'sale', bucket 0, counted in `attempts`.
    private func addToTotal(of sale: SaleID, reason: String, _ count: Int64) throws {
        guard count > 0 else { return }
        try add(to: sale, kind: Self.totalKind, value: reason, bucket: 0, attempts: count, declined: 0, scripted: 0,
                agentless: 0, script: nil, users: UserSample())
    }

    private static let totalKind = "sale"

    private func add(to sale: SaleID, kind: String, value: String, bucket: Int64, attempts: Int64, declined: Int64,
                     scripted: Int64, agentless: Int64, script: String?, users: UserSample) throws {
        try db.execute(
            """
            INSERT INTO attempt_counter (sale, kind, value, bucket, attempts, declined, scripted, agentless, script, users)
            VALUES (:sale, :kind, :value, :bucket, :attempts, :declined, :scripted, :agentless, :script, :users)
            ON CONFLICT DO UPDATE SET attempts = attempts + excluded.attempts,
                declined = declined + excluded.declined, scripted = scripted + excluded.scripted,
                agentless = agentless + excluded.agentless, script = coalesce(script, excluded.script),
                users = users_added(users, excluded.users)
            """,
            [":sale": .text(sale.text), ":kind": .text(kind), ":value": .text(value), ":bucket": .integer(bucket),
             ":attempts": .integer(attempts), ":declined": .integer(declined), ":scripted": .integer(scripted),
             ":agentless": .integer(agentless), ":script": .text(script), ":users": .text(users.json)])
    }

    /// As stored, plus what this transaction has counted and not written yet.
    func attemptTotals(of sale: SaleID) throws -> AttemptTotals {
        var totals = AttemptTotals()
        try db.forEachRow("SELECT value, attempts FROM attempt_counter WHERE sale = :sale AND kind = :kind",
                          [":sale": .text(sale.text), ":kind": .text(Self.totalKind)]) { try totals.add(storedTotal: $0, of: sale) }
        totals.add(unwritten: unwrittenAttempts, of: sale)
        return totals
    }

    func attempts(by kind: SuspectKind, _ value: String, in sale: SaleID) throws -> Int64 {
        let stored = try store.count(
            "SELECT coalesce(sum(attempts), 0) FROM attempt_counter WHERE sale = :sale AND kind = :kind AND value = :value",
            [":sale": .text(sale.text), ":kind": .text(kind.rawValue), ":value": .text(value)])
        return unwrittenAttempts.filter { $0.sale == sale }.reduce(stored) { total, unwritten in
            total + unwritten.tally.counters().filter { $0.kind == kind && $0.value.utf8.elementsEqual(value.utf8) }.reduce(0) { $0 + $1.attempts }
        }
    }
}
