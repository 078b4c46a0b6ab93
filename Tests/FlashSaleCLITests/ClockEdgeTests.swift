import Foundation
import Testing

/// The clock's edges: the expiry instant, confirm racing sweep, and a clock stepped
/// backwards, which the high-water mark must absorb.
@Suite struct ClockEdgeTests {
    /// Found by probing: an empty FLASHSALE_NOW was a usage error for every command, where
    /// an empty FLASHSALE_DB means unset. It means unset too: the real clock.
    @Test func anEmptyFixedClockIsTheRealOne() throws {
        let box = try Sandbox()
        let made = try box.run(["create-sale", "s1", "--inventory", "1", "--json"], now: "")
        #expect(made.status == 0, "\(made.stderr)")
        let created = try #require(try made.json()["created_at"] as? String)
        #expect(created > "2026-12-01" && created != "2026-11-24T15:00:00.000Z")
        #expect(try box.run(["request", "0"]).stderr == "flashsale: a request id is a whole number from 1 to 9223372036854775807, not '0'\n")
    }

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

    /// Found by probing: a submit that queued nothing (its key repeated, an empty file)
    /// moved the sale's time to its clock all the same, so that one retry from a host an
    /// hour ahead expired every live hold of the sale. Like a decline, it leaves the time.
    @Test func aSubmitThatQueuesNothingLeavesTheSalesTime() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5", "--hold", "5m"])
        let hold = try box.run(["book", "s1", "alice"]).line
        #expect(try box.run(["submit", "s1", "bob", "--key", "k1"]).line == "1")
        let anHourAhead = "2026-11-24T16:00:00Z"
        let empty = try box.file("empty.csv", "")
        #expect(try box.run(["submit", "s1", "bob", "--key", "k1"], now: anHourAhead).line == "1")
        #expect(try box.run(["submit", "s1", "--file", empty], now: anHourAhead).status == 0)
        let confirmed = try box.run(["confirm", "s1", hold])
        #expect(confirmed.status == 0, "\(confirmed.stderr)")
        // What queues something moves it, as the man page says: another hold is overdue.
        #expect(try box.run(["book", "s1", "dave"]).status == 0)
        #expect(try box.run(["submit", "s1", "carol"], now: anHourAhead).line == "2")
        #expect(try box.run(["status", "s1", "--json"]).json()["overdue"] as? Int == 1)
    }
}

/// One hold made at T0 with a 5 m hold, looked at 1 ms before its expiry and at it.
@Suite struct ExpiryInstantTests {
    static let before = "2026-11-24T15:04:59.999Z"
    static let expiry = "2026-11-24T15:05:00.000Z"

    /// A sale with its one item held by alice; returns the hold's id.
    func heldSale() throws -> (Sandbox, String) {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1", "--hold", "5m"])
        return (box, try box.run(["book", "s1", "alice"]).line)
    }

    @Test(arguments: [(before, Int32(0)), (expiry, Int32(5))])
    func confirmSucceedsUntilTheExpiryInstant(now: String, status: Int32) throws {
        let (box, hold) = try heldSale()
        #expect(try box.run(["confirm", "s1", hold], now: now).status == status)
    }

    @Test(arguments: [(before, "0"), (expiry, "1")])
    func sweepTakesTheHoldFromTheExpiryInstant(now: String, swept: String) throws {
        let (box, _) = try heldSale()
        #expect(try box.run(["status", "s1", "--json"], now: now).json()["overdue"] as? Int == Int(swept))
        #expect(try box.run(["sweep"], now: now).line == swept)
    }

    @Test(arguments: [(before, "cancelled"), (expiry, "expired")])
    func cancelAtTheExpiryInstantFindsItExpired(now: String, status: String) throws {
        let (box, hold) = try heldSale()
        #expect(try box.run(["cancel", "s1", hold], now: now).status == 0)
        #expect(try box.run(["booking", "s1", hold, "--json"], now: now).json()["status"] as? String == status)
    }

    @Test(arguments: [(before, Int32(6)), (expiry, Int32(0))])
    func bookReclaimsTheHoldFromTheExpiryInstant(now: String, status: Int32) throws {
        let (box, _) = try heldSale()
        #expect(try box.run(["book", "s1", "bob"], now: now).status == status)
    }

    @Test(arguments: [(before, false), (expiry, true)])
    func streamAndProcessReclaimFromTheExpiryInstant(now: String, reclaims: Bool) throws {
        let (box, _) = try heldSale()
        let id = try box.run(["submit", "s1", "bob"]).line
        try box.run(["process"], now: now)
        #expect(try box.run(["request", id, "--json"], now: now).json()["status"] as? String == (reclaims ? "accepted" : "rejected"))
        let (streamBox, _) = try heldSale()
        let line = try streamBox.run(["book", "s1", "--stream"], now: now, input: "{\"user\":\"bob\"}\n").json()
        #expect(line["ok"] as? Bool == reclaims)
    }

    @Test(arguments: [(before, Int32(7)), (expiry, Int32(0))])
    func theUserLimitCountsTheHoldUntilTheExpiryInstant(now: String, status: Int32) throws {
        let (box, _) = try heldSale()
        try box.run(["seed-inventory", "s1", "1"])
        #expect(try box.run(["book", "s1", "alice"], now: now).status == status)
    }

    /// Two processes on one hold: confirm 1 ms before expiry, sweep at expiry. Either may
    /// win, never both: booked and not swept, or swept and confirm refused.
    @Test func confirmRacingSweepNeverBothWin() throws {
        for _ in 0..<10 {
            let (box, hold) = try heldSale()
            let outcomes = RaceOutcome()
            DispatchQueue.concurrentPerform(iterations: 2) { side in
                if side == 0 {
                    outcomes.confirmed = (try? box.spawn(["confirm", "s1", hold], now: Self.before))?.status ?? -1
                } else {
                    outcomes.swept = (try? box.spawn(["sweep"], now: Self.expiry))?.line ?? "?"
                }
            }
            let (confirmed, swept) = (outcomes.confirmed, outcomes.swept)
            let status = try box.run(["booking", "s1", hold, "--json"], now: Self.expiry).json()["status"] as? String
            #expect((confirmed == 0 && swept == "0" && status == "booked") || (confirmed == 5 && swept == "1" && status == "expired"),
                    "confirm \(confirmed), sweep \(swept), booking \(String(describing: status))")
        }
    }

    /// Once a decision at the expiry instant is committed, a clock stepped back cannot make
    /// the hold confirmable again, nor date a new event before it.
    @Test func aClockSteppedBackNeverExtendsAHold() throws {
        let (box, hold) = try heldSale()
        try box.run(["seed-inventory", "s1", "1"], now: Self.expiry)
        #expect(try box.run(["confirm", "s1", hold], now: "2026-11-24T15:01:00Z").status == 5)
        let bob = try box.run(["book", "s1", "bob", "--json"], now: "2026-11-24T14:00:00Z").json()
        #expect(bob["created_at"] as? String == Self.expiry)
        #expect(bob["expires_at"] as? String == "2026-11-24T15:10:00.000Z")
        let times = try ndjson(box.run(["events"]).stdout).compactMap { $0["at"] as? String }
        #expect(times == times.sorted())
        #expect(try recount(box.database).violations.isEmpty)
    }

    /// A confirm refused for expiry writes the hold as expired, as cancel does: a clock
    /// stepped back afterwards finds it expired, and no later decision is dated before it.
    @Test func aConfirmRefusedAtExpiryExpiresTheHoldForGood() throws {
        let (box, hold) = try heldSale()
        let refused = try box.run(["confirm", "s1", hold, "--json"], now: Self.expiry)
        #expect(refused.status == 5)
        #expect(try (refused.json()["error"] as? [String: Any])?["code"] as? String == "hold_expired")
        let stepBack = "2026-11-24T15:04:59Z"
        #expect(try box.run(["confirm", "s1", hold], now: stepBack).status == 5)
        #expect(try box.run(["booking", "s1", hold, "--json"], now: stepBack).json()["status"] as? String == "expired")
        let sale = try box.run(["status", "s1", "--json"], now: stepBack).json()
        #expect([sale["available"], sale["held"], sale["expired"], sale["overdue"]].map { $0 as? Int } == [1, 0, 1, 0])
        let expiredEvents = try ndjson(box.run(["events"]).stdout).filter { $0["kind"] as? String == "expired" }
        #expect(expiredEvents.map { $0["detail"] as? String } == ["confirm"])
        #expect(try box.run(["verify"], now: stepBack).status == 0)
        let bob = try box.run(["book", "s1", "bob", "--json"], now: stepBack).json()
        #expect(bob["created_at"] as? String == Self.expiry)
    }
}

/// What the two sides of a race saw; each side writes its own field once.
final class RaceOutcome: @unchecked Sendable {
    var confirmed: Int32 = -1
    var swept = ""
}
