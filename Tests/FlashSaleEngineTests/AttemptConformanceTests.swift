import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport

/// Every booking attempt is counted, in the engine, once, on every path: a direct booking
/// (`book`, `book --stream`) as it is decided, a queued request as it is submitted and its
/// decline as `process` decides it.
@Suite struct AttemptConformanceTests {
    private func attempts(_ f: Fixture, _ sale: String = "s1") throws -> AttemptTotals {
        try #require(try f.engine.metrics(of: SaleID(sale), clock: T).first).attempts
    }

    private func request(_ user: String, ip: String? = nil) throws -> BookingRequest {
        BookingRequest(sale: try SaleID("s1"), user: UserID(trusted: user), ip: ip, userAgent: nil, key: nil)
    }

    @Test(arguments: stores) func aDeclinedBookIsCountedAndWritesNothingElse(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 1)
        _ = try f.book("alice")
        let events = try f.events()
        #expect(failure { _ = try f.book("bob") }?.exitCode == 6)
        #expect(failure { _ = try f.book("alice") }?.exitCode == 7)
        #expect(try attempts(f) == AttemptTotals(attempts: 3, declined: [.soldOut: 1, .userLimit: 1]))
        #expect(try f.events() == events)
        #expect(try f.counters() == counters(1, available: 0, held: 1, booked: 0))
        #expect(try f.violations() == [])
    }

    @Test(arguments: stores) func aDeclineOfAClosedSaleAndAKeyOfAnotherUserAreCounted(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        _ = try f.book("alice", key: "k1")
        #expect(failure { _ = try f.book("bob", key: "k1") }?.exitCode == 4)
        _ = try f.book("alice", key: "k1")
        _ = try f.engine.change(SaleID("s1"), by: .close, clock: T)
        #expect(failure { _ = try f.book("carol") }?.exitCode == 8)
        #expect(try attempts(f) == AttemptTotals(attempts: 4, declined: [.conflict: 1, .notOpen: 1]))
    }

    @Test(arguments: stores) func aStreamCountsEveryDecisionItCommits(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 2)
        let stream = DecisionGroup(engine: f.engine)
        for user in ["a", "b", "c", "d", "a"] { _ = try stream.book(try request(user, ip: "203.0.113.9"), clock: T) }
        try stream.commit()
        // What is rolled back was never counted.
        _ = try stream.book(try request("e"), clock: T)
        stream.abandon()
        #expect(try attempts(f) == AttemptTotals(attempts: 5, declined: [.soldOut: 2, .userLimit: 1]))
    }

    /// The users of one address's declined attempts, committed in two groups of 50: each
    /// store merges the two samples as `UserSample.formUnion` does, so both report the same
    /// estimate of 100 users (at most the 100 attempts).
    @Test(arguments: stores) func theUsersOfAnAddressAddUpAcrossCommitsAlike(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 0)
        var expected = UserSample()
        for group in 0..<2 {
            let stream = DecisionGroup(engine: f.engine)
            for n in 0..<50 {
                let user = "farm\(group * 50 + n)"
                expected.insert(user)
                _ = try stream.book(try request(user, ip: "203.0.113.7"), clock: T)
            }
            try stream.commit()
        }
        let (users, isEstimate) = expected.count
        #expect(isEstimate)
        let suspect = try #require(try f.store.suspects(of: SaleID("s1"), thresholds: .standard).first)
        #expect(suspect.value == "203.0.113.7")
        #expect(suspect.reasons.first == "about \(min(users, 100)) distinct users")
    }

    @Test(arguments: stores, [true, false])
    func theQueueCountsAttemptsWhenSubmittedAndDeclinesWhenProcessed(_ kind: StoreKind, bulkPaths: Bool) throws {
        let f = try Fixture(kind, bulkPaths: bulkPaths)
        try f.sale(inventory: 1)
        _ = try f.book("alice")
        try f.submit("alice")
        try f.submit("bob")
        try f.submit("bob", key: "k")
        try f.submit([.record(RequestRecord(line: 1, user: "carol")), .record(RequestRecord(line: 2, user: "dave", key: "d"))])
        #expect(try attempts(f) == AttemptTotals(attempts: 6))
        try f.process()
        #expect(try attempts(f) == AttemptTotals(attempts: 6, declined: [.userLimit: 1, .soldOut: 4]))
    }

    @Test(arguments: stores) func thePerIPLimitCountsTheAttemptsOfItsRequester(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        _ = try f.engine.createSale(SaleDefinition(id: SaleID("s1"), name: nil, inventory: 10, hold: .seconds(300),
                                                   perUser: 1, perIP: 1, waitlist: false, startsAt: T, endsAt: nil), clock: T)
        _ = try f.engine.book(try request("a", ip: "2001:db8:1:2::7"), clock: T)
        try f.submit("q")
        // Another address of the same /64 is the same requester (found by probing: each
        // address of a host's /64 had a limit of its own); another /64 is not.
        for (n, user) in ["b", "c"].enumerated() {
            let refusal = #expect(throws: SaleError.self) {
                _ = try f.engine.book(try request(user, ip: "2001:db8:1:2::\(n + 8)"), clock: T)
            }
            guard case .declined(let decline)? = refusal else {
                Issue.record("\(user) was not declined: \(String(describing: refusal))")
                return
            }
            #expect(decline.blocked == .perIPLimit(requester: "2001:db8:1:2::/64", kind: .network, active: 1,
                                                   attempts: Int64(n) + 2))
        }
        _ = try f.engine.book(try request("z", ip: "2001:db8:1:3::7"), clock: T)
        // Within one transaction, the attempts decided before it in the same transaction too.
        let stream = DecisionGroup(engine: f.engine)
        for user in ["d", "e"] {
            guard case .declined(let decline) = try stream.book(try request(user, ip: "2001:db8:1:2::7"), clock: T) else {
                Issue.record("\(user) was not declined")
                return
            }
            guard case .perIPLimit(_, _, _, let attempts)? = decline.blocked else {
                Issue.record("\(user) was not at the per-IP limit")
                return
            }
            #expect(attempts == (user == "d" ? 4 : 5))
        }
        try stream.commit()
    }

    /// A group that carries its counts (`serve`) commits them with a later group or alone,
    /// counts them meanwhile for the per-IP limit, and loses none to a group rolled back.
    @Test(arguments: stores) func carriedCountsAreCommittedLaterAndCountedMeanwhile(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        _ = try f.engine.createSale(SaleDefinition(id: SaleID("s1"), name: nil, inventory: 10, hold: .seconds(300),
                                                   perUser: 1, perIP: 1, waitlist: false, startsAt: T, endsAt: nil), clock: T)
        _ = try f.engine.book(try request("a", ip: "203.0.113.7"), clock: T)
        let group = DecisionGroup(engine: f.engine)
        group.carriesTelemetry = true
        func decline(_ user: String) throws -> Int64? {
            guard case .declined(let decline) = try group.book(try request(user, ip: "203.0.113.7"), clock: T),
                  case .perIPLimit(_, _, _, let attempts)? = decline.blocked else { return nil }
            return attempts
        }
        #expect(try decline("b") == 2)
        try group.commit(withTelemetry: false)
        #expect(try decline("c") == 3)
        try group.commit(withTelemetry: false)
        #expect(try attempts(f) == AttemptTotals(attempts: 1))
        #expect(group.isCarryingTelemetry)
        _ = try decline("rolled back")
        group.abandon()
        #expect(try decline("d") == 4)
        try group.commit(withTelemetry: true)
        #expect(try attempts(f) == AttemptTotals(attempts: 4, declined: [.blocked: 3]))
        #expect(!group.isCarryingTelemetry)
        #expect(try decline("e") == 5)
        try group.commit(withTelemetry: false)
        try group.writeTelemetry()
        #expect(try attempts(f) == AttemptTotals(attempts: 5, declined: [.blocked: 4]))
        #expect(!group.isCarryingTelemetry)
    }

    /// A commit of counts alone leaves them where the next transaction, on another
    /// connection, finds them.
    @Test(arguments: stores) func countsCommittedAloneAreSeenByOthers(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 0)
        #expect(failure { _ = try f.book("bob") }?.exitCode == 6)
        let other = Engine(store: try f.database.connect())
        #expect(try other.metrics(of: SaleID("s1"), clock: T).first?.attempts == AttemptTotals(attempts: 1, declined: [.soldOut: 1]))
    }
}
