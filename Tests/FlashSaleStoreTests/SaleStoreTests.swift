import Foundation
import Testing
import FlashSaleCore
@testable import FlashSaleStore

@Suite struct InventoryTests {
    let s1 = SaleID(trusted: "s1")

    @Test func seedAddsToTotalAndAvailable() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 10)
        _ = try f.book("alice")
        let status = try f.store.seedInventory(s1, count: 5, exactly: false, clock: T)
        #expect(status.sale.counters == counters(15, available: 14, held: 1, booked: 0))
    }

    @Test func setMakesTheTotalExact() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 10)
        _ = try f.book("alice")
        #expect(try f.store.seedInventory(s1, count: 3, exactly: true, clock: T).sale.counters
            == counters(3, available: 2, held: 1, booked: 0))
    }

    @Test func setBelowHeldPlusBookedIsRefusedAndChangesNothing() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 10)
        let a = try f.book("a")
        _ = try f.book("b")
        _ = try f.store.confirm(a.id, in: s1, user: nil, clock: T)
        #expect(failure { _ = try f.store.seedInventory(s1, count: 1, exactly: true, clock: T) }?.exitCode == 4)
        #expect(try f.counters() == counters(10, available: 8, held: 1, booked: 1))
        #expect(try f.store.seedInventory(s1, count: 2, exactly: true, clock: T).sale.counters
            == counters(2, available: 0, held: 1, booked: 1))
    }

    @Test func setFirstExpiresOverdueHolds() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 10)
        _ = try f.book("a")
        #expect(try f.store.seedInventory(s1, count: 0, exactly: true, clock: minutes(5)).sale.counters
            == counters(0, available: 0, held: 0, booked: 0, expired: 1))
    }

    @Test func seedBeyondTheMaximumIsAConflict() throws {
        let f = try StoreFixture()
        try f.sale(inventory: maximumInventory)
        #expect(failure { _ = try f.store.seedInventory(s1, count: 1, exactly: false, clock: T) }?.exitCode == 4)
    }

    @Test func operatorStatesAreNoOpsWhenAlreadyThereAndClosedIsFinal() throws {
        let f = try StoreFixture()
        try f.sale()
        #expect(try f.store.change(s1, by: .pause, clock: T).state == .paused)
        #expect(try f.store.change(s1, by: .pause, clock: T).state == .paused)
        #expect(try f.count("SELECT count(*) FROM event WHERE kind = 'sale_paused'") == 1)
        #expect(try f.store.change(s1, by: .close, clock: T).state == .closed)
        #expect(failure { _ = try f.store.change(s1, by: .resume, clock: T) }?.exitCode == 4)
    }
}

@Suite struct SweepTests {
    let s1 = SaleID(trusted: "s1")

    @Test func sweepExpiresHoldsFromTheirExpiryInstantOnly() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("early", at: T)
        _ = try f.book("late", at: minutes(1))
        #expect(try f.store.sweep(nil, limit: nil, dryRun: false, clock: Instant(milliseconds: minutes(5).milliseconds - 1)).total == 0)
        let report = try f.store.sweep(nil, limit: nil, dryRun: false, clock: minutes(5))
        #expect(report.total == 1)
        #expect(report.expired.first?.sale == s1)
        #expect(try f.counters(at: minutes(5)) == counters(10, available: 9, held: 1, booked: 0, expired: 1))
    }

    @Test func dryRunCountsAndChangesNothing() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("a")
        _ = try f.book("b")
        #expect(try f.store.sweep(s1, limit: nil, dryRun: true, clock: minutes(10)).total == 2)
        #expect(try f.count("SELECT count(*) FROM booking WHERE status = 'held'") == 2)
        #expect(try f.counters().held == 2)
    }

    @Test func limitExpiresTheLongestOverdueFirst() throws {
        let f = try StoreFixture()
        try f.sale()
        let first = try f.book("a", at: T)
        _ = try f.book("b", at: minutes(1))
        #expect(try f.store.sweep(s1, limit: 1, dryRun: false, clock: minutes(10)).total == 1)
        #expect(try f.count("SELECT count(*) FROM booking WHERE status = 'expired' AND id = '\(first.id)'") == 1)
    }

    @Test func limitTakesTheLongestOverdueAcrossSales() throws {
        let f = try StoreFixture()
        try f.store.createSale(SaleDefinition(id: SaleID("a"), name: nil, inventory: 1, hold: .seconds(3600),
                                              perUser: 1, startsAt: T, endsAt: nil), clock: T)
        try f.sale("b")
        _ = try f.book("u", sale: "a")
        _ = try f.book("u", sale: "b")
        let report = try f.store.sweep(nil, limit: 1, dryRun: false, clock: minutes(120))
        #expect(report.expired.map(\.sale.text) == ["b"])
        #expect(try f.counters("a", at: minutes(120)).held == 1)
    }

    @Test func sweepOfAnUnknownSaleIsNotFound() throws {
        let f = try StoreFixture()
        #expect(failure { _ = try f.store.sweep(SaleID("nope"), limit: nil, dryRun: false, clock: T) }?.exitCode == 3)
    }

    @Test func confirmedBookingsAreNeverSwept() throws {
        let f = try StoreFixture()
        try f.sale()
        let hold = try f.book("a")
        _ = try f.store.confirm(hold.id, in: s1, user: nil, clock: T)
        #expect(try f.store.sweep(nil, limit: nil, dryRun: false, clock: minutes(60)).total == 0)
        #expect(try f.counters().booked == 1)
    }
}

@Suite struct VerifyTests {
    @Test func aBusySaleVerifiesClean() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 5, perUser: 2)
        let s1 = SaleID(trusted: "s1")
        let a = try f.book("a")
        let b = try f.book("b")
        _ = try f.book("c")
        _ = try f.store.confirm(a.id, in: s1, user: nil, clock: T)
        _ = try f.store.cancel(b.id, in: s1, user: nil, force: false, clock: T)
        _ = try f.store.sweep(nil, limit: nil, dryRun: false, clock: minutes(6))
        #expect(try f.store.verify(nil, clock: minutes(6)) == [])
    }

    @Test func verifyCatchesACounterChangedBehindItsBack() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("a")
        // Keeps total = available + held + booked, so only the recount can tell.
        try f.store.db.execute("UPDATE sale SET held = held - 1, available = available + 1")
        let violations = try f.store.verify(nil, clock: T)
        #expect(violations.contains { $0.contains("counter held is 0 but 1 bookings are held") })
    }

    @Test func verifyCatchesABrokenBalance() throws {
        let f = try StoreFixture()
        try f.sale()
        try f.store.db.execute("PRAGMA ignore_check_constraints = ON")
        try f.store.db.execute("UPDATE sale SET total = total + 1")
        #expect(try f.store.verify(SaleID("s1"), clock: T).contains { $0.contains("total 11 != available 10") })
    }

    @Test func verifyCatchesAUserOverTheLimit() throws {
        let f = try StoreFixture()
        try f.sale()
        let hold = try f.book("a")
        try f.store.db.execute(
            """
            INSERT INTO booking (id, sale, user, status, created_at, expires_at, confirmed_at)
            SELECT 'bk_copy', sale, user, 'booked', created_at, expires_at, created_at FROM booking WHERE id = :id
            """, [":id": .text(hold.id.text)])
        try f.store.db.execute("UPDATE sale SET booked = booked + 1, total = total + 1")
        #expect(try f.store.verify(nil, clock: T).contains { $0.contains("user 'a' has 2 active bookings") })
    }

    @Test func verifyCatchesARequestAcceptedWithoutABooking() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.store.submit(BookingRequest(sale: SaleID("s1"), user: "a", ip: nil, userAgent: nil, key: nil), clock: T)
        try f.store.db.execute("INSERT INTO event (at, sale, kind, user, request) VALUES (1, 's1', 'accepted', 'a', 1)")
        try f.store.db.execute("UPDATE sale SET decided_through = 1")
        #expect(try f.store.verify(nil, clock: T).contains { $0.contains("1 requests whose decision") })
    }

    @Test func verifyCatchesARequestPassedWithoutADecision() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.store.submit(BookingRequest(sale: SaleID("s1"), user: "a", ip: nil, userAgent: nil, key: nil), clock: T)
        try f.store.db.execute("UPDATE sale SET decided_through = 1")
        #expect(try f.store.verify(nil, clock: T).contains { $0.contains("1 requests whose decision") })
    }

    @Test func aSecondDecisionForARequestIsRefusedBySQLiteItself() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 0)
        _ = try f.store.submit(BookingRequest(sale: SaleID("s1"), user: "a", ip: nil, userAgent: nil, key: nil), clock: T)
        #expect(try f.store.processBatch(of: SaleID("s1"), batch: 10, clock: T).rejected == 1)
        #expect(throws: SQLiteError.self) {
            try f.store.db.execute("INSERT INTO event (at, sale, kind, user, request, detail) VALUES (1, 's1', 'rejected', 'a', 1, 'sold_out')")
        }
    }

    @Test func verifyCatchesARequestOutsideTheLine() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.store.submit(BookingRequest(sale: SaleID("s1"), user: "a", ip: nil, userAgent: nil, key: nil), clock: T)
        try f.store.db.execute("DELETE FROM request_run")
        #expect(try f.store.verify(nil, clock: T).contains { $0.contains("its line holds 0 requests, but it has 1") })
    }

    @Test func theBalanceIsEnforcedBySQLiteItself() throws {
        let f = try StoreFixture()
        try f.sale()
        #expect(throws: SQLiteError.self) { try f.store.db.execute("UPDATE sale SET available = available - 1") }
    }
}

@Suite struct DatabaseFileTests {
    @Test func theDatabaseIsCreatedReadableByItsOwnerOnly() throws {
        let f = try StoreFixture()
        let mode = try FileManager.default.attributesOfItem(atPath: f.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func reopeningKeepsTheDataAndTheSchemaVersion() throws {
        let f = try StoreFixture()
        try f.sale()
        let again = try SaleStore(path: f.path, busyTimeout: .seconds(1))
        #expect(try again.status(SaleID("s1"), clock: T).sale.counters.total == 10)
        #expect(try f.count("PRAGMA user_version") == Schema.currentVersion)
        #expect(try f.store.db.firstRow("PRAGMA journal_mode") { $0.text(0) } == "wal")
    }

    @Test func anotherProgramsDatabaseIsRefused() throws {
        let f = try StoreFixture()
        let other = f.directory.appendingPathComponent("other.db").path
        FileManager.default.createFile(atPath: other, contents: nil)
        let foreign = try Connection(path: other, busyTimeout: .seconds(1))
        try foreign.execute("CREATE TABLE notes (body TEXT)")
        #expect(failure { _ = try SaleStore(path: other, busyTimeout: .seconds(1), createIfMissing: true) }?.exitCode == 73)
        #expect(try foreign.firstRow("PRAGMA journal_mode") { $0.text(0) } == "delete")
    }

    @Test func aMissingFileIsCreatedOnlyWhenAskedFor() throws {
        let f = try StoreFixture()
        let path = f.directory.appendingPathComponent("new.db").path
        #expect(throws: MissingDatabase.self) { try SaleStore(path: path, busyTimeout: .seconds(1)) }
        #expect(!FileManager.default.fileExists(atPath: path))
        _ = try SaleStore(path: path, busyTimeout: .seconds(1), createIfMissing: true)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        _ = try SaleStore(path: path, busyTimeout: .seconds(1))
    }

    /// An empty file is no flashsale database yet: only a store that may create one gives it the schema.
    @Test func anEmptyFileIsMigratedOnlyWhenCreatingIsAllowed() throws {
        let f = try StoreFixture()
        let path = f.directory.appendingPathComponent("empty.db").path
        FileManager.default.createFile(atPath: path, contents: nil)
        #expect(throws: MissingDatabase.self) { try SaleStore(path: path, busyTimeout: .seconds(1)) }
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 0)
        _ = try SaleStore(path: path, busyTimeout: .seconds(1), createIfMissing: true)
        _ = try SaleStore(path: path, busyTimeout: .seconds(1))
    }

    /// Through a dangling symbolic link, the link's target is created, with mode 0600.
    @Test func aDatabaseCreatedThroughADanglingLinkIsOwnerOnly() throws {
        let f = try StoreFixture()
        let link = f.directory.appendingPathComponent("link.db").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "target.db")
        _ = try SaleStore(path: link, busyTimeout: .seconds(1), createIfMissing: true)
        let target = f.directory.appendingPathComponent("target.db").path
        #expect(try FileManager.default.attributesOfItem(atPath: target)[.posixPermissions] as? Int == 0o600)
    }

    @Test func aFileThatIsNotADatabaseIsCantOpen() throws {
        let f = try StoreFixture()
        let junk = f.directory.appendingPathComponent("junk.db").path
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: junk))
        do {
            _ = try SaleStore(path: junk, busyTimeout: .seconds(1))
            Issue.record("a file of junk opened as a database")
        } catch let error as SQLiteError {
            #expect(error.flashSaleError.exitCode == 73)
        }
    }

    @Test func aMissingDirectoryIsCantOpen() throws {
        let f = try StoreFixture()
        let path = f.directory.appendingPathComponent("no/such/dir/x.db").path
        #expect(failure { _ = try SaleStore(path: path, busyTimeout: .seconds(1), createIfMissing: true) }?.exitCode == 73)
    }
}

@Suite struct ConcurrentConnectionTests {
    /// Eight connections on eight threads race for 50 items with 400 distinct users.
    @Test func manyConnectionsNeverOversell() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 50)
        let held = Counter()
        let path = f.path
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            guard let store = try? SaleStore(path: path, busyTimeout: .seconds(30)) else { return }
            for n in 0..<50 {
                let request = BookingRequest(sale: SaleID(trusted: "s1"), user: "u\(worker)-\(n)", ip: nil, userAgent: nil, key: nil)
                if case .held? = try? store.book(request, clock: T) { held.increment() }
            }
        }
        #expect(held.value == 50)
        #expect(try f.counters() == counters(50, available: 0, held: 50, booked: 0))
        #expect(try f.count("SELECT count(DISTINCT user) FROM booking") == 50)
        #expect(try f.store.verify(nil, clock: T) == [])
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
