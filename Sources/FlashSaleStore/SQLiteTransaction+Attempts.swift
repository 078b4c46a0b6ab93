import FlashSaleCore
import FlashSaleEngine

/// The attempt counters (see Schema, version 7): a transaction's tallies are kept in memory
/// until it commits, then added to `attempt_counter` by upserts, a row per counter and per
/// total.
extension SQLiteTransaction {
    func addAttempts(_ tally: AttemptTally, of sale: SaleID) throws {
        unwrittenAttempts.append((sale, tally))
    }

    /// One statement for the whole write, bound by position (`RowStatement`): a commit of
    /// a busy group writes a counter for nearly every request (each user's), and the
    /// statement's lookup and its names' binding were a third of each (callgrind).
    func writeAttempts() throws {
        guard !unwrittenAttempts.isEmpty else { return }
        let upsert = try RowStatement(db, Self.upsert, parameters: [":sale", ":kind", ":value", ":bucket", ":attempts", ":declined",
                                                                    ":scripted", ":agentless", ":script", ":users"])
        for (sale, tally) in unwrittenAttempts {
            for counter in tally.counters() {
                try upsert.run(.text(sale.text), .text(counter.kind.rawValue), .text(counter.value),
                               .integer(counter.bucket.milliseconds), .integer(counter.attempts), .integer(counter.declined),
                               .integer(counter.scripted), .integer(counter.agentless), .text(counter.script),
                               .text(counter.users.json))
            }
            let totals = tally.totals
            try addToTotal(of: sale, reason: "", totals.attempts, with: upsert)
            for (code, count) in totals.declined {
                try addToTotal(of: sale, reason: code.rawValue, count, with: upsert)
            }
        }
        unwrittenAttempts.removeAll(keepingCapacity: true)
    }

    /// A sale's total: kind 'sale', bucket 0, counted in `attempts`.
    private func addToTotal(of sale: SaleID, reason: String, _ count: Int64, with upsert: RowStatement) throws {
        guard count > 0 else { return }
        try upsert.run(.text(sale.text), .text(Self.totalKind), .text(reason), .integer(0), .integer(count), .integer(0),
                       .integer(0), .integer(0), .null, .text(UserSample().json))
    }

    private static let totalKind = "sale"

    private static let upsert = """
        INSERT INTO attempt_counter (sale, kind, value, bucket, attempts, declined, scripted, agentless, script, users)
        VALUES (:sale, :kind, :value, :bucket, :attempts, :declined, :scripted, :agentless, :script, :users)
        ON CONFLICT DO UPDATE SET attempts = attempts + excluded.attempts,
            declined = declined + excluded.declined, scripted = scripted + excluded.scripted,
            agentless = agentless + excluded.agentless, script = coalesce(script, excluded.script),
            users = users_added(users, excluded.users)
        """

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
