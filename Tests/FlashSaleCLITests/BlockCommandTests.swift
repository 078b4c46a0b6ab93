import Foundation
import Testing

@Suite struct BlockCommandTests {
    @Test func aBlockedRequesterIsDeclinedNineOnEveryPath() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        try box.run(["block", "ip", "203.0.113.0/24", "--reason", "farm"])
        let direct = try box.run(["book", "s1", "u1", "--ip", "203.0.113.9"])
        #expect(direct.status == 9)
        #expect(direct.stderr == "flashsale: ip 203.0.113.0/24 is blocked: farm\n")
        let stream = try ndjson(try box.run(["book", "s1", "--stream"], input: "{\"user\":\"u2\",\"ip\":\"::ffff:203.0.113.1\"}\n").stdout)
        #expect(stream.first?["error"] as? String == "blocked")
        try box.run(["submit", "s1", "u3", "--ip", "203.0.113.50"])
        try box.run(["process"])
        #expect(try box.run(["request", "1", "--json"]).json()["reason"] as? String == "blocked")
        #expect(try box.run(["book", "s1", "u4", "--ip", "198.51.100.1"]).status == 0)
    }

    @Test func blockedComesBeforeTheUserLimitAndSoldOut() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1"])
        try box.run(["book", "s1", "mallory"])
        try box.run(["block", "user", "mallory", "--sale", "s1"])
        #expect(try box.run(["book", "s1", "mallory"]).status == 9)
        // Queued and sold out: each request still gets its own reason, in the contract's order.
        for user in ["mallory", "bob"] { try box.run(["submit", "s1", user]) }
        try box.run(["process"])
        #expect(try box.run(["request", "1", "--json"]).json()["reason"] as? String == "blocked")
        #expect(try box.run(["request", "2", "--json"]).json()["reason"] as? String == "sold_out")
    }

    @Test func blocksUnblockAndTheirErrors() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        #expect(try box.run(["block", "agent", "python", "--contains"]).status == 0)
        #expect(try box.run(["block", "agent", "python", "--contains"]).status == 0)
        let listed = try box.run(["blocks", "--json"]).jsonArray()
        #expect(listed.count == 1)
        #expect(listed.first?["contains"] as? Bool == true)
        #expect(try box.run(["book", "s1", "u", "--user-agent", "python-requests/2.31"]).status == 9)
        #expect(try box.run(["unblock", "agent", "python", "--contains"]).status == 0)
        #expect(try box.run(["unblock", "agent", "python", "--contains"]).status == 3)
        #expect(try box.run(["book", "s1", "u", "--user-agent", "python-requests/2.31"]).status == 0)
        #expect(try box.run(["block", "ip", "300.1.1.1"]).status == 2)
        #expect(try box.run(["block", "host", "x"]).status == 2)
        #expect(try box.run(["block", "user", "x", "--contains"]).status == 2)
        #expect(try box.run(["block", "user", "x", "--sale", "nope"]).status == 3)
        #expect(try box.run(["blocks", "--sale", "nope"]).status == 3)
        // The same block again changes nothing, and shows the block as it stands.
        try box.run(["block", "ip", "198.51.100.0/24", "--reason", "scrapers"])
        let before = try box.dump()
        let again = try box.run(["block", "ip", "198.51.100.0/24", "--json"]).json()
        #expect(again["reason"] as? String == "scrapers")
        #expect(try box.dump() == before)
    }

    /// Found by probing: ip blocks were stored as typed, so three spellings of one address
    /// were three blocks, and `unblock` of one said "unblocked" while the others still
    /// declined the address. A range is stored in one spelling; one with bits set past its
    /// prefix is refused, naming the range.
    @Test(arguments: commandLineStores)
    func anAddressIsOneBlockInAnySpelling(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "10", "--per-user", "10"])
        for spelling in ["2001:DB8::1", "2001:db8::1", "2001:0db8:0:0::1/128"] {
            #expect(try box.run(["block", "ip", spelling]).status == 0)
        }
        #expect(try box.run(["blocks", "--json"]).jsonArray().map { $0["value"] as? String } == ["2001:db8::1"])
        #expect(try box.run(["book", "s1", "u1", "--ip", "2001:db8:0::1"]).status == 9)
        #expect(try box.run(["unblock", "ip", "2001:0DB8::0001"]).line == "unblocked")
        #expect(try box.run(["book", "s1", "u1", "--ip", "2001:db8::1"]).status == 0)
        let hostBits = try box.run(["block", "ip", "10.1.2.3/16"])
        #expect(hostBits.status == 2)
        #expect(hostBits.stderr == "flashsale: '10.1.2.3/16' has bits set past its prefix: the range is 10.1.0.0/16\n")
        #expect(try box.run(["blocks", "--json"]).jsonArray().isEmpty)
        #expect(try box.run(["block", "ip", "::ffff:10.1.0.0/112"]).status == 0)
        #expect(try box.run(["blocks", "--json"]).jsonArray().map { $0["value"] as? String } == ["10.1.0.0/16"])
        // Blocks stored as typed by an earlier flashsale: the same block again is a no-op,
        // and unblock in any spelling removes every spelling of the range.
        guard store == .sqlite else { return }
        for typed in ["10.9.2.3/16", "10.9.0.0/16", "2001:DB8::7"] {
            try FlashSaleStoreBackdoor.execute(
                box.database, "INSERT INTO block (kind, value, contains, sale, reason, created_at) VALUES ('ip', '\(typed)', 0, NULL, NULL, 0)")
        }
        let blocks = try box.dump()
        #expect(try box.run(["block", "ip", "2001:db8::7"]).status == 0)
        #expect(try box.dump() == blocks)
        #expect(try box.run(["book", "s1", "u2", "--ip", "10.9.9.9"]).status == 9)
        #expect(try box.run(["unblock", "ip", "10.9.255.255/16"]).line == "unblocked")
        #expect(try box.run(["book", "s1", "u2", "--ip", "10.9.9.9"]).status == 0)
        #expect(try box.run(["unblock", "ip", "2001:db8::7"]).line == "unblocked")
        #expect(try box.run(["blocks", "--json"]).jsonArray().map { $0["value"] as? String } == ["10.1.0.0/16"])
    }

    /// Sixteen processes book from one address at once; the per-IP limit of 3 holds.
    @Test func thePerIPLimitHoldsAcrossProcesses() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "100", "--per-ip", "3"], now: nil)
        let tally = StatusTally()
        DispatchQueue.concurrentPerform(iterations: 16) { worker in
            for n in 0..<4 {
                // Two spellings of one address: the limit counts the address, not the text.
                let spelling = n % 2 == 0 ? "2001:db8::7" : "2001:DB8:0:0::7"
                tally.add((try? box.spawn(["book", "s1", "u\(worker)-\(n)", "--ip", spelling], now: nil))?.status ?? -1)
            }
        }
        #expect(tally.counts == [0: 3, 9: 61])
        #expect(try box.run(["status", "s1", "--json"], now: nil).json()["held"] as? Int == 3)
        #expect(try box.run(["verify"], now: nil).stdout == "ok\n")
    }
}

/// Exit statuses counted from many threads.
final class StatusTally: @unchecked Sendable {
    private let lock = NSLock()
    private var tally: [Int32: Int] = [:]

    func add(_ status: Int32) {
        lock.lock()
        tally[status, default: 0] += 1
        lock.unlock()
    }

    var counts: [Int32: Int] {
        lock.lock()
        defer { lock.unlock() }
        return tally
    }
}

@Suite struct PerIPMessageTests {
    @Test func aRequesterOverThePerIPLimitIsToldTheAddressAndTheCount() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5", "--per-ip", "1"])
        #expect(try box.run(["book", "s1", "u1", "--ip", "203.0.113.7"]).status == 0)
        let second = try box.run(["book", "s1", "u2", "--ip", "203.0.113.7"])
        #expect(second.status == 9)
        #expect(second.stderr == """
            flashsale: address 203.0.113.7 already has 1 active booking in sale s1, the per-IP limit \
            (2 attempts from 203.0.113.7 in this sale)

            """)
        // An IPv6 address counts its bookings and attempts with its /64 (found by probing: each
        // address of a host's /64 had a limit of its own); another /64 is another requester.
        try box.run(["create-sale", "s2", "--inventory", "5", "--per-ip", "1"])
        #expect(try box.run(["book", "s2", "u1", "--ip", "2001:db8:1:2::7"]).status == 0)
        let sameNetwork = try box.run(["book", "s2", "u2", "--ip", "2001:DB8:1:2::8"])
        #expect(sameNetwork.status == 9)
        #expect(sameNetwork.stderr == """
            flashsale: network 2001:db8:1:2::/64 already has 1 active booking in sale s2, \
            the per-IP limit (2 attempts from 2001:db8:1:2::/64 in this sale)

            """)
        #expect(try box.run(["book", "s2", "u3", "--ip", "2001:db8:1:3::7"]).status == 0)
    }
}
