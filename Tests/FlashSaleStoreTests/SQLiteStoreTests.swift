import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport
@testable import FlashSaleStore
import CSQLite

/// The planted corruptions `verify` must name, each made with SQL behind the engine's back,
/// and the constraints that make SQLite itself refuse some. (That a busy sale verifies
/// clean is in the conformance suite.)
@Suite struct VerifyTests {
    @Test func verifyCatchesACounterChangedBehindItsBack() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("a")
        // Keeps total = available + held + booked, so only the recount can tell.
        try f.store.db.execute("UPDATE sale SET held = held - 1, available = available + 1")
        let violations = try f.store.verify(nil, clock: T)
        #expect(violations.contains { $0.contains("counter held is 0 but 1 booking is held") })
    }

    @Test func verifyCatchesABrokenBalance() throws {
        let f = try StoreFixture()
        try f.sale()
        try f.store.db.execute("PRAGMA ignore_check_constraints = ON")
        try f.store.db.execute("UPDATE sale SET total = total + 1")
        #expect(try f.store.verify(SaleID("s1"), clock: T).contains { $0.contains("total 11 != available 10") })
    }

    /// Found by probing: counters set by hand past any stock crashed `verify` (an overflow
    /// in the balance's sum); and by review, `book` (in the counters' change, and in a
    /// hold's expiry from a time or a hold set to the far end of Int64). verify names each;
    /// the next write to counters no check of the schema allows is refused, not a crash.
    @Test(arguments: [
        ("available = 9223372036854775807, held = 1, total = 0", "sale s1: total 0 != available 9223372036854775807 + held 1 + booked 0"),
        ("held = 9223372036854775807", "sale s1: total 10 != available 10 + held 9223372036854775807 + booked 0"),
        ("hold_ms = 9223372036854775807", "sale s1: hold_ms is 9223372036854775807, outside what flashsale writes (1 to 2592000000)"),
        ("total = 2000000000, available = 2000000000", "sale s1: total is 2000000000, outside what flashsale writes (0 to 1000000000)"),
    ])
    func valuesSetPastWhatFlashsaleWritesAreViolationsNotCrashes(change: String, violation: String) throws {
        let f = try StoreFixture()
        try f.sale()
        try f.store.db.execute("PRAGMA ignore_check_constraints = ON")
        try f.store.db.execute("UPDATE sale SET \(change)")
        let found = try f.store.verify(SaleID("s1"), clock: T)
        #expect(found.contains(violation), "\(found)")
        try f.store.db.execute("PRAGMA ignore_check_constraints = OFF")
        _ = try? f.book("a")
    }

    /// A sale's time at the far end of Int64: a hold's expiry from it is not a crash.
    @Test func aSalesTimeSetToTheFarEndIsNoCrash() throws {
        let f = try StoreFixture()
        try f.sale()
        try f.store.db.execute("UPDATE sale SET high_water = 9223372036854775807")
        _ = try? f.book("a")
        #expect(try !f.store.verify(SaleID("s1"), clock: T).isEmpty)
    }

    /// Found by probing: a sale's time set by hand to the far end of a 64-bit integer crashed
    /// `status` and `sales` (an overflow writing it), and `verify` said ok.
    @Test(arguments: ["starts_at", "ends_at", "created_at", "high_water"])
    func verifyNamesASaleTimeNoFlashsaleWrites(column: String) throws {
        let f = try StoreFixture()
        try f.sale()
        try f.store.db.execute("UPDATE sale SET \(column) = -9223372036854775808")
        #expect(try f.store.verify(SaleID("s1"), clock: T).contains(
            "sale s1: \(column) is -292275055-05-16T16:47:04.192Z, outside the times flashsale writes "
                + "(1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z)"))
    }

    /// Found by probing: a queue's cursor set by hand past its line passed verify, and
    /// `submit` then queued requests no `process` would decide.
    @Test func verifyCatchesACursorNamingNoRequest() throws {
        let f = try StoreFixture()
        try f.sale()
        var records = ["a", "b"].enumerated().map { ReadOutcome.record(RequestRecord(line: $0.offset + 1, user: $0.element)) }[...]
        _ = try f.engine.submit(to: SaleID("s1"), clock: T, skipping: nil) { records.popFirst() }
        #expect(try f.engine.processBatch(of: SaleID("s1"), batch: 10, clock: T).accepted == 2)
        #expect(try f.store.verify(nil, clock: T) == [])
        try f.store.db.execute("UPDATE sale SET decided_through = 100")
        #expect(try f.store.verify(nil, clock: T) == ["sale s1: its queue's cursor (decided_through 100) names none of its requests, "
                                                      + "so those submitted up to it would never be decided"])
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
        _ = try f.engine.submit(BookingRequest(sale: SaleID("s1"), user: "a", ip: nil, userAgent: nil, key: nil), clock: T)
        try f.store.db.execute("INSERT INTO event (at, sale, kind, user, request) VALUES (1, 's1', 'accepted', 'a', 1)")
        try f.store.db.execute("UPDATE sale SET decided_through = 1")
        #expect(try f.store.verify(nil, clock: T).contains { $0.contains("1 request whose decision") })
    }

    @Test func verifyCatchesARequestPassedWithoutADecision() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.engine.submit(BookingRequest(sale: SaleID("s1"), user: "a", ip: nil, userAgent: nil, key: nil), clock: T)
        try f.store.db.execute("UPDATE sale SET decided_through = 1")
        #expect(try f.store.verify(nil, clock: T).contains { $0.contains("1 request whose decision") })
    }

    @Test func aSecondDecisionForARequestIsRefusedBySQLiteItself() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 0)
        _ = try f.engine.submit(BookingRequest(sale: SaleID("s1"), user: "a", ip: nil, userAgent: nil, key: nil), clock: T)
        #expect(try f.engine.processBatch(of: SaleID("s1"), batch: 10, clock: T).rejected == 1)
        #expect(throws: SQLiteError.self) {
            try f.store.db.execute("INSERT INTO event (at, sale, kind, user, request, detail) VALUES (1, 's1', 'rejected', 'a', 1, 'sold_out')")
        }
    }

    @Test func verifyCatchesARequestOutsideTheLine() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.engine.submit(BookingRequest(sale: SaleID("s1"), user: "a", ip: nil, userAgent: nil, key: nil), clock: T)
        try f.store.db.execute("DELETE FROM request_run")
        #expect(try f.store.verify(nil, clock: T).contains { $0.contains("its line holds 0 requests, but it has 1") })
    }

    @Test(arguments: [
        "UPDATE hold_second SET held = held + 1",
        "UPDATE hold_second SET second = second + 1",
        "DELETE FROM hold_second",
        "INSERT INTO hold_second (sale, second, held) VALUES ('s1', 1, 0)",
    ])
    func verifyCatchesACountOfExpiringHoldsChangedBehindItsBack(change: String) throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("a")
        try f.store.db.execute(change)
        #expect(try f.store.verify(nil, clock: T).contains {
            $0.hasPrefix("sale s1: ") && $0.contains(" whose count of expiring holds (hold_second) is not ")
        })
    }

    @Test func verifyCatchesACountOfExpiringHoldsOfNoSale() throws {
        let f = try StoreFixture()
        try f.store.db.execute("INSERT INTO hold_second (sale, second, held) VALUES ('gone', 1, 1)")
        #expect(try f.store.verify(nil, clock: T) == ["1 second of expiring holds (hold_second) belongs to no sale"])
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
        let again = Engine(store: try SQLiteStore(path: f.path, busyTimeout: .seconds(1)))
        #expect(try again.status(SaleID("s1"), clock: T).sale.counters.total == 10)
        #expect(try f.count("PRAGMA user_version") == Schema.currentVersion)
        #expect(try f.store.db.firstRow("PRAGMA journal_mode") { $0.text(0) } == "wal")
    }

    @Test func anotherProgramsDatabaseIsRefused() throws {
        let f = try StoreFixture()
        let other = f.directory.appendingPathComponent("other.db").path
        #expect(FileManager.default.createFile(atPath: other, contents: nil))
        let foreign = try Connection(path: other, busyTimeout: .seconds(1))
        try foreign.execute("CREATE TABLE notes (body TEXT)")
        #expect(throws: StoreFailure.unusable(detail: "\(other): an SQLite database of another program, not flashsale's")) {
            try SQLiteStore(path: other, busyTimeout: .seconds(1), createIfMissing: true)
        }
        #expect(try foreign.firstRow("PRAGMA journal_mode") { $0.text(0) } == "delete")
    }

    @Test func aMissingFileIsCreatedOnlyWhenAskedFor() throws {
        let f = try StoreFixture()
        let path = f.directory.appendingPathComponent("new.db").path
        #expect(throws: StoreFailure.missingDatabase(path: path)) { try SQLiteStore(path: path, busyTimeout: .seconds(1)) }
        #expect(!FileManager.default.fileExists(atPath: path))
        _ = try SQLiteStore(path: path, busyTimeout: .seconds(1), createIfMissing: true)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        _ = try SQLiteStore(path: path, busyTimeout: .seconds(1))
    }

    /// An empty file is no flashsale database yet: only a store that may create one gives it the schema.
    @Test func anEmptyFileIsMigratedOnlyWhenCreatingIsAllowed() throws {
        let f = try StoreFixture()
        let path = f.directory.appendingPathComponent("empty.db").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        #expect(throws: StoreFailure.missingDatabase(path: path)) { try SQLiteStore(path: path, busyTimeout: .seconds(1)) }
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 0)
        _ = try SQLiteStore(path: path, busyTimeout: .seconds(1), createIfMissing: true)
        _ = try SQLiteStore(path: path, busyTimeout: .seconds(1))
    }

    /// Through a dangling symbolic link, the link's target is created, with mode 0600.
    @Test func aDatabaseCreatedThroughADanglingLinkIsOwnerOnly() throws {
        let f = try StoreFixture()
        let link = f.directory.appendingPathComponent("link.db").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "target.db")
        _ = try SQLiteStore(path: link, busyTimeout: .seconds(1), createIfMissing: true)
        let target = f.directory.appendingPathComponent("target.db").path
        #expect(try FileManager.default.attributesOfItem(atPath: target)[.posixPermissions] as? Int == 0o600)
    }

    @Test func aFileThatIsNotADatabaseIsUnusableAndNamed() throws {
        let f = try StoreFixture()
        let junk = f.directory.appendingPathComponent("junk.db").path
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: junk))
        #expect(throws: StoreFailure.unusable(detail: "\(junk): file is not a database")) {
            try SQLiteStore(path: junk, busyTimeout: .seconds(1))
        }
    }

    @Test func aMissingDirectoryIsCantOpen() throws {
        let f = try StoreFixture()
        let path = f.directory.appendingPathComponent("no/such/dir/x.db").path
        #expect(failure { _ = try SQLiteStore(path: path, busyTimeout: .seconds(1), createIfMissing: true) }?.exitCode == 73)
    }
}

/// A sale's line is kept as runs of consecutive request ids (`request_run`), not a row per
/// request: how single and bulk submits grow it.
@Suite struct LineStorageTests {
    @Test func interleavedSubmitsMakeARunEach() throws {
        let f = try StoreFixture()
        try f.sale()
        try f.sale("s2")
        for user in ["a", "b", "c", "d", "e"] {
            for sale in ["s1", "s2"] {
                _ = try f.engine.submit(BookingRequest(sale: SaleID(sale), user: UserID(trusted: user), ip: nil, userAgent: nil, key: nil), clock: T)
            }
        }
        #expect(try f.count("SELECT count(*) FROM request_run") == 10)
    }

    @Test func aBulkSubmitIsOneRunAndGrowsTheLastOne() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.engine.submit(BookingRequest(sale: SaleID("s1"), user: "a", ip: nil, userAgent: nil, key: nil), clock: T)
        var outcomes = (1...200).map { ReadOutcome.record(RequestRecord(line: $0, user: "u\($0)")) }[...]
        _ = try f.engine.submit(to: SaleID("s1"), clock: T, skipping: nil) { outcomes.popFirst() }
        #expect(try f.count("SELECT count(*) FROM request_run") == 1)
        #expect(try f.count("SELECT last_id - first_id + 1 FROM request_run") == 201)
    }
}

/// What SQLite does for the rows a busy sale writes per request, as it plans them.
@Suite struct HotStatementTests {
    /// SQLite 3.40 checks `x IN (<constants>)` of more than two against a temporary b-tree
    /// that it builds for the statement, on every run: in a CHECK of the booking table, a
    /// sixth of the instructions of a hold.
    @Test func writingABookingBuildsNoTemporaryTable() throws {
        let f = try StoreFixture()
        for sql in ["INSERT INTO booking (id, sale, user, status, created_at, expires_at) VALUES ('bk_x', 's1', 'a', 'held', 0, 1)",
                    "UPDATE booking SET status = 'booked' WHERE id = 'bk_x'"] {
            let opcodes = try f.store.db.rows("EXPLAIN " + sql) { try $0.text("opcode") }
            #expect(!opcodes.contains("OpenEphemeral"), "\(sql)")
        }
    }
}

extension HotStatementTests {
    /// SQLite keeps memory statistics behind a global mutex: two lock calls per allocation,
    /// about a hundred per hold. flashsale never reads them, so they are off for the process
    /// before its first connection.
    @Test func sqliteKeepsNoMemoryStatistics() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("a")
        #expect(sqlite3_memory_used() == 0)
    }
}

extension HotStatementTests {
    /// The per-IP limit's index takes an entry per hold only in a sale that has the limit.
    @Test func onlyASaleWithAPerIPLimitIndexesAddresses() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.engine.createSale(SaleDefinition(id: SaleID("s2"), name: nil, inventory: 10, hold: .seconds(300), perUser: 1,
                                               perIP: 2, startsAt: T, endsAt: nil), clock: T)
        for sale in ["s1", "s2"] {
            _ = try f.engine.book(BookingRequest(sale: SaleID(sale), user: "a", ip: "2001:DB8::1", userAgent: nil, key: nil),
                                  clock: T)
        }
        #expect(try f.store.db.rows("SELECT sale, ip, ip_canonical FROM booking ORDER BY sale") {
            [$0.text(0), try $0.text("ip"), try $0.optionalText("ip_canonical") ?? "NULL"]
        } == [["s1", "2001:DB8::1", "NULL"], ["s2", "2001:DB8::1", "2001:0db8:0000:0000::/64"]])
    }
}

extension HotStatementTests {
    /// `export` and `bookings` hand over a sale's bookings as SQLite reads them: a sort
    /// would hold them all in memory first.
    @Test func aSalesBookingsAreReadInOrderWithoutSorting() throws {
        let f = try StoreFixture()
        for sql in [selectBookingsOfSale, selectBookingsOfUser] {
            let plan = try f.store.db.rows("EXPLAIN QUERY PLAN " + sql) { try $0.text("detail") }
            #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(plan)")
        }
    }
}

extension HotStatementTests {
    /// A `book` runs in a process of its own, and prepares its statements inside the write
    /// lock: none of a submit's (a 64-row INSERT took more than half of a book's
    /// instructions to prepare).
    @Test func aBookingPreparesOnlyStatementsItRuns() throws {
        let f = try StoreFixture()
        try f.sale()
        // A process of its own, as `book` is.
        let store = try SQLiteStore(path: f.path, busyTimeout: .seconds(5))
        _ = try Engine(store: store).book(BookingRequest(sale: SaleID("s1"), user: "a", ip: nil, userAgent: nil, key: nil),
                                          clock: T)
        var prepared: [String] = []
        var statement = sqlite3_next_stmt(store.db.handle, nil)
        while let current = statement {
            prepared.append(String(cString: sqlite3_sql(current)))
            statement = sqlite3_next_stmt(store.db.handle, current)
        }
        #expect(!prepared.isEmpty)
        #expect(!prepared.contains { $0.contains("INTO request") || $0.contains("ip_canonical = :ip") }, "\(prepared)")
    }
}

/// Counts of attempts are telemetry: a commit that carries nothing else is made without a
/// disk sync, around the transaction, since SQLite fixes a commit's safety level outside it.
@Suite struct TelemetryCommitTests {
    private func declinedBook(_ store: SQLiteStore) throws {
        let refusal = #expect(throws: SaleError.self) {
            _ = try Engine(store: store).book(BookingRequest(sale: SaleID("s1"), user: "late", ip: "203.0.113.5",
                                                             userAgent: nil, key: nil), clock: T)
        }
        #expect(refusal?.code == .soldOut)
    }

    @Test func sqliteRefusesToChangeTheSafetyLevelInsideATransaction() throws {
        let f = try StoreFixture()
        _ = try f.store.db.writeTransaction {
            #expect(throws: SQLiteError.self) { try f.store.db.execute("PRAGMA synchronous = OFF") }
        }
    }

    @Test func aDeclineIsCountedAndTheConnectionIsDurableAgainAfter() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 0)
        try declinedBook(f.store)
        #expect(try f.store.db.firstRow("PRAGMA synchronous") { $0.int64(0) } == 2)
        #expect(try f.store.count("SELECT attempts FROM attempt_counter WHERE kind = 'ip' AND value = '203.0.113.5'", [:]) == 1)
        // The next transaction on the same connection is as durable as ever.
        _ = try f.engine.seedInventory(SaleID("s1"), count: 1, exactly: false, clock: T)
        #expect(try f.store.db.firstRow("PRAGMA synchronous") { $0.int64(0) } == 2)
    }

    /// Closing would checkpoint, with its syncs: a connection that committed only telemetry
    /// leaves that to the next one to close, which finds the counts in the WAL.
    @Test func aConnectionThatCommittedOnlyTelemetryLeavesTheCheckpointToTheNext() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-telemetry-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("t.db").path
        let wal = path + "-wal"
        try {
            let store = try SQLiteStore(path: path, busyTimeout: .seconds(5), createIfMissing: true)
            _ = try Engine(store: store).createSale(SaleDefinition(id: SaleID("s1"), name: nil, inventory: 0, hold: .seconds(300),
                                                                   perUser: 1, startsAt: T, endsAt: nil), clock: T)
        }()
        #expect(!FileManager.default.fileExists(atPath: wal))
        try { try declinedBook(try SQLiteStore(path: path, busyTimeout: .seconds(5))) }()
        #expect(FileManager.default.fileExists(atPath: wal))
        try {
            let store = try SQLiteStore(path: path, busyTimeout: .seconds(5))
            #expect(try Engine(store: store).metrics(of: SaleID("s1"), clock: T).first?.attempts.attempts == 1)
        }()
        #expect(!FileManager.default.fileExists(atPath: wal))
    }

    /// A process that only declines (a sold-out sale's stream or server) commits only
    /// telemetry, without syncs: the WAL is still checkpointed, with its syncs, when it
    /// reaches SQLite's threshold (1,000 pages), and reused, where it grew by a page or two
    /// a decline without end.
    @Test func declinesAloneKeepTheWALWithinTheCheckpointThreshold() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 0)
        let declines = 2500
        for user in 0..<declines {
            #expect(throws: SaleError.self) {
                _ = try f.engine.book(BookingRequest(sale: SaleID("s1"), user: UserID(trusted: "u\(user)"), ip: nil,
                                                     userAgent: nil, key: nil), clock: T)
            }
        }
        let pageSize = try #require(try f.store.db.firstRow("PRAGMA page_size") { $0.int64(0) })
        let wal = try FileManager.default.attributesOfItem(atPath: f.path + "-wal")[.size] as? Int64 ?? 0
        #expect(wal <= 1100 * (pageSize + 24), "the WAL holds \(wal / (pageSize + 24)) pages")
        #expect(try f.engine.metrics(of: SaleID("s1"), clock: T).first?.attempts.attempts == Int64(declines))
        #expect(try f.store.db.firstRow("PRAGMA synchronous") { $0.int64(0) } == 2)
    }

    /// A transaction that decided something carries its counts in its own, durable, commit;
    /// one that decided nothing commits them in a second one.
    @Test func countsRideWithTheDecisionsOfTheirTransaction() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 1)
        final class Commits { var count = 0 }
        let commits = Commits()
        sqlite3_commit_hook(f.store.db.handle, { context in
            context.map { Unmanaged<Commits>.fromOpaque($0).takeUnretainedValue().count += 1 }
            return 0
        }, Unmanaged.passUnretained(commits).toOpaque())
        defer { sqlite3_commit_hook(f.store.db.handle, nil, nil) }
        _ = try f.book("a")
        #expect(commits.count == 1)
        #expect(try f.store.count("SELECT attempts FROM attempt_counter WHERE kind = 'sale' AND value = ''", [:]) == 1)
        try declinedBook(f.store)
        #expect(commits.count == 3)
        #expect(try f.store.count("SELECT attempts FROM attempt_counter WHERE kind = 'sale' AND value = ''", [:]) == 2)
    }
}

/// A database file removed or renamed under an open connection (a long-running `serve`):
/// its writes are refused as I/O errors, where SQLite committed them into the file it was.
@Suite struct MovedFileTests {
    @Test(arguments: [false, true])
    func aWriteToAFileRemovedOrRenamedIsRefused(renamed: Bool) throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("a")
        if renamed {
            try FileManager.default.moveItem(atPath: f.path, toPath: f.path + ".moved")
        } else {
            try FileManager.default.removeItem(atPath: f.path)
        }
        let error = failure { _ = try f.book("b") }
        #expect(error?.errorCode == .io, "\(String(describing: error))")
        #expect(error?.message.contains("the database file was removed or renamed while open") == true,
                "\(String(describing: error))")
    }
}

/// A group of declines on a database that cannot take its attempt counts (SQLITE_FULL,
/// through `max_page_count`, as a full disk): `DecisionGroup.commit`.
@Suite struct FullDatabaseTelemetryTests {
    private func decline(_ group: DecisionGroup, _ user: String) throws {
        let request = BookingRequest(sale: try SaleID("s1"), user: UserID(trusted: user), ip: "203.0.113.7",
                                     userAgent: String(repeating: "a", count: 200) + user, key: nil)
        guard case .declined = try group.book(request, clock: T) else {
            Issue.record("\(user) was not declined")
            return
        }
    }

    /// Found by review: serve's commit of its carried counts with a group of declines, on a
    /// full disk, answered the declines (as it should) and dropped the counts carried,
    /// logging nothing; they are now kept for the next try, and only the group's own lost.
    @Test func theCountsCarriedAreKeptWhenACommitOfDeclinesCannotWriteThem() throws {
        let f = try StoreFixture()
        _ = try f.sale(inventory: 0)
        let group = DecisionGroup(engine: f.engine)
        group.carriesTelemetry = true
        for n in 0..<300 { try decline(group, "u\(n)") }
        #expect(try group.commit(withTelemetry: false))
        #expect(group.isCarryingTelemetry)

        let pages = try #require(try f.store.db.firstRow("PRAGMA page_count") { $0.int64(0) })
        try f.store.db.execute("PRAGMA max_page_count = \(pages)")
        try decline(group, "late")
        #expect(try group.commit(withTelemetry: true) == false)
        #expect(group.isCarryingTelemetry)

        try f.store.db.execute("PRAGMA max_page_count = 1073741823")
        try group.writeTelemetry()
        #expect(!group.isCarryingTelemetry)
        #expect(try f.engine.metrics(of: try SaleID("s1"), clock: T).first?.attempts.attempts == 300)
    }
}

@Suite struct SQLiteErrorTests {
    /// Found by probing: a command that only reads, on a WAL database in a directory its
    /// user cannot write, said "attempt to write a readonly database". It says why.
    @Test func aDirectoryThatCannotBeWrittenIsNamed() {
        let error = SQLiteError(code: CSQLITE_READONLY_DIRECTORY, message: "attempt to write a readonly database")
        // Mapped only here: the tests run as root, whom no directory's mode stops.
        #expect(error.failure == .cantOpen(
            detail: "its directory cannot be written, where SQLite makes its -wal or -journal file (a WAL database's even to read it)"))
        #expect(SQLiteError(code: SQLITE_READONLY, message: "attempt to write a readonly database").failure
                == .cantOpen(detail: "attempt to write a readonly database"))
    }

    /// Found by probing: a table made again by hand without flashsale's columns was an
    /// internal error (exit 1) on an INSERT, where a missing table or a read's missing
    /// column was an unusable database (73).
    @Test func aTableChangedByHandIsAnUnusableDatabase() {
        let message = "table attempt_counter has no column named sale"
        #expect(SQLiteError(code: SQLITE_ERROR, message: message).failure == .unusable(detail: message))
    }
}

/// What closing leaves of a database file removed or renamed while open: SQLite keeps its
/// WAL under the old name, where the renamed file does not find it and a new file at that
/// name takes it for its own (`Connection.settleMovedFile`).
@Suite struct MovedFileClosingTests {
    @Test(arguments: [false, true])
    func closingEmptiesTheWALIntoTheFileWhereverItIs(renamed: Bool) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-moved-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("test.db").path
        let movedPath = path + ".moved"
        let held: BookingID
        do {
            let engine = Engine(store: try SQLiteStore(path: path, busyTimeout: .seconds(5), createIfMissing: true))
            _ = try engine.createSale(SaleDefinition(id: SaleID("s1"), name: nil, inventory: 10, hold: .seconds(300),
                                                     perUser: 1, startsAt: T, endsAt: nil), clock: T)
            held = try engine.book(BookingRequest(sale: SaleID("s1"), user: UserID(trusted: "a"), ip: nil,
                                                  userAgent: nil, key: nil), clock: T).id
            if renamed {
                try FileManager.default.moveItem(atPath: path, toPath: movedPath)
            } else {
                try FileManager.default.removeItem(atPath: path)
            }
        }
        #expect(try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int == 0)
        // A new database at the old name is itself, not the old one's last pages.
        let newcomer = Engine(store: try SQLiteStore(path: path, busyTimeout: .seconds(5), createIfMissing: true))
        #expect(try newcomer.sales(clock: T).isEmpty)
        if renamed {
            let engine = Engine(store: try SQLiteStore(path: movedPath, busyTimeout: .seconds(5), createIfMissing: false))
            #expect(try engine.booking(held, in: SaleID("s1"), clock: T).status == .held)
        }
    }
}

/// What a group of decisions asks SQLite, counted by its statements as SQLite runs them.
@Suite struct GroupQueryTests {
    /// A group of direct bookings in a waitlisted sale asks once whether requests wait in
    /// line, not once a booking (found by probing: on PostgreSQL a query each, and every
    /// hold written by itself before it, held the sale's lock for seconds).
    @Test func aGroupAsksOnceWhetherTheLineWaits() throws {
        let f = try StoreFixture()
        _ = try f.engine.createSale(SaleDefinition(id: SaleID("s1"), name: nil, inventory: 100, hold: .seconds(300), perUser: 1,
                                                   waitlist: true, startsAt: T, endsAt: nil), clock: T)
        final class Asked { var count = 0 }
        let asked = Asked()
        sqlite3_trace_v2(f.store.db.handle, UInt32(SQLITE_TRACE_STMT), { _, context, statement, _ in
            if let context, let statement, let sql = sqlite3_sql(OpaquePointer(statement)),
               String(cString: sql).contains("FROM request_run JOIN sale") {
                Unmanaged<Asked>.fromOpaque(context).takeUnretainedValue().count += 1
            }
            return 0
        }, Unmanaged.passUnretained(asked).toOpaque())
        defer { sqlite3_trace_v2(f.store.db.handle, 0, nil, nil) }
        let group = DecisionGroup(engine: f.engine)
        for user in 0..<50 {
            let request = BookingRequest(sale: try SaleID("s1"), user: UserID(trusted: "u\(user)"), ip: nil, userAgent: nil, key: nil)
            guard case .held = try group.book(request, clock: T) else { Issue.record("u\(user) was not held"); return }
        }
        try group.commit()
        #expect(asked.count == 1)
    }
}
