import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport

@Suite struct InventoryTests {
    let s1 = SaleID(trusted: "s1")

    @Test(arguments: stores) func seedAddsToTotalAndAvailable(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 10)
        _ = try f.book("alice")
        let status = try f.engine.seedInventory(s1, count: 5, exactly: false, clock: T)
        #expect(status.sale.counters == counters(15, available: 14, held: 1, booked: 0))
    }

    @Test(arguments: stores) func seedingNoChangeIsANoOpWithoutAnEvent(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 10)
        _ = try f.book("alice")
        let before = try f.events().count
        #expect(try f.engine.seedInventory(s1, count: 0, exactly: false, clock: T).sale.counters
            == counters(10, available: 9, held: 1, booked: 0))
        #expect(try f.engine.seedInventory(s1, count: 10, exactly: true, clock: T).sale.counters.total == 10)
        #expect(try f.events().count == before)
        _ = try f.engine.seedInventory(s1, count: 1, exactly: false, clock: T)
        #expect(try f.events(.inventorySeeded).count == 1)
    }

    @Test(arguments: stores) func setMakesTheTotalExact(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 10)
        _ = try f.book("alice")
        #expect(try f.engine.seedInventory(s1, count: 3, exactly: true, clock: T).sale.counters
            == counters(3, available: 2, held: 1, booked: 0))
    }

    @Test(arguments: stores) func setBelowHeldPlusBookedIsRefusedAndChangesNothing(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 10)
        let a = try f.book("a")
        _ = try f.book("b")
        _ = try f.engine.confirm(a.id, in: s1, user: nil, clock: T)
        #expect(failure { _ = try f.engine.seedInventory(s1, count: 1, exactly: true, clock: T) }?.exitCode == 4)
        #expect(try f.counters() == counters(10, available: 8, held: 1, booked: 1))
        #expect(try f.engine.seedInventory(s1, count: 2, exactly: true, clock: T).sale.counters
            == counters(2, available: 0, held: 1, booked: 1))
    }

    @Test(arguments: stores) func setFirstExpiresOverdueHolds(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 10)
        _ = try f.book("a")
        #expect(try f.engine.seedInventory(s1, count: 0, exactly: true, clock: minutes(5)).sale.counters
            == counters(0, available: 0, held: 0, booked: 0, expired: 1))
    }

    @Test(arguments: stores) func seedBeyondTheMaximumIsAConflict(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: maximumInventory)
        #expect(failure { _ = try f.engine.seedInventory(s1, count: 1, exactly: false, clock: T) }?.exitCode == 4)
    }

    @Test(arguments: stores) func operatorStatesAreNoOpsWhenAlreadyThereAndClosedIsFinal(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        #expect(try f.engine.change(s1, by: .pause, clock: T).state == .paused)
        #expect(try f.engine.change(s1, by: .pause, clock: T).state == .paused)
        #expect(try f.events(.salePaused).count == 1)
        #expect(try f.engine.change(s1, by: .close, clock: T).state == .closed)
        #expect(failure { _ = try f.engine.change(s1, by: .resume, clock: T) }?.exitCode == 4)
    }
}

@Suite struct SweepTests {
    let s1 = SaleID(trusted: "s1")

    @Test(arguments: stores) func sweepExpiresHoldsFromTheirExpiryInstantOnly(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        _ = try f.book("early", at: T)
        _ = try f.book("late", at: minutes(1))
        #expect(try f.engine.sweep(nil, limit: nil, dryRun: false, clock: Instant(milliseconds: minutes(5).milliseconds - 1)).total == 0)
        let report = try f.engine.sweep(nil, limit: nil, dryRun: false, clock: minutes(5))
        #expect(report.total == 1)
        #expect(report.expired.first?.sale == s1)
        #expect(try f.counters(at: minutes(5)) == counters(10, available: 9, held: 1, booked: 0, expired: 1))
    }

    @Test(arguments: stores) func dryRunCountsAndChangesNothing(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        _ = try f.book("a")
        _ = try f.book("b")
        #expect(try f.engine.sweep(s1, limit: nil, dryRun: true, clock: minutes(10)).total == 2)
        // Both still held, overdue only.
        #expect(try f.status(at: minutes(10)).overdue == 2)
        #expect(try f.events(.expired).isEmpty)
        #expect(try f.counters().held == 2)
    }

    @Test(arguments: stores) func limitExpiresTheLongestOverdueFirst(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let first = try f.book("a", at: T)
        _ = try f.book("b", at: minutes(1))
        #expect(try f.engine.sweep(s1, limit: 1, dryRun: false, clock: minutes(10)).total == 1)
        #expect(try f.events(.expired).map(\.booking) == [first.id])
    }

    @Test(arguments: stores) func limitTakesTheLongestOverdueAcrossSales(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale("a", inventory: 1, hold: .seconds(3600))
        try f.sale("b")
        _ = try f.book("u", sale: "a")
        _ = try f.book("u", sale: "b")
        let report = try f.engine.sweep(nil, limit: 1, dryRun: false, clock: minutes(120))
        #expect(report.expired.map(\.sale.text) == ["b"])
        #expect(try f.counters("a", at: minutes(120)).held == 1)
    }

    /// Found by probing: the line across sales went by expiry alone, so a hold overdue by
    /// an hour at its sale's time (a sale paused at 2:00 keeps that time) went after one
    /// overdue by half as long at the clock's.
    @Test(arguments: stores) func limitTakesTheLongestOverdueEachSaleAtItsOwnTime(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale("x", inventory: 1, hold: .seconds(3600))
        try f.sale("y", inventory: 1, hold: .seconds(60))
        _ = try f.book("u", sale: "x")
        _ = try f.book("u", sale: "y")
        _ = try f.engine.change(SaleID("x"), by: .pause, clock: minutes(120))
        let report = try f.engine.sweep(nil, limit: 1, dryRun: false, clock: minutes(30))
        #expect(report.expired.map(\.sale.text) == ["x"])
        #expect(try f.counters("y", at: minutes(30)).held == 1)
    }

    @Test(arguments: stores) func sweepOfAnUnknownSaleIsNotFound(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        #expect(failure { _ = try f.engine.sweep(SaleID("nope"), limit: nil, dryRun: false, clock: T) }?.exitCode == 3)
    }

    @Test(arguments: stores) func confirmedBookingsAreNeverSwept(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let hold = try f.book("a")
        _ = try f.engine.confirm(hold.id, in: s1, user: nil, clock: T)
        #expect(try f.engine.sweep(nil, limit: nil, dryRun: false, clock: minutes(60)).total == 0)
        #expect(try f.counters().booked == 1)
    }
}

@Suite struct InvariantTests {
    @Test(arguments: stores) func aBusySaleVerifiesClean(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 5, perUser: 2)
        let s1 = SaleID(trusted: "s1")
        let a = try f.book("a")
        let b = try f.book("b")
        _ = try f.book("c")
        _ = try f.engine.confirm(a.id, in: s1, user: nil, clock: T)
        _ = try f.engine.cancel(b.id, in: s1, user: nil, force: false, clock: T)
        _ = try f.engine.sweep(nil, limit: nil, dryRun: false, clock: minutes(6))
        #expect(try f.violations(at: minutes(6)) == [])
    }
}

@Suite struct ConnectionTests {
    @Test(arguments: stores) func anotherConnectionSeesEverythingCommitted(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let hold = try f.book("alice")
        let again = Engine(store: try f.database.connect())
        #expect(try again.status(SaleID("s1"), clock: T).sale.counters == counters(10, available: 9, held: 1, booked: 0))
        #expect(try again.booking(hold.id, in: SaleID("s1"), clock: T) == hold)
    }

    /// Eight connections on eight threads race for 50 items with 400 distinct users.
    @Test(arguments: stores) func manyConnectionsNeverOversell(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 50)
        let held = Counter()
        let database = f.database
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            guard let store = try? database.connect() else { return }
            let engine = Engine(store: store)
            for n in 0..<50 {
                let request = BookingRequest(sale: SaleID(trusted: "s1"), user: "u\(worker)-\(n)", ip: nil, userAgent: nil, key: nil)
                if (try? engine.book(request, clock: T)) != nil { held.increment() }
            }
        }
        #expect(held.value == 50)
        #expect(try f.counters() == counters(50, available: 0, held: 50, booked: 0))
        #expect(Set(try f.engine.bookings(of: SaleID("s1"), status: nil, user: nil, clock: T).map(\.user)).count == 50)
        #expect(try f.violations() == [])
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    func increment() {
        lock.lock()
        count += 1
        lock.unlock()
    }

    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }
}

@Suite struct TransactionTests {
    let s1 = SaleID(trusted: "s1")

    /// What the body returns is committed, even a refusal to throw afterwards: that is how
    /// a confirm refused at expiry keeps the expiry it wrote. The transaction is over:
    /// another connection sees the change and can write at once.
    @Test(arguments: stores) func aWriteCommitsWhatItsBodyReturns(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let outcome: Result<Void, SaleError> = try f.store.write { transaction in
            try transaction.setOperatorState(of: s1, to: .paused, at: T)
            return .failure(.saleClosed(s1))
        }
        #expect(throws: SaleError.saleClosed(s1)) { try outcome.get() }
        let other = Engine(store: try f.database.connect())
        #expect(try other.sale(s1).operatorState == .paused)
        #expect(try other.change(s1, by: .resume, clock: T).state == .open)
        #expect(try f.engine.change(s1, by: .pause, clock: T).state == .paused)
    }

    @Test(arguments: stores) func aWriteWhoseBodyThrowsRollsBack(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        #expect(throws: SaleError.saleClosed(s1)) {
            try f.store.write { transaction in
                try transaction.setOperatorState(of: s1, to: .paused, at: T)
                throw SaleError.saleClosed(s1)
            }
        }
        #expect(try f.engine.sale(s1).operatorState == .open)
        let other = Engine(store: try f.database.connect())
        #expect(try other.sale(s1).operatorState == .open)
        #expect(try other.change(s1, by: .pause, clock: T).state == .paused)
        #expect(try f.engine.change(s1, by: .resume, clock: T).state == .open)
    }
}
