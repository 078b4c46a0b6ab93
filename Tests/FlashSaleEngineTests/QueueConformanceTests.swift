import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport

@Suite struct SubmitTests {
    @Test(arguments: stores) func requestIDsFollowSubmissionOrder(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let ids = try ["a", "b", "c"].map { try f.submit($0) }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == 3)
        #expect(try f.status().queued == 3)
    }

    @Test(arguments: stores) func theSameKeyReturnsTheFirstRequest(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let first = try f.submit("a", key: "k")
        #expect(try f.submit("a", key: "k") == first)
        #expect(failure { try f.submit("b", key: "k") }?.exitCode == 4)
        #expect(try f.status().queued == 1)
    }

    @Test(arguments: stores) func submittingToAnUnknownSaleIsNotFound(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        #expect(failure { try f.submit("a", sale: "nope") }?.exitCode == 3)
    }

    /// Found by review: a transaction lost to another (a deadlock on PostgreSQL) was run
    /// again, reading on from where the input stood: the records the first run had read
    /// were left out of the queue, silently. A file's submission is tried once.
    @Test(arguments: stores) func aFileSubmissionThatLosesAConflictQueuesNothing(_ kind: StoreKind) throws {
        struct LostConflict: StoreError {
            var failure: StoreFailure? { .busy }
            var isTransient: Bool { true }
        }
        let f = try Fixture(kind)
        try f.sale()
        var input: [ReadOutcome?] = [.record(RequestRecord(line: 1, user: "a")), .record(RequestRecord(line: 2, user: "b")), nil,
                                     .record(RequestRecord(line: 3, user: "c"))]
        #expect(throws: LostConflict.self) {
            try f.engine.submit(to: SaleID("s1"), clock: T, skipping: nil) {
                guard !input.isEmpty else { return nil }
                let next = input.removeFirst()
                if next == nil, !input.isEmpty { throw LostConflict() }
                return next
            }
        }
        #expect(try f.status().queued == 0)
    }

    @Test(arguments: stores) func aMalformedRecordEnqueuesNothing(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        #expect(throws: SaleError.malformedRecord(line: 2, reason: "user is missing")) {
            try f.submit([.record(RequestRecord(line: 1, user: "a")), .malformed(line: 2, reason: "user is missing")])
        }
        #expect(try f.status().queued == 0)
        // Not even kept without a place in line: the first request id is still unused.
        #expect(failure { _ = try f.request(1) }?.exitCode == 3)
        #expect(try f.submit("b") == 1)
    }

    @Test(arguments: stores) func skipInvalidEnqueuesTheRestAndReportsTheSkipped(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let (report, skipped) = try f.submit([.record(RequestRecord(line: 1, user: "a")), .malformed(line: 2, reason: "bad"),
                                              .record(RequestRecord(line: 3, user: "b"))], skipInvalid: true)
        #expect(report.enqueued == 2)
        #expect(report.skipped == 1)
        #expect(skipped == [2])
    }

    @Test(arguments: stores) func bulkRowsGetConsecutiveIDsInInputOrderAcrossStatementsAndKeys(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        // 150 rows: two full multi-row statements, a keyed row in between, and a remainder.
        let report = try f.submit((1...150).map { line in
            .record(RequestRecord(line: line, user: "u\(line)", key: line == 70 ? "k70" : nil))
        }).report
        #expect(report.enqueued == 150)
        #expect(report.firstID == 1)
        #expect(report.lastID == 150)
        #expect(try (1...150).map { try f.request(RequestID($0)).user } == (1...150).map { UserID("u\($0)") })
        #expect(try (1...150).map { try f.request(RequestID($0)).position } == (1...150).map { Int64($0) })
        #expect(try f.request(70).key == "k70")
        #expect(failure { _ = try f.request(151) }?.exitCode == 3)
    }
}

@Suite struct ProcessTests {
    @Test(arguments: stores) func requestsAreDecidedInFIFOOrder(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 2)
        let ids = try ["a", "b", "c"].map { try f.submit($0) }
        let report = try f.process()
        #expect(report.accepted == 2)
        #expect(report.rejected == 1)
        #expect(try ids.map { try f.request($0).status } == [.accepted, .accepted, .rejected])
        #expect(try f.request(ids[2]).reason == "sold_out")
        #expect(try f.request(ids[0]).booking != nil)
        #expect(try f.violations() == [])
    }

    @Test(arguments: stores) func bulkRejectionGivesTheReasonsOfOneAtATime(_ kind: StoreKind) throws {
        // With batch 1 every request takes the one-at-a-time path; with a large batch the
        // sold-out tail is rejected as one run. Both must agree.
        var results: [[String?]] = []
        for batch: Int64 in [1, 10_000] {
            let f = try Fixture(kind)
            try f.sale(inventory: 2)
            let ids = try ["a", "b", "a", "c", "b", "d"].map { try f.submit($0) }
            try f.process(batch: batch)
            results.append(try ids.map { try f.request($0).reason })
            #expect(try f.events(.rejected).count == 4)
            #expect(try f.violations() == [])
        }
        #expect(results[0] == [nil, nil, "user_limit", "sold_out", "user_limit", "sold_out"])
        #expect(results[0] == results[1])
    }

    @Test(arguments: stores) func aScheduledOrPausedSalesQueueWaits(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 1, startsAt: minutes(10))
        let id = try f.submit("a")
        #expect(try f.process().waiting == [SaleID("s1")])
        #expect(try f.request(id).status == .queued)
        #expect(try f.process(at: minutes(10)).accepted == 1)
    }

    /// What `process --follow` wakes for with no commit to wake it: the first sale with a
    /// queue to open or end, by the sale's own time.
    @Test(arguments: stores) func theNextOpeningOrEndIsOfASaleWithAQueue(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale("later", startsAt: minutes(10), endsAt: minutes(30))
        try f.sale("ending", endsAt: minutes(20))
        try f.sale("sooner", startsAt: minutes(5))
        #expect(try f.engine.nextQueueStateChange(in: nil, clock: T) == nil, "no queue")
        try f.submit("a", sale: "later")
        try f.submit("b", sale: "ending")
        #expect(try f.engine.nextQueueStateChange(in: nil, clock: T) == minutes(10), "not the start of a sale with no queue")
        #expect(try f.engine.nextQueueStateChange(in: nil, clock: minutes(10)) == minutes(20))
        #expect(try f.engine.nextQueueStateChange(in: SaleID("later"), clock: minutes(10)) == minutes(30))
        #expect(try f.engine.nextQueueStateChange(in: nil, clock: minutes(30)) == nil)
    }

    @Test(arguments: stores) func anEndedSalesQueueIsRejectedNotOpen(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 5, endsAt: minutes(10))
        let id = try f.submit("a")
        #expect(try f.process(at: minutes(10)).rejected == 1)
        #expect(try f.request(id).reason == "not_open")
    }

    @Test(arguments: stores) func aQueuedRequestShowsItsPositionInLine(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        try f.sale("s2")
        try f.submit("a")
        try f.submit("x", sale: "s2")
        let second = try f.submit("b")
        #expect(try f.request(second).position == 2)
        #expect(failure { _ = try f.request(999) }?.exitCode == 3)
    }

    @Test(arguments: stores) func interleavedSalesEachKeepTheirOwnLine(_ kind: StoreKind) throws {
        // Alternate single submits: the line of each sale must still be its requests in id
        // order, one at a time and as a run alike.
        let f = try Fixture(kind)
        try f.sale(inventory: 1)
        try f.sale("s2", inventory: 1)
        var ids: [String: [RequestID]] = [:]
        for user in ["a", "b", "c", "d", "e"] {
            for sale in ["s1", "s2"] {
                ids[sale, default: []].append(try f.submit(user + sale, sale: sale))
            }
        }
        #expect(try f.request(ids["s1", default: []][3]).position == 4)
        #expect(try f.engine.processBatch(of: SaleID("s1"), batch: 3, clock: T).decided == 3)
        #expect(try f.request(ids["s1", default: []][3]).position == 1)
        #expect(try f.status().queued == 2)
        for sale in ["s1", "s2"] {
            _ = try f.engine.processBatch(of: SaleID(sale), batch: 100, clock: T)
            let decided = try ids[sale, default: []].map { try f.request($0) }
            #expect(decided.map(\.status) == [.accepted, .rejected, .rejected, .rejected, .rejected])
            #expect(decided.dropFirst().map(\.reason) == Array(repeating: "sold_out", count: 4))
        }
        #expect(try f.events().filter { $0.request != nil }.count == 10)
        // The events of each sale's rejections are in its FIFO order.
        let order = try f.events("s2").filter { $0.kind == .rejected }.map(\.request)
        #expect(order == ids["s2", default: []].dropFirst().map { $0 })
        #expect(try f.violations() == [])
    }

    @Test(arguments: stores) func aBulkSubmitJoinsTheLineAfterASingleOne(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        try f.submit("a")
        try f.submit((1...200).map { .record(RequestRecord(line: $0, user: "u\($0)")) })
        #expect(try f.status().queued == 201)
        #expect(try f.request(201).position == 201)
        #expect(try f.process(batch: 50).decided == 201)
        #expect(try f.violations() == [])
    }

    @Test(arguments: stores) func twoProcessorsAtOnceDecideEachRequestExactlyOnce(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 50)
        try f.submit((1...2000).map { .record(RequestRecord(line: $0, user: "u\($0 % 1500)")) })
        let database = f.database
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            guard let store = try? database.connect() else { return }
            let engine = Engine(store: store)
            while let report = try? engine.processBatch(of: SaleID(trusted: "s1"), batch: 37, clock: T), report.decided > 0 {}
        }
        #expect(try f.status().queued == 0)
        let decisions = try f.events().filter { $0.request != nil }
        #expect(decisions.filter { $0.kind == .held }.count == 50)
        #expect(Set(decisions.map(\.request)).count == decisions.count)
        #expect(decisions.count == 2000)
        #expect(try (1...2000).allSatisfy { try f.request(RequestID($0)).status != .queued })
        #expect(try f.violations() == [])
    }
}

@Suite struct WaitlistTests {
    let s1 = SaleID(trusted: "s1")

    @Test(arguments: stores) func theHeadOfTheLineWaitsForAHeldItemAndGetsItWhenCancelled(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.waitlistSale(inventory: 1)
        let a = try f.submit("a")
        let b = try f.submit("b")
        let c = try f.submit("c")
        let first = try f.process()
        #expect(first.accepted == 1)
        #expect(first.waiting == [s1])
        #expect(try f.request(b).status == .queued)
        #expect(try f.request(c).position == 2)
        let booking = try #require(try f.request(a).booking)
        _ = try f.engine.cancel(booking, in: s1, user: nil, force: false, clock: T)
        #expect(try f.process().accepted == 1)
        #expect(try f.request(b).status == .accepted)
        #expect(try f.request(c).status == .queued)
    }

    @Test(arguments: stores) func anExpiredHoldGoesToTheLine(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.waitlistSale(inventory: 1)
        try f.submit("a")
        let b = try f.submit("b")
        try f.process()
        #expect(try f.process(at: minutes(5)).accepted == 1)
        #expect(try f.request(b).status == .accepted)
        #expect(try f.counters(at: minutes(5)).expired == 1)
    }

    @Test(arguments: stores) func theLineIsRejectedSoldOutOnceNothingIsHeld(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.waitlistSale(inventory: 1)
        let a = try f.submit("a")
        let b = try f.submit("b")
        try f.process()
        _ = try f.engine.confirm(try #require(try f.request(a).booking), in: s1, user: nil, clock: T)
        #expect(try f.process().rejected == 1)
        #expect(try f.request(b).reason == "sold_out")
    }

    @Test(arguments: stores) func aDirectBookingCannotJumpTheLine(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.waitlistSale(inventory: 1)
        let a = try f.submit("a")
        try f.submit("b")
        try f.process()
        _ = try f.engine.cancel(try #require(try f.request(a).booking), in: s1, user: nil, force: false, clock: T)
        #expect(failure { _ = try f.book("mallory") }?.exitCode == 6)
        #expect(try f.counters().available == 1)
    }
}

@Suite struct KeyAcrossPathsTests {
    let s1 = SaleID(trusted: "s1")

    @Test(arguments: stores) func aKeyUsedInTheQueueReturnsItsBookingToADirectBook(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(perUser: 5)
        let id = try f.submit("a", key: "order-1")
        try f.process()
        let queued = try #require(try f.request(id).booking)
        #expect(try f.book("a", key: "order-1").id == queued)
        #expect(try f.counters().held == 1)
    }

    @Test(arguments: stores) func aKeyUsedByADirectBookIsTheQueuedRequestsAnswerEvenWhenSoldOut(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 1, perUser: 5)
        let direct = try f.book("a", key: "order-1")
        let before = try f.submit("b")
        let keyed = try f.submit("a", key: "order-1")
        let after = try f.submit("c")
        let report = try f.process()
        #expect(report.accepted == 1)
        #expect(report.rejected == 2)
        #expect(try f.request(keyed).booking == direct.id)
        #expect(try f.request(before).reason == "sold_out")
        #expect(try f.request(after).reason == "sold_out")
        #expect(try f.counters().held == 1)
        #expect(try f.violations() == [])
    }

    /// One key space per sale: a key is the first user's, whether `book` or `submit` took it.
    @Test(arguments: stores) func aKeyOfAnotherUsersBookingIsRefusedToSubmit(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(perUser: 5)
        _ = try f.book("a", key: "order-1")
        #expect(failure { _ = try f.submit("mallory", key: "order-1") }?.exitCode == 4)
        #expect(try f.status().queued == 0)
    }

    @Test(arguments: stores) func aKeyOfAnotherUsersQueuedRequestIsRefusedToADirectBook(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(perUser: 5)
        let id = try f.submit("a", key: "order-1")
        #expect(failure { _ = try f.book("mallory", key: "order-1") }?.exitCode == 4)
        #expect(try f.counters().held == 0)
        try f.process()
        #expect(try f.request(id).status == .accepted)
    }

    @Test(arguments: stores) func aKeyOfAnotherUsersQueuedRequestIsRefusedInAStream(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(perUser: 5)
        _ = try f.submit("a", key: "order-1")
        let stream = DecisionGroup(engine: f.engine)
        let decision = try stream.book(BookingRequest(sale: s1, user: "mallory", ip: nil, userAgent: nil, key: "order-1"), clock: T)
        try stream.commit()
        guard case .refused(let refusal) = decision else {
            Issue.record("another user's key was not refused: \(decision)")
            return
        }
        #expect(refusal == .keyUsedByAnotherUser(key: "order-1", sale: s1))
        #expect(try f.counters().held == 0)
    }

    /// The same user's key is one booking, whichever path took it first.
    @Test(arguments: stores) func theSameUsersKeyQueuedAndThenBookedIsOneBooking(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(perUser: 5)
        let id = try f.submit("a", key: "order-1")
        let direct = try f.book("a", key: "order-1")
        try f.process()
        #expect(try f.request(id).booking == direct.id)
        #expect(try f.counters().held == 1)
    }

    /// Versions before one key space let submit queue another user's key: such a request
    /// is still decided, rejected conflict, and the line goes on. (Queued here through the
    /// store's own `enqueue`, which leaves keys to the engine.)
    @Test(arguments: stores) func aRequestQueuedEarlierWithAnotherUsersKeyIsRejectedConflict(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(perUser: 5)
        _ = try f.book("a", key: "order-1")
        let id = try f.store.write { transaction in
            try transaction.enqueue(BookingRequest(sale: s1, user: "mallory", ip: nil, userAgent: nil, key: "order-1"), at: T)
        }
        let after = try f.submit("b")
        #expect(try f.process().decided == 2)
        #expect(try f.request(id).reason == "conflict")
        #expect(try f.request(after).status == .accepted)
        #expect(try f.violations() == [])
    }
}

/// A waiting line looks for holds that came due by the sale's own clock, which a clock
/// stepped back does not turn back.
@Suite struct OverdueLookTests {
    @Test(arguments: stores) func anOverdueHoldIsSeenAtTheSalesDecisionTime(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 5, hold: .seconds(60))
        _ = try f.book("a")
        #expect(try !f.engine.hasOverdueHold(SaleID("s1"), clock: T))
        _ = try f.book("b", at: minutes(2))  // the sale's clock is now T+2m
        #expect(try f.engine.hasOverdueHold(SaleID("s1"), clock: T))
    }
}
