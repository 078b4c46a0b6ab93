import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
@testable import FlashSalePostgres
import FlashSaleTestSupport

/// `DecisionGroup`: many requests of many sales in one transaction (`book --stream`,
/// `serve`) decide exactly as the same requests would one transaction each.
@Suite struct DecisionGroupConformanceTests {
    let s1 = SaleID(trusted: "s1")

    private func request(_ user: String, sale: String = "s1", key: String? = nil) throws -> BookingRequest {
        BookingRequest(sale: try SaleID(sale), user: UserID(trusted: user), ip: nil, userAgent: nil, key: key)
    }

    @Test(arguments: stores) func bookingsOfTwoSalesInOneGroupCountInBoth(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale("s1", inventory: 2)
        try f.sale("s2", inventory: 1)
        let group = DecisionGroup(engine: f.engine)
        var held = 0
        for (user, sale) in [("a", "s1"), ("b", "s2"), ("c", "s1"), ("d", "s2"), ("e", "s1")] {
            if case .held = try group.book(request(user, sale: sale), clock: T) { held += 1 }
        }
        try group.commit()
        #expect(held == 3)
        #expect(try f.counters("s1").available == 0)
        #expect(try f.counters("s2").available == 0)
        #expect(try f.violations() == [])
    }

    /// In a waitlisted sale a direct booking may not take an item while requests wait in
    /// line. Whether they do is asked once a group (found by probing: once a request, a
    /// query each on PostgreSQL), so a request the group itself queues must count from
    /// then on: the bookings before it hold, those after it are declined.
    @Test(arguments: stores) func aRequestQueuedInAGroupStopsTheDirectBookingsAfterIt(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        _ = try f.engine.createSale(SaleDefinition(id: s1, name: nil, inventory: 10, hold: .seconds(60), perUser: 1,
                                                   waitlist: true, startsAt: T, endsAt: nil), clock: T)
        let group = DecisionGroup(engine: f.engine)
        var said: [String] = []
        for user in ["a", "b"] {
            if case .held = try group.book(request(user), clock: T) { said.append("\(user) held") }
        }
        _ = try group.submit(request("queued"), clock: T)
        for user in ["c", "d"] {
            if case .declined(let decline) = try group.book(request(user), clock: T) { said.append("\(user) \(decline.reason.code.rawValue)") }
        }
        try group.commit()
        #expect(said == ["a held", "b held", "c sold_out", "d sold_out"])
        #expect(try f.counters("s1").held == 2)
        #expect(try f.violations() == [])
    }

    /// A group told ahead what it will decide (`expect`, which a PostgreSQL store answers
    /// with counts and keys read at once) decides exactly as one that is not: users and
    /// addresses that already hold, hold twice in the group or see a hold expire as the
    /// clock moves on within it; keys that already have a booking or a queued request, of
    /// the same user or another, or get one in the group; and a confirm and a cancel in the
    /// middle that make the store forget what it read.
    @Test(arguments: stores, [UInt64(1), 2, 3])
    func aGroupToldAheadDecidesAsOneThatIsNot(_ kind: StoreKind, seed: UInt64) throws {
        var answers: [[String]] = []
        for toldAhead in [true, false] {
            var random = SplitMix64(seed: seed)
            let f = try Fixture(kind)
            _ = try f.engine.createSale(SaleDefinition(id: s1, name: nil, inventory: 40, hold: .seconds(60), perUser: 2, perIP: 3,
                                                       waitlist: false, startsAt: T, endsAt: nil), clock: T)
            // Every third person gives a key, some of them another person's.
            let people = (0..<30).map { n in
                BookingRequest(sale: s1, user: UserID(trusted: "u\(n % 12)"), ip: "10.0.0.\(n % 7)", userAgent: nil,
                               key: n % 3 == 0 ? "k\(n % 5)" : nil)
            } + [BookingRequest(sale: s1, user: "u5", ip: nil, userAgent: nil, key: "queued"),
                 BookingRequest(sale: s1, user: "u6", ip: nil, userAgent: nil, key: "queued")]
            _ = try f.submit("u5", key: "queued", at: T)
            // Before the group: holds some of which expire during it, and a booked item.
            for (index, request) in people.prefix(8).enumerated() {
                let at = T.adding(.seconds(Int64(index * 5)))
                let hold = try f.engine.book(request, clock: at)
                if index == 0 { _ = try f.engine.confirm(hold.id, in: s1, user: nil, clock: at) }
            }
            let group = DecisionGroup(engine: f.engine)
            var said: [String] = []
            var confirmed = false
            let requests = (0..<60).map { _ in people[random.below(people.count)] }
            try group.commit {
                said.removeAll()
                confirmed = false
                let start = T.adding(.seconds(40))
                if toldAhead { try group.expect(requests, clock: start) }
                for (index, request) in requests.enumerated() {
                    let now = start.adding(.seconds(Int64(index)))
                    switch try group.book(request, clock: now) {
                    case .held(let hold):
                        said.append("held \(request.user)")
                        if index == 30 { _ = try group.cancel(hold.id, in: s1, user: nil, force: false, clock: now) }
                        if index > 40, hold.key != nil, !confirmed {
                            _ = try group.confirm(hold.id, in: s1, user: nil, clock: now)
                            confirmed = true
                        }
                    case .repeated(let first): said.append("repeated \(first.user) \(first.status)")
                    case .declined(let decline): said.append("\(decline.reason) \(request.user)")
                    case .refused(let refusal): said.append("refused \(refusal)")
                    }
                }
            }
            #expect(try f.violations(at: T.adding(.seconds(100))) == [])
            answers.append(said)
        }
        #expect(answers[0] == answers[1])
        for outcome in ["held", "repeated", "refused"] {
            #expect(answers[0].contains { $0.hasPrefix(outcome) }, "\(answers[0])")
        }
        #expect(answers[0].contains { !$0.hasPrefix("held") }, "\(answers[0])")
    }

    /// A user or an address with many active bookings is counted from what the transaction
    /// read of them once (a count at each decision made a stream of one user's holds
    /// quadratic): a group decides as a transaction per request would, up to the limits,
    /// with holds that expire as the clock moves on, a clock set back, and a cancel.
    @Test(arguments: stores) func manyBookingsOfOneUserAndAddressCountAsInATransactionEach(_ kind: StoreKind) throws {
        var answers: [[String]] = []
        for grouped in [true, false] {
            let f = try Fixture(kind)
            _ = try f.engine.createSale(SaleDefinition(id: s1, name: nil, inventory: 500, hold: .seconds(60), perUser: 40, perIP: 55,
                                                       waitlist: false, startsAt: T, endsAt: nil), clock: T)
            func request(_ n: Int) -> BookingRequest {
                BookingRequest(sale: s1, user: UserID(trusted: n % 4 == 3 ? "bob" : "alice"), ip: "10.0.0.1", userAgent: nil, key: nil)
            }
            // Before: 36 holds, one a second, the first of which expire during the run.
            for n in 0..<36 { _ = try f.engine.book(request(0), clock: T.adding(.seconds(Int64(n)))) }
            let group = DecisionGroup(engine: f.engine)
            var said: [String] = []
            func decide(_ n: Int) throws {
                // Half a second apart from 50 s on; the 60th set back 20 s.
                let now = T.adding(Span(milliseconds: 50_000 + Int64(n) * 500 - (n == 60 ? 20_000 : 0)))
                switch try group.book(request(n), clock: now) {
                case .held(let hold):
                    said.append("held \(hold.user)")
                    if n == 70 { _ = try group.cancel(hold.id, in: s1, user: nil, force: false, clock: now) }
                case .declined(let decline): said.append("\(decline.reason) \(request(n).user)")
                case let other: said.append("\(other)")
                }
            }
            if grouped {
                try group.commit {
                    said.removeAll()
                    for n in 0..<100 { try decide(n) }
                }
            } else {
                for n in 0..<100 { try group.commit { try decide(n) } }
            }
            #expect(try f.violations(at: T.adding(.seconds(200))) == [])
            answers.append(said)
        }
        #expect(answers[0] == answers[1])
        for outcome in ["held alice", "held bob", "userLimit alice", "blocked"] {
            #expect(answers[0].contains { $0.hasPrefix(outcome) }, "\(answers[0])")
        }
    }

    /// A cancel in the group gives its item back to the bookings after it, which must not
    /// decide on the sale as it was before the cancel.
    @Test(arguments: stores) func aCancelInTheGroupReturnsItsItemToTheNextBooking(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 1)
        let group = DecisionGroup(engine: f.engine)
        guard case .held(let first) = try group.book(request("a"), clock: T) else {
            Issue.record("the first booking did not hold")
            return
        }
        let cancelled = try group.cancel(first.id, in: s1, user: UserID(trusted: "a"), force: false, clock: T)
        let second = try group.book(request("b"), clock: T)
        try group.commit()
        #expect(cancelled.status == .cancelled)
        guard case .held = second else {
            Issue.record("the item the cancel gave back was not held again: \(second)")
            return
        }
        #expect(try f.counters().held == 1)
        #expect(try f.counters().cancelled == 1)
        #expect(try f.violations() == [])
    }

    /// One request's refusal is its own answer: the others of the group still commit.
    @Test(arguments: stores) func aRefusalInTheGroupKeepsTheOthers(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 5)
        let group = DecisionGroup(engine: f.engine)
        _ = try group.book(request("a"), clock: T)
        #expect(failure { _ = try group.book(request("b", sale: "nope"), clock: T) }?.exitCode == 3)
        #expect(failure { _ = try group.confirm(BookingID(trusted: "bk_none"), in: s1, user: nil, clock: T) }?.exitCode == 3)
        let queued = try group.submit(request("c"), clock: T)
        _ = try group.book(request("d"), clock: T)
        try group.commit()
        #expect(try f.counters().held == 2)
        #expect(try f.request(queued.id).status == .queued)
        #expect(try f.violations() == [])
    }

    /// A confirm past the expiry is refused, and the expiry it wrote commits with the group.
    @Test(arguments: stores) func aConfirmPastExpiryWritesTheExpiryWithTheGroup(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 1, hold: .seconds(60))
        let hold = try f.book("a")
        let late = T.adding(.seconds(60))
        let group = DecisionGroup(engine: f.engine)
        #expect(failure { _ = try group.confirm(hold.id, in: s1, user: nil, clock: late) }?.exitCode == 5)
        let next = try group.book(request("b"), clock: late)
        try group.commit()
        guard case .held = next else {
            Issue.record("the expired hold's item was not held again: \(next)")
            return
        }
        #expect(try f.counters(at: late).expired == 1)
        #expect(try f.violations(at: late) == [])
    }

    @Test(arguments: stores) func anAbandonedGroupLeavesNothing(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 5)
        let group = DecisionGroup(engine: f.engine)
        _ = try group.book(request("a"), clock: T)
        _ = try group.submit(request("b"), clock: T)
        group.abandon()
        #expect(!group.isOpen)
        #expect(try f.counters().available == 5)
        #expect(try f.status().queued == 0)
        _ = try group.book(request("c"), clock: T)
        try group.commit()
        #expect(try f.counters().held == 1)
    }

    /// Two groups (two streams, two servers) that book two sales in opposite orders, each
    /// holding its first sale's lock when it asks for the other's: PostgreSQL breaks the
    /// deadlock by rolling one back, and that group is decided again instead of answering
    /// busy. SQLite takes one writer at a time, so no deadlock can happen there.
    @Test(.enabled(if: TestPostgres.isConfigured, "FLASHSALE_TEST_PG is not set"))
    func aGroupThatLosesADeadlockIsDecidedAgain() throws {
        let f = try Fixture(.postgres)
        try f.sale("s1", inventory: 10)
        try f.sale("s2", inventory: 10)
        let database = f.database
        let bothHoldTheirFirstSale = DispatchGroup()
        let finished = DispatchGroup()
        let problems = Problems()
        for (user, sales) in [("a", ["s1", "s2"]), ("b", ["s2", "s1"])] {
            bothHoldTheirFirstSale.enter()
            finished.enter()
            Thread {
                defer { finished.leave() }
                var runs = 0
                do {
                    let group = DecisionGroup(engine: Engine(store: try database.connect()))
                    var outcomes: [BookingOutcome] = []
                    try group.commit {
                        runs += 1
                        outcomes = []
                        for sale in sales {
                            if sale == sales[1] && runs == 1 {
                                bothHoldTheirFirstSale.leave()
                                _ = bothHoldTheirFirstSale.wait(timeout: .now() + 30)
                            }
                            let request = BookingRequest(sale: SaleID(trusted: sale), user: UserID(trusted: user + sale),
                                                         ip: nil, userAgent: nil, key: nil)
                            outcomes.append(try group.book(request, clock: T))
                        }
                    }
                    for outcome in outcomes {
                        if case .held = outcome { continue }
                        problems.add("\(user): \(outcome)")
                    }
                } catch {
                    problems.add("\(user)'s group was answered \(error) after \(runs) run(s)")
                }
            }.start()
        }
        #expect(finished.wait(timeout: .now() + 120) == .success)
        #expect(problems.all == [])
        #expect(try f.counters("s1").held == 2)
        #expect(try f.counters("s2").held == 2)
        #expect(try f.violations() == [])
    }

    /// A group that expects requests for several sales takes their rows' locks in id
    /// order, whatever order they came in, the same in every process: two servers' groups
    /// then never hold one sale each while waiting for the other's (found by probing:
    /// taken in a Set's order, seeded per process, they deadlocked). The sales of its
    /// confirms, cancels and submits too (`alsoLocking`), which each locked when it came,
    /// after the bookings'. With the first sale held elsewhere, the group waits for it
    /// holding nothing, so every other sale is free.
    @Test(.enabled(if: TestPostgres.isConfigured, "FLASHSALE_TEST_PG is not set"), arguments: [false, true])
    func aGroupLocksItsSalesInIdOrder(othersAmongThem: Bool) throws {
        let f = try Fixture(.postgres)
        let sales = (1...8).map { "s\($0)" }
        for sale in sales { try f.sale(sale, inventory: 10, perUser: 10) }
        let database = try #require(f.database as? PostgresTestDatabase)
        let holderStore = try PostgresStore(location: database.location, busyTimeout: .seconds(30), createIfMissing: false)
        let holderBackend = try #require(try holderStore.session.firstRow("SELECT pg_backend_pid() AS pid") { try $0.int64("pid") })
        let holder = DecisionGroup(engine: Engine(store: holderStore))
        _ = try holder.book(BookingRequest(sale: SaleID("s1"), user: "holder", ip: nil, userAgent: nil, key: nil), clock: T)
        let waiting = DispatchSemaphore(value: 0)
        // Used by that thread alone once it starts.
        nonisolated(unsafe) let group = DecisionGroup(engine: Engine(store: try database.connect()))
        DispatchQueue.global().async {
            let reversed = sales.reversed().map { SaleID(trusted: $0) }
            // The first four sales as those of other changes, when among them.
            let others = othersAmongThem ? Array(reversed.suffix(4)) : []
            let requests = reversed.dropLast(others.count).map { BookingRequest(sale: $0, user: "u", ip: nil, userAgent: nil, key: nil) }
            _ = try? group.expect(requests, alsoLocking: others, clock: T)
            group.abandon()
            waiting.signal()
        }
        let otherStore = try PostgresStore(location: database.location, busyTimeout: Span(milliseconds: 500), createIfMissing: false)
        // Until the group waits for the held row (a backend the holder's blocks: the
        // cluster's other tests' waits are not this one's).
        var waits: Int64 = 0
        for _ in 0..<1000 where waits == 0 {
            waits = try otherStore.session.firstRow(
                "SELECT count(*) AS waits FROM pg_stat_activity WHERE $1::int = ANY (pg_blocking_pids(pid))", [.int(holderBackend)]
            ) { try $0.int64("waits") } ?? 0
            if waits == 0 { usleep(10_000) }
        }
        #expect(waits > 0, "the group never waited for the held sale")
        let other = Engine(store: otherStore)
        for sale in sales.dropFirst() {
            let probe = DecisionGroup(engine: other)
            #expect(throws: Never.self, "\(sale) was locked") {
                _ = try probe.book(BookingRequest(sale: SaleID(trusted: sale), user: "probe", ip: nil, userAgent: nil, key: nil), clock: T)
            }
            probe.abandon()
        }
        holder.abandon()
        waiting.wait()
    }
}

/// What the threads of a test found wrong.
final class Problems: @unchecked Sendable {
    private let lock = NSLock()
    private var found: [String] = []

    func add(_ problem: String) { lock.withLock { found.append(problem) } }
    var all: [String] { lock.withLock { found } }
}
