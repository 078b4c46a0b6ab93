import FlashSaleCore
import FlashSaleEngine

/// The attempt counters (see Schema, version 7): a transaction's tallies are kept in memory
/// until it commits, then added to `attempt_counter` and `attempt_total` by upserts, a row
/// per counter.
extension SQLiteTransaction {
    func addAttempts(_ tally: AttemptTally, of sale: SaleID) throws {
        unwrittenAttempts.append((sale, tally))
    }

    func writeAttempts() throws {
        for (sale, tally) in unwrittenAttempts {
            for counter in tally.counters() {
                try db.execute(
                    """
                    INSERT INTO attempt_counter (sale, kind, value, bucket, attempts, declined, scripted, agentless, script)
                    VALUES (:sale, :kind, :value, :bucket, :attempts, :declined, :scripted, :agentless, :script)
                    ON CONFLICT DO UPDATE SET attempts = attempts + excluded.attempts,
                        declined = declined + excluded.declined, scripted = scripted + excluded.scripted,
                        agentless = agentless + excluded.agentless, script = coalesce(script, excluded.script)
                    """,
                    [":sale": .text(sale.text), ":kind": .text(counter.kind.rawValue), ":value": .text(counter.value),
                     ":bucket": .integer(counter.bucket.milliseconds), ":attempts": .integer(counter.attempts),
                     ":declined": .integer(counter.declined), ":scripted": .integer(counter.scripted),
                     ":agentless": .integer(counter.agentless), ":script": .text(counter.script)])
            }
            try addToTotal(of: sale, reason: "", tally.totals.attempts)
            for (code, count) in tally.totals.declined {
                try addToTotal(of: sale, reason: code.rawValue, count)
            }
        }
        unwrittenAttempts.removeAll(keepingCapacity: true)
    }

    private func addToTotal(of sale: SaleID, reason: String, _ count: Int64) throws {
        guard count > 0 else { return }
        try db.execute(
            """
            INSERT INTO attempt_total (sale, reason, count) VALUES (:sale, :reason, :count)
            ON CONFLICT DO UPDATE SET count = count + excluded.count
            """, [":sale": .text(sale.text), ":reason": .text(reason), ":count": .integer(count)])
    }

    /// As stored, plus what this transaction has counted and not written yet.
    func attemptTotals(of sale: SaleID) throws -> AttemptTotals {
        var totals = AttemptTotals()
        try db.forEachRow("SELECT reason, count FROM attempt_total WHERE sale = :sale", [":sale": .text(sale.text)]) { row in
            let reason = try row.text("reason")
            let count = try row.int64("count")
            if reason.isEmpty {
                totals.attempts += count
            } else if let code = ErrorCode(rawValue: reason) {
                totals.declined[code, default: 0] += count
            } else {
                throw StoreFailure.unusable(detail: "sale \(Quoted(sale.text)) has attempts declined for the unknown reason '\(Quoted(reason))'")
            }
        }
        for (unwrittenSale, tally) in unwrittenAttempts where unwrittenSale == sale {
            totals.attempts += tally.totals.attempts
            totals.declined.merge(tally.totals.declined, uniquingKeysWith: +)
        }
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
