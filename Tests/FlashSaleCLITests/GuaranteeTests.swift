import Foundation
import Testing
import FlashSaleCore
import FlashSaleTestSupport
@testable import FlashSaleStore

/// stress/recount.sql, the recount written from the tables' meaning rather than from
/// `verify`: the violations it finds in `database` (empty: none), and its figures line.
func recount(_ database: String) throws -> (violations: [String], figures: String) {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let script = try String(contentsOf: root.appendingPathComponent("stress/recount.sql"), encoding: .utf8)
    // The sqlite3 shell's dot-commands aside, it is plain SQL: statements end a line with ';'.
    let sql = script.split(separator: "\n", omittingEmptySubsequences: false)
        .filter { !$0.hasPrefix(".") && !$0.hasPrefix("--") }.joined(separator: "\n")
    let statements = sql.components(separatedBy: ";\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    let connection = try Connection(path: database, busyTimeout: .seconds(5))
    var violations: [String] = []
    var figures = ""
    for statement in statements {
        if statement.hasPrefix("SELECT") {
            try connection.forEachRow(statement) { row in
                let line = (0..<3).map { row.optionalText($0) ?? "" }.joined(separator: " ")
                if row.text(0) == "violation" { violations.append(line) } else { figures = line }
            }
        } else {
            try connection.execute(statement)
        }
    }
    return (violations, figures)
}

/// Small, seeded versions of stress/'s checks (issue 6), so that a regression fails CI.
@Suite(.serialized) struct GuaranteeTests {
    /// 16 processes, 40 random operations each, every kind of write on three small sales:
    /// every exit code one the contract allows, and the recount clean afterwards.
    @Test(arguments: commandLineStores, [UInt64(11)])
    func mixedOperationsFromSixteenProcessesKeepEveryGuarantee(store: TestStore, seed: UInt64) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5", "--hold", "2s"], now: nil)
        try box.run(["create-sale", "s2", "--inventory", "12", "--hold", "1s", "--per-user", "2"], now: nil)
        try box.run(["create-sale", "s3", "--inventory", "3", "--hold", "250ms"], now: nil)
        let log = ExitLog()
        DispatchQueue.concurrentPerform(iterations: 16) { worker in
            var random = SplitMix64(seed: seed &* 100 &+ UInt64(worker))
            var mine: [(sale: String, booking: String)] = []
            for step in 0..<40 {
                let sale = ["s1", "s2", "s3"][Int.random(in: 0..<3, using: &random)]
                let user = "u\(Int.random(in: 0..<60, using: &random))"
                let roll = Int.random(in: 0..<100, using: &random)
                let (op, arguments): (String, [String]) = switch roll {
                case ..<30: ("book", ["book", sale, user] + (step % 3 == 0 ? ["--key", "b\(worker).\(step)"] : []))
                case ..<60 where !mine.isEmpty:
                    { let (s, b) = mine[Int.random(in: 0..<mine.count, using: &random)]
                      return roll < 45 ? ("confirm", ["confirm", s, b]) : roll < 55 ? ("cancel", ["cancel", s, b])
                          : ("cancel-force", ["cancel", s, b, "--force"]) }()
                case ..<65: ("sweep", ["sweep"])
                case ..<78: ("submit", ["submit", sale, user])
                case ..<88: ("process", ["process", "--batch", "5"])
                case ..<92: ("seed-add", ["seed-inventory", sale, "1"])
                case ..<94: ("seed-set", ["seed-inventory", sale, "\(Int.random(in: 2...12, using: &random))", "--set"])
                case ..<97: ("pause", ["pause", sale])
                default: ("resume", ["resume", sale])
                }
                let result = (try? box.spawn(arguments, now: nil)) ?? Result(status: -1, stdout: "", stderr: "")
                log.record(op, result)
                if op == "book", result.status == 0 { mine.append((sale, result.line)) }
            }
        }
        for sale in ["s1", "s2", "s3"] { try box.run(["resume", sale], now: nil) }
        #expect(try box.run(["process"], now: nil).status == 0)

        #expect(log.unexpected.isEmpty, "exit codes the contract does not allow: \(log.unexpected.prefix(5))")
        #expect(log.total == 640)
        try expectRecountClean(box)
        #expect(try box.run(["verify"], now: nil).stdout == "ok\n")
    }

    /// The recount is only worth its silence if it speaks: a second hold for a user at the
    /// limit, a request decided twice and out of line, a clock run backwards, all planted
    /// behind flashsale's back, are each named.
    @Test func theRecountNamesPlantedViolations() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try box.run(["book", "s1", "u1"])
        try box.run(["submit", "s1", "u2"])
        try box.run(["process"])
        #expect(try recount(box.database).violations.isEmpty)
        for sql in [
            """
            INSERT INTO booking (id, sale, user, status, created_at, expires_at)
            VALUES ('bk_planted', 's1', 'u1', 'held', 1795532400000, 1795532700000)
            """,
            "UPDATE sale SET available = available - 1, held = held + 1",
            "INSERT INTO event (at, sale, kind, booking, user) VALUES (1795532400000, 's1', 'held', 'bk_planted', 'u1')",
            // A second decision: the unique index refuses one, so it goes first.
            "DROP INDEX event_by_request",
            "INSERT INTO event (at, sale, kind, user, request, detail) VALUES (1795532300000, 's1', 'rejected', 'u2', 1, 'sold_out')",
            "INSERT INTO request (sale, user, submitted_at) VALUES ('s1', 'u9', 1795532400000)",
        ] {
            try FlashSaleStoreBackdoor.execute(box.database, sql)
        }
        let found = Set(try recount(box.database).violations.map { $0.split(separator: " ")[1] })
        #expect(found == ["user-limit", "decided-twice", "undecided", "clock-backwards", "decision-mismatch", "rejected-wrongly"])
    }

    /// `book` killed at random moments, with keys: a printed booking id is committed, and
    /// the same key afterwards gets the same booking.
    @Test(arguments: commandLineStores)
    func bookKilledAnywherePrintedOnlyWhatItCommitted(store: TestStore) throws {
        var random = SplitMix64(seed: 21)
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "100"])
        var printed: [Int: String] = [:]
        for attempt in 0..<20 {
            let output = try box.runKilled(["book", "s1", "u\(attempt)", "--key", "k\(attempt)"], now: T0,
                                           killAfter: UInt32.random(in: 200...6_000, using: &random))
            if output.hasSuffix("\n") { printed[attempt] = output.trimmingCharacters(in: .newlines) }
        }
        for attempt in 0..<20 {
            let again = try box.run(["book", "s1", "u\(attempt)", "--key", "k\(attempt)"])
            #expect(again.status == 0)
            if let before = printed[attempt] { #expect(again.line == before, "key k\(attempt)") }
        }
        #expect(try box.run(["bookings", "s1", "--json"]).jsonArray().count == 20)
        try expectRecountClean(box)
        #expect(try box.run(["verify"]).stdout == "ok\n")
    }

    /// `submit --file` killed at random moments: each file is in the queue whole or not at
    /// all, and whole whenever its report was printed.
    @Test(arguments: commandLineStores)
    func submitFileKilledAnywhereIsAllOrNothing(store: TestStore) throws {
        var random = SplitMix64(seed: 22)
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "50"])
        var queuedBefore = 0
        for run in 0..<8 {
            let lines = (0..<3000).map { "{\"user\":\"u\($0 % 700)\",\"key\":\"r\(run).\($0)\"}" }.joined(separator: "\n")
            let output = try box.runKilled(["submit", "s1", "--file", try box.file("r\(run).ndjson", lines)], now: T0,
                                           killAfter: UInt32.random(in: 1_000...60_000, using: &random))
            let queuedNow = try #require(try box.run(["status", "s1", "--json"]).json()["queued"] as? Int)
            let queued = queuedNow - queuedBefore
            queuedBefore = queuedNow
            #expect(queued == 0 || queued == 3000, "run \(run) left \(queued) of 3000")
            if output.hasSuffix("\n") { #expect(queued == 3000, "run \(run) printed \(output)") }
        }
        #expect(try box.run(["process"]).status == 0)
        try expectRecountClean(box)
        #expect(try box.run(["verify"]).stdout == "ok\n")
    }

    /// `sweep` killed at random moments over 2,000 overdue holds: each kill leaves whole
    /// expiries only, and the last sweep takes exactly what the killed ones left.
    @Test(arguments: commandLineStores)
    func sweepKilledAnywhereExpiresEachHoldOnce(store: TestStore) throws {
        var random = SplitMix64(seed: 23)
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "2000", "--hold", "1m"])
        let lines = (0..<2000).map { "{\"user\":\"u\($0)\"}" }.joined(separator: "\n")
        #expect(try box.run(["book", "s1", "--stream"], input: lines).status == 0)
        let later = "2026-11-24T15:02:00Z"
        for _ in 0..<5 {
            _ = try box.runKilled(["sweep"], now: later, killAfter: UInt32.random(in: 1_000...40_000, using: &random))
            #expect(try box.run(["verify"], now: later).stdout == "ok\n")
        }
        let expiredBefore = try #require(try box.run(["status", "s1", "--json"], now: later).json()["expired"] as? Int)
        #expect(try box.run(["sweep"], now: later).line == String(2000 - expiredBefore))
        #expect(try ndjson(box.run(["events", "--sale", "s1"]).stdout).filter { $0["kind"] as? String == "expired" }.count == 2000)
        try expectRecountClean(box)
    }

    /// Four `process` workers at once on the queues of three sales: each request decided
    /// exactly once (one event each), exactly the stock accepted, nothing left queued.
    @Test(arguments: commandLineStores)
    func severalProcessWorkersAtOnceDecideEachRequestExactlyOnce(store: TestStore) throws {
        let box = try Sandbox(store)
        let sales = ["s1", "s2", "s3"]
        for sale in sales {
            try box.run(["create-sale", sale, "--inventory", "50"])
            let lines = (0..<600).map { "{\"user\":\"u\($0)\"}" }.joined(separator: "\n")
            #expect(try box.run(["submit", sale, "--file", try box.file("\(sale).ndjson", lines)]).status == 0)
        }
        let results = ResultLog()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            results.append((try? box.spawn(["process", "--batch", "25", "--json"])) ?? Result(status: -1))
        }
        #expect(results.all.map(\.status) == [0, 0, 0, 0], "\(results.all.map(\.stderr))")
        let reports = try results.all.map { try $0.json() }
        #expect(reports.compactMap { $0["accepted"] as? Int }.reduce(0, +) == 150)
        #expect(reports.compactMap { $0["rejected"] as? Int }.reduce(0, +) == 1650)
        let decisions = try ndjson(box.run(["events"]).stdout).compactMap { $0["request"] as? Int }
        #expect(decisions.count == 1800)
        #expect(Set(decisions) == Set(1...1800))
        for sale in sales {
            let status = try box.run(["status", sale, "--json"]).json()
            #expect(status["queued"] as? Int == 0)
            #expect(status["held"] as? Int == 50)
        }
        #expect(try box.run(["verify"]).stdout == "ok\n")
        try expectRecountClean(box)
    }

    /// stress/recount.sql reads a SQLite file; on PostgreSQL, `verify` is the store's own recount.
    private func expectRecountClean(_ box: Sandbox) throws {
        guard box.store == .sqlite else { return }
        let (violations, figures) = try recount(box.database)
        #expect(violations.isEmpty, "\(figures)\n\(violations.prefix(10).joined(separator: "\n"))")
    }
}

/// What processes run from many threads printed, in the order they ended.
final class ResultLog: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result] = []

    func append(_ result: Result) {
        lock.lock()
        defer { lock.unlock() }
        results.append(result)
    }

    var all: [Result] {
        lock.lock()
        defer { lock.unlock() }
        return results
    }
}

/// Exit statuses by operation, from many threads, against what the contract allows each.
final class ExitLog: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var unexpected: [String] = []
    private(set) var total = 0

    static let allowed: [String: Set<Int32>] = [
        "book": [0, 6, 7, 8], "confirm": [0, 4, 5], "cancel": [0, 4], "cancel-force": [0], "sweep": [0],
        "submit": [0], "process": [0], "seed-add": [0], "seed-set": [0, 4], "pause": [0], "resume": [0],
    ]

    func record(_ op: String, _ result: Result) {
        lock.lock()
        defer { lock.unlock() }
        total += 1
        if !(ExitLog.allowed[op] ?? []).contains(result.status) {
            unexpected.append("\(op) exited \(result.status): \(result.stderr)")
        }
    }
}
