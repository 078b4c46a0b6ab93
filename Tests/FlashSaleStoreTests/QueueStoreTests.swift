import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
@testable import FlashSaleStore

extension StoreFixture {
    @discardableResult
    func submit(_ user: String, sale: String = "s1", key: String? = nil, at clock: Instant = T) throws -> RequestID {
        try engine.submit(BookingRequest(sale: SaleID(sale), user: user, ip: nil, userAgent: nil, key: key), clock: clock).id
    }

    /// Processes until nothing more can be decided now.
    @discardableResult
    func process(_ sale: String = "s1", batch: Int64 = 10_000, at clock: Instant = T) throws -> Engine.ProcessReport {
        var total = Engine.ProcessReport()
        while true {
            let report = try engine.processBatch(of: SaleID(sale), batch: batch, clock: clock)
            total.accepted += report.accepted
            total.rejected += report.rejected
            total.waiting = report.waiting
            if report.decided == 0 { return total }
        }
    }

    func request(_ id: RequestID) throws -> QueuedRequest {
        try engine.request(id)
    }

    func waitlistSale(inventory: Int64) throws {
        try engine.createSale(SaleDefinition(id: SaleID("s1"), name: nil, inventory: inventory, hold: .seconds(300),
                                            perUser: 1, waitlist: true, startsAt: T, endsAt: nil), clock: T)
    }
}

@Suite struct SubmitTests {
    @Test func requestIDsFollowSubmissionOrder() throws {
        let f = try StoreFixture()
        try f.sale()
        let ids = try ["a", "b", "c"].map { try f.submit($0) }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == 3)
        #expect(try f.engine.status(SaleID("s1"), clock: T).queued == 3)
    }

    @Test func theSameKeyReturnsTheFirstRequest() throws {
        let f = try StoreFixture()
        try f.sale()
        let first = try f.submit("a", key: "k")
        #expect(try f.submit("a", key: "k") == first)
        #expect(failure { try f.submit("b", key: "k") }?.exitCode == 4)
        #expect(try f.engine.status(SaleID("s1"), clock: T).queued == 1)
    }

    @Test func submittingToAnUnknownSaleIsNotFound() throws {
        let f = try StoreFixture()
        #expect(failure { try f.submit("a", sale: "nope") }?.exitCode == 3)
    }

    @Test func aMalformedRecordEnqueuesNothing() throws {
        let f = try StoreFixture()
        try f.sale()
        var outcomes: [ReadOutcome] = [.record(RequestRecord(line: 1, user: "a")), .malformed(line: 2, reason: "user is missing")]
        #expect(throws: SaleError.malformedRecord(line: 2, reason: "user is missing")) {
            _ = try f.engine.submit(to: SaleID("s1"), clock: T, skipInvalid: false) { outcomes.isEmpty ? nil : outcomes.removeFirst() }
        }
        #expect(try f.count("SELECT count(*) FROM request") == 0)
    }

    @Test func skipInvalidEnqueuesTheRestAndReportsTheSkipped() throws {
        let f = try StoreFixture()
        try f.sale()
        var outcomes: [ReadOutcome] = [.record(RequestRecord(line: 1, user: "a")), .malformed(line: 2, reason: "bad"),
                                       .record(RequestRecord(line: 3, user: "b"))]
        let report = try f.engine.submit(to: SaleID("s1"), clock: T, skipInvalid: true) { outcomes.isEmpty ? nil : outcomes.removeFirst() }
        #expect(report.enqueued == 2)
        #expect(report.skipped.map(\.line) == [2])
    }

    @Test func bulkRowsGetConsecutiveIDsInInputOrderAcrossStatementsAndKeys() throws {
        let f = try StoreFixture()
        try f.sale()
        // 150 rows: two full multi-row statements, a keyed row in between, and a remainder.
        var outcomes: [ReadOutcome] = (1...150).map { line in
            .record(RequestRecord(line: line, user: "u\(line)", key: line == 70 ? "k70" : nil))
        }
        let report = try f.engine.submit(to: SaleID("s1"), clock: T, skipInvalid: false) { outcomes.isEmpty ? nil : outcomes.removeFirst() }
        #expect(report.enqueued == 150)
        #expect(report.firstID == 1)
        #expect(report.lastID == 150)
        let users = try f.store.db.rows("SELECT user FROM request ORDER BY id") { $0.text(0) }
        #expect(users == (1...150).map { "u\($0)" })
        #expect(try f.request(70).key == "k70")
    }
}

@Suite struct ProcessTests {
    @Test func requestsAreDecidedInFIFOOrder() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 2)
        let ids = try ["a", "b", "c"].map { try f.submit($0) }
        let report = try f.process()
        #expect(report.accepted == 2)
        #expect(report.rejected == 1)
        #expect(try ids.map { try f.request($0).status } == [.accepted, .accepted, .rejected])
        #expect(try f.request(ids[2]).reason == "sold_out")
        #expect(try f.request(ids[0]).booking != nil)
        #expect(try f.store.verify(nil, clock: T) == [])
    }

    @Test func bulkRejectionGivesTheReasonsOfOneAtATime() throws {
        // With batch 1 every request takes the one-at-a-time path; with a large batch the
        // sold-out tail is rejected by one statement. Both must agree.
        var results: [[String?]] = []
        for batch: Int64 in [1, 10_000] {
            let f = try StoreFixture()
            try f.sale(inventory: 2)
            let ids = try ["a", "b", "a", "c", "b", "d"].map { try f.submit($0) }
            try f.process(batch: batch)
            results.append(try ids.map { try f.request($0).reason })
            #expect(try f.count("SELECT count(*) FROM event WHERE kind = 'rejected'") == 4)
            #expect(try f.store.verify(nil, clock: T) == [])
        }
        #expect(results[0] == [nil, nil, "user_limit", "sold_out", "user_limit", "sold_out"])
        #expect(results[0] == results[1])
    }

    @Test func aScheduledOrPausedSalesQueueWaits() throws {
        let f = try StoreFixture()
        try f.engine.createSale(SaleDefinition(id: SaleID("s1"), name: nil, inventory: 1, hold: .seconds(300), perUser: 1,
                                              startsAt: minutes(10), endsAt: nil), clock: T)
        let id = try f.submit("a")
        #expect(try f.process().waiting == [SaleID("s1")])
        #expect(try f.request(id).status == .queued)
        #expect(try f.process(at: minutes(10)).accepted == 1)
    }

    @Test func anEndedSalesQueueIsRejectedNotOpen() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 5, endsAt: minutes(10))
        let id = try f.submit("a")
        #expect(try f.process(at: minutes(10)).rejected == 1)
        #expect(try f.request(id).reason == "not_open")
    }

    @Test func aQueuedRequestShowsItsPositionInLine() throws {
        let f = try StoreFixture()
        try f.sale()
        try f.sale("s2")
        try f.submit("a")
        try f.submit("x", sale: "s2")
        let second = try f.submit("b")
        #expect(try f.request(second).position == 2)
        #expect(failure { _ = try f.request(999) }?.exitCode == 3)
    }

    @Test func interleavedSalesEachKeepTheirOwnLine() throws {
        // Alternate single submits make runs of one request: the line of each sale must
        // still be its requests in id order, one at a time and set-based alike.
        let f = try StoreFixture()
        try f.sale(inventory: 1)
        try f.sale("s2", inventory: 1)
        var ids: [String: [RequestID]] = [:]
        for user in ["a", "b", "c", "d", "e"] {
            for sale in ["s1", "s2"] {
                ids[sale, default: []].append(try f.submit(user + sale, sale: sale))
            }
        }
        #expect(try f.count("SELECT count(*) FROM request_run") == 10)
        #expect(try f.request(ids["s1", default: []][3]).position == 4)
        #expect(try f.engine.processBatch(of: SaleID("s1"), batch: 3, clock: T).decided == 3)
        #expect(try f.request(ids["s1", default: []][3]).position == 1)
        #expect(try f.engine.status(SaleID("s1"), clock: T).queued == 2)
        for sale in ["s1", "s2"] {
            _ = try f.engine.processBatch(of: SaleID(sale), batch: 100, clock: T)
            let decided = try ids[sale, default: []].map { try f.request($0) }
            #expect(decided.map(\.status) == [.accepted, .rejected, .rejected, .rejected, .rejected])
            #expect(decided.dropFirst().map(\.reason) == Array(repeating: "sold_out", count: 4))
        }
        #expect(try f.count("SELECT count(*) FROM event WHERE request IS NOT NULL") == 10)
        // The events of each sale's rejections are in its FIFO order.
        let order = try f.store.db.rows("SELECT request FROM event WHERE kind = 'rejected' AND sale = 's2' ORDER BY seq") { RequestID($0.int64(0)) }
        #expect(order == Array(ids["s2", default: []].dropFirst()))
        #expect(try f.store.verify(nil, clock: T) == [])
    }

    @Test func aBulkSubmitIsOneRunAndGrowsTheLastOne() throws {
        let f = try StoreFixture()
        try f.sale()
        try f.submit("a")
        var outcomes: [ReadOutcome] = (1...200).map { .record(RequestRecord(line: $0, user: "u\($0)")) }
        _ = try f.engine.submit(to: SaleID("s1"), clock: T, skipInvalid: false) { outcomes.isEmpty ? nil : outcomes.removeFirst() }
        #expect(try f.count("SELECT count(*) FROM request_run") == 1)
        #expect(try f.count("SELECT last_id - first_id + 1 FROM request_run") == 201)
        #expect(try f.engine.status(SaleID("s1"), clock: T).queued == 201)
    }

    @Test func twoProcessorsAtOnceDecideEachRequestExactlyOnce() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 50)
        var outcomes: [ReadOutcome] = (1...2000).map { .record(RequestRecord(line: $0, user: "u\($0 % 1500)")) }
        _ = try f.engine.submit(to: SaleID("s1"), clock: T, skipInvalid: false) { outcomes.isEmpty ? nil : outcomes.removeFirst() }
        let path = f.path
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            guard let store = try? SQLiteStore(path: path, busyTimeout: .seconds(30)) else { return }
            let engine = Engine(store: store)
            while let report = try? engine.processBatch(of: SaleID(trusted: "s1"), batch: 37, clock: T), report.decided > 0 {}
        }
        #expect(try f.count("SELECT count(*) FROM request WHERE id > (SELECT decided_through FROM sale)") == 0)
        #expect(try f.count("SELECT count(*) FROM event WHERE kind = 'held' AND request IS NOT NULL") == 50)
        #expect(try f.count("SELECT count(*) FROM (SELECT request FROM event WHERE request IS NOT NULL GROUP BY request HAVING count(*) > 1)") == 0)
        #expect(try f.count("SELECT count(*) FROM event WHERE request IS NOT NULL") == 2000)
        #expect(try f.store.verify(nil, clock: T) == [])
    }
}

@Suite struct WaitlistTests {
    let s1 = SaleID(trusted: "s1")

    @Test func theHeadOfTheLineWaitsForAHeldItemAndGetsItWhenCancelled() throws {
        let f = try StoreFixture()
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

    @Test func anExpiredHoldGoesToTheLine() throws {
        let f = try StoreFixture()
        try f.waitlistSale(inventory: 1)
        try f.submit("a")
        let b = try f.submit("b")
        try f.process()
        #expect(try f.process(at: minutes(5)).accepted == 1)
        #expect(try f.request(b).status == .accepted)
        #expect(try f.counters(at: minutes(5)).expired == 1)
    }

    @Test func theLineIsRejectedSoldOutOnceNothingIsHeld() throws {
        let f = try StoreFixture()
        try f.waitlistSale(inventory: 1)
        let a = try f.submit("a")
        let b = try f.submit("b")
        try f.process()
        _ = try f.engine.confirm(try #require(try f.request(a).booking), in: s1, user: nil, clock: T)
        #expect(try f.process().rejected == 1)
        #expect(try f.request(b).reason == "sold_out")
    }

    @Test func aDirectBookingCannotJumpTheLine() throws {
        let f = try StoreFixture()
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

    @Test func aKeyUsedInTheQueueReturnsItsBookingToADirectBook() throws {
        let f = try StoreFixture()
        try f.sale(perUser: 5)
        let id = try f.submit("a", key: "order-1")
        try f.process()
        let queued = try #require(try f.request(id).booking)
        #expect(try f.book("a", key: "order-1").id == queued)
        #expect(try f.counters().held == 1)
    }

    @Test func aKeyUsedByADirectBookIsTheQueuedRequestsAnswerEvenWhenSoldOut() throws {
        let f = try StoreFixture()
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
        #expect(try f.store.verify(nil, clock: T) == [])
    }

    /// One key space per sale: a key is the first user's, whether `book` or `submit` took it.
    @Test func aKeyOfAnotherUsersBookingIsRefusedToSubmit() throws {
        let f = try StoreFixture()
        try f.sale(perUser: 5)
        _ = try f.book("a", key: "order-1")
        #expect(failure { _ = try f.submit("mallory", key: "order-1") }?.exitCode == 4)
        #expect(try f.engine.status(s1, clock: T).queued == 0)
    }

    @Test func aKeyOfAnotherUsersQueuedRequestIsRefusedToADirectBook() throws {
        let f = try StoreFixture()
        try f.sale(perUser: 5)
        let id = try f.submit("a", key: "order-1")
        #expect(failure { _ = try f.book("mallory", key: "order-1") }?.exitCode == 4)
        #expect(try f.counters().held == 0)
        try f.process()
        #expect(try f.request(id).status == .accepted)
    }

    @Test func aKeyOfAnotherUsersQueuedRequestIsRefusedInAStream() throws {
        let f = try StoreFixture()
        try f.sale(perUser: 5)
        _ = try f.submit("a", key: "order-1")
        let stream = try BookingStream(engine: f.engine, sale: s1)
        let decision = try stream.decide(BookingRequest(sale: s1, user: "mallory", ip: nil, userAgent: nil, key: "order-1"), clock: T)
        try stream.commit()
        guard case .refused(let refusal) = decision else {
            Issue.record("another user's key was not refused: \(decision)")
            return
        }
        #expect(refusal == .keyUsedByAnotherUser(key: "order-1", sale: s1))
        #expect(try f.counters().held == 0)
    }

    /// The same user's key is one booking, whichever path took it first.
    @Test func theSameUsersKeyQueuedAndThenBookedIsOneBooking() throws {
        let f = try StoreFixture()
        try f.sale(perUser: 5)
        let id = try f.submit("a", key: "order-1")
        let direct = try f.book("a", key: "order-1")
        try f.process()
        #expect(try f.request(id).booking == direct.id)
        #expect(try f.counters().held == 1)
    }

    /// Versions before one key space let submit queue another user's key: such a request
    /// is still decided, rejected conflict, and the line goes on.
    @Test func aRequestQueuedEarlierWithAnotherUsersKeyIsRejectedConflict() throws {
        let f = try StoreFixture()
        try f.sale(perUser: 5)
        _ = try f.book("a", key: "order-1")
        try f.store.db.execute("INSERT INTO request (sale, user, key, submitted_at) VALUES ('s1', 'mallory', 'order-1', :now)",
                               [":now": .integer(T.milliseconds)])
        let id = RequestID(f.store.db.lastInsertedRowID)
        try f.store.db.execute("INSERT INTO request_run (sale, first_id, last_id) VALUES ('s1', :id, :id)",
                               [":id": .integer(id.value)])
        let after = try f.submit("b")
        #expect(try f.process().decided == 2)
        #expect(try f.request(id).reason == "conflict")
        #expect(try f.request(after).status == .accepted)
        #expect(try f.store.verify(nil, clock: T) == [])
    }
}
