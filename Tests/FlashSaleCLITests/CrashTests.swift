import Foundation
import Testing
import FlashSaleCore
import FlashSaleTestSupport

/// Writers killed with SIGKILL at random moments, then run again: each store's transactions
/// must leave every request decided exactly once, and nothing printed that was not committed.
@Suite(.serialized) struct CrashTests {
    @Test(arguments: commandLineStores, [UInt64(1), 2])
    func processKilledAnywhereDecidesEveryRequestExactlyOnce(store: TestStore, seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "300"], now: nil)
        let lines = (0..<6000).map { "{\"user\":\"u\($0 % 5000)\"}" }.joined(separator: "\n")
        try box.run(["submit", "s1", "--file", try box.file("w.ndjson", lines)], now: nil)
        for _ in 0..<6 {
            _ = try box.runKilled(["process", "--batch", "100"], killAfter: UInt32.random(in: 2_000...60_000, using: &random))
        }
        #expect(try box.run(["process"], now: nil).status == 0)

        #expect(try box.run(["status", "s1", "--json"], now: nil).json()["queued"] as? Int == 0)
        let decisions = try ndjson(box.run(["events", "--sale", "s1"], now: nil).stdout).filter { $0["request"] != nil }
        // One event per request, never two: decided exactly once.
        #expect(decisions.count == 6000)
        #expect(Set(decisions.compactMap { $0["request"] as? Int }) == Set(1...6000))
        let held = Set(decisions.filter { $0["kind"] as? String == "held" }.compactMap { $0["booking"] as? String })
        #expect(held.count == 300)
        #expect(Set(try box.run(["bookings", "s1", "--json"], now: nil).jsonArray().compactMap { $0["id"] as? String }) == held)
        #expect(try box.run(["verify"], now: nil).stdout == "ok\n")
    }

    @Test(arguments: commandLineStores, [UInt64(7), 8])
    func streamKilledAnywherePrintedOnlyCommittedDecisions(store: TestStore, seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "200"], now: nil)
        // Keys make the stream idempotent, so the whole input can be replayed after a crash.
        let lines = (0..<20_000).map { "{\"user\":\"u\($0 % 15_000)\",\"key\":\"k\($0)\"}" }.joined(separator: "\n") + "\n"
        let input = try box.file("w.ndjson", lines)
        var printed: [Int: String] = [:]
        for _ in 0..<3 {
            let output = try box.runKilled(["book", "s1", "--stream"], inputPath: input,
                                           killAfter: UInt32.random(in: 20_000...400_000, using: &random))
            // The last line may be cut short by the kill: only whole lines count.
            let whole = output.lastIndex(of: "\n").map { String(output[...$0]) } ?? ""
            for decision in try ndjson(whole) where decision["ok"] as? Bool == true {
                let line = try #require(decision["line"] as? Int)
                let booking = try #require(decision["booking"] as? String)
                // Printed, so committed: the booking is in the database with its key.
                #expect(try box.run(["booking", "s1", booking, "--json"], now: nil).json()["key"] as? String == "k\(line - 1)")
                printed[line] = booking
            }
        }
        let final = try box.run(["book", "s1", "--stream"], now: nil, input: lines)
        #expect(final.status == 0)
        let answers = try ndjson(final.stdout)
        #expect(answers.count == 20_000)
        for answer in answers {
            if let line = answer["line"] as? Int, let before = printed[line] {
                #expect(answer["booking"] as? String == before)
            }
        }
        #expect(try box.run(["bookings", "s1", "--json"], now: nil).jsonArray().count == 200)
        #expect(try box.run(["verify"], now: nil).stdout == "ok\n")
    }
}
