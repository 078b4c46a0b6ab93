import Foundation
import Testing

/// The clock's edges: the expiry instant, confirm racing sweep, and a clock stepped
/// backwards, which the high-water mark must absorb.
@Suite struct ClockEdgeTests {
    /// A submit commits at its own time: a process whose clock is behind it (read before
    /// it waited for the lock, or a FLASHSALE_NOW stepped back) decides no earlier.
    @Test func aRequestIsNeverDecidedBeforeItWasSubmitted() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1"])
        let id = try box.run(["submit", "s1", "u1"], now: "2026-11-24T15:00:10Z").line
        #expect(try box.run(["process"], now: "2026-11-24T15:00:05Z").status == 0)
        let submitted = try #require(try box.run(["request", id, "--json"]).json()["submitted_at"] as? String)
        let decision = try #require(try ndjson(box.run(["events"]).stdout).first { $0["request"] as? Int == Int(id) })
        let decidedAt = try #require(decision["at"] as? String)
        #expect(decidedAt >= submitted, "request \(id) decided at \(decidedAt), submitted at \(submitted)")
    }
}
