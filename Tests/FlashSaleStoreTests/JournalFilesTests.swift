import Foundation
import Glibc
import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport
@testable import FlashSaleStore

/// What a long-running process does once its database's -wal and -shm are removed under
/// it, seen against other processes (the `flashsale` binary): the command-line and serve
/// tests see the same through their own stops.
@Suite struct JournalFilesTests {
    /// Found by a CI run: a process that found the names free said its log would go into
    /// the file, but another command opened the database before it closed and made new
    /// files, which its close then had to keep, and its bookings were lost. The log goes
    /// into the file as the removal is found.
    @Test func aLogFoundRemovedGoesIntoTheFileBeforeAnotherOpensTheDatabase() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("alice")
        let watcher = try DataVersionWatcher(f.store.db)
        for suffix in ["-wal", "-shm"] { unlink(f.path + suffix) }
        #expect(Self.copied(by: watcher))
        try flashsale(["book", "s1", "bob"], database: f.path)
        #expect(try Self.users(of: f.path) == ["alice", "bob"])
    }

    /// Found by probing: `status`, run to see what the removal did, made new files, empty,
    /// which were then taken for another's commits, and every commit in the log was lost.
    /// So did a command run with only the -wal removed (the follow-up probe): it left an
    /// empty WAL beside this process's index (and failed, 74, on an index that named
    /// frames its new WAL lacked).
    @Test(arguments: [["-wal", "-shm"], ["-wal"]])
    func emptyFilesACommandThatReadMadeAreRemovedAndTheLogCopied(removed: [String]) throws {
        let f = try StoreFixture()
        try f.sale()
        try f.store.db.execute("PRAGMA wal_checkpoint")
        _ = try f.book("alice")
        let watcher = try DataVersionWatcher(f.store.db)
        for suffix in removed { unlink(f.path + suffix) }
        _ = try? flashsale(["status", "s1"], database: f.path)
        var log = stat()
        #expect(stat(f.path + "-wal", &log) == 0 && log.st_size == 0)
        #expect(Self.copied(by: watcher))
        try flashsale(["book", "s1", "bob"], database: f.path)
        #expect(try Self.users(of: f.path) == ["alice", "bob"])
    }

    /// Found by probing: through a symbolic link, the removal went unseen (the names
    /// looked at were the link's, SQLite's files are beside its target), and a command's
    /// booking made meanwhile was lost.
    @Test func aLogRemovedBesideALinksTargetIsSeen() throws {
        let f = try StoreFixture()
        try f.sale()
        let link = f.directory.appendingPathComponent("link.db").path
        #expect(symlink(f.path, link) == 0)
        let store = try SQLiteStore(path: link, busyTimeout: .seconds(5))
        _ = try Engine(store: store).book(BookingRequest(sale: SaleID("s1"), user: UserID(trusted: "alice"), ip: nil, userAgent: nil,
                                                         key: nil), clock: T)
        let watcher = try DataVersionWatcher(store.db)
        for suffix in ["-wal", "-shm"] { unlink(f.path + suffix) }
        #expect(Self.copied(by: watcher))
        try flashsale(["book", "s1", "bob"], database: link)
        #expect(try Self.users(of: link) == ["alice", "bob"])
    }

    /// Found by probing: another process that shared the log (a stream waiting for input)
    /// held the copy back for the busy timeout, then left it to the close; and as that
    /// process closed later, having not looked since, it removed by name the log of a
    /// command that had committed meanwhile. The copy goes through the shared index at
    /// once, and the other looks once more as it closes (here a follower, stopped by
    /// SIGTERM before its next look: held still as it waits for one).
    @Test func aProcessSharingTheLogNeitherHoldsTheCopyBackNorRemovesANewLog() throws {
        try withSaleDatabase { path in
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            defer { close(null) }
            let follower = try ChildProcess(flashsaleBinary, ["--db", path, "process", "s1", "--follow"], environment: [:],
                                            stdin: null, stdout: null, stderr: null)
            var waits = 0
            while !WALIndex.isOpen(path + "-shm"), waits < 2_000 {
                usleep(5_000)
                waits += 1
            }
            do {
                let store = try SQLiteStore(path: path, busyTimeout: .seconds(5))
                _ = try Engine(store: store).book(BookingRequest(sale: SaleID("s1"), user: UserID(trusted: "alice"), ip: nil,
                                                                 userAgent: nil, key: nil), clock: SystemClock().now())
                let watcher = try DataVersionWatcher(store.db)
                try #require(follower.holdStillWhileItWaitsForASignal())
                for suffix in ["-wal", "-shm"] { unlink(path + suffix) }
                #expect(Self.copied(by: watcher))
            }
            try flashsale(["book", "s1", "bob"], database: path)
            follower.send(SIGTERM)
            follower.send(SIGCONT)
            #expect(follower.wait(within: 20) == .exit(0))
            #expect(try Self.users(of: path) == ["alice", "bob"])
        }
    }

    /// Found by a CI run under load: a process that looked after another that shared its
    /// log had copied it into the file, and a command had made new files since, said its
    /// commits were lost, though none was. Here the other is a follower, which copies it
    /// at its next look and stops.
    @Test func aLogAnotherCopiedIntoTheFileIsSaidToBeCopied() throws {
        try withSaleDatabase { path in
            let store = try SQLiteStore(path: path, busyTimeout: .seconds(5))
            _ = try Engine(store: store).book(BookingRequest(sale: SaleID("s1"), user: UserID(trusted: "alice"), ip: nil,
                                                             userAgent: nil, key: nil), clock: SystemClock().now())
            let watcher = try DataVersionWatcher(store.db)
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            defer { close(null) }
            let follower = try ChildProcess(flashsaleBinary, ["--db", path, "process", "s1", "--follow"], environment: [:],
                                            stdin: null, stdout: null, stderr: null)
            try #require(follower.waitUntilItWaitsForASignal())
            for suffix in ["-wal", "-shm"] { unlink(path + suffix) }
            #expect(follower.wait(within: 20) == .exit(73))
            try flashsale(["book", "s1", "bob"], database: path)
            #expect(Self.copied(by: watcher))
            #expect(try Self.users(of: path) == ["alice", "bob"])
        }
    }

    /// Found by probing: with the -shm alone removed, a command made a new one and shared
    /// the WAL through it; a commit the long-running process made before its next look
    /// went where its own index said the WAL ended, over the command's booking. Each
    /// commit of a watched database looks first, and is refused.
    @Test func aCommitAfterTheIndexWasReplacedIsRefused() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("alice")
        _ = try DataVersionWatcher(f.store.db)
        unlink(f.path + "-shm")
        try flashsale(["book", "s1", "bob"], database: f.path)
        #expect(throws: (any Error).self) { _ = try f.book("carol") }
        #expect(try Self.users(of: f.path) == ["alice", "bob"])
    }

    /// Found by probing: a command that is not watched (a `book` that waited for the lock,
    /// a `backup`) committed into the removed log, exit 0, its booking lost; and, closing
    /// last, copied that log into the file and removed by name the new log of a command
    /// that had committed since. It looks at the names before each commit and as it
    /// closes: the commit is refused, and the new log kept.
    @Test func aConnectionNotWatchedNeitherCommitsIntoARemovedLogNorRemovesTheNewOne() throws {
        try withSaleDatabase { path in
            // The only connection to the database in this process, so that its close is the last.
            var engine: Engine? = Engine(store: try SQLiteStore(path: path, busyTimeout: .seconds(5)))
            let request = { (user: String) in
                BookingRequest(sale: SaleID(trusted: "s1"), user: UserID(trusted: user), ip: nil, userAgent: nil, key: nil)
            }
            _ = try engine?.book(request("alice"), clock: T)
            for suffix in ["-wal", "-shm"] { unlink(path + suffix) }
            try flashsale(["book", "s1", "bob"], database: path)
            #expect(throws: (any Error).self) { _ = try engine?.book(request("carol"), clock: T) }
            engine = nil
            #expect(try Self.users(of: path) == ["bob"])
        }
    }

    /// The lock that keeps others from opening the database while the log is copied is
    /// the one SQLite's processes wait for: a command waits its busy timeout, then is told
    /// to retry (75).
    @Test func holdingOpenersOffMakesAnotherCommandWait() throws {
        let f = try StoreFixture()
        try f.sale()
        var file = stat()
        #expect(stat(f.path, &file) == 0)
        let descriptor = try #require(WALIndex.descriptor(of: file))
        #expect(DatabaseFileLocks.holdOpenersOff(descriptor))
        let refused = #expect(throws: FlashSaleError.self) {
            try flashsale(["--busy-timeout", "100ms", "book", "s1", "bob"], database: f.path)
        }
        #expect(refused?.message.contains("exit 75") == true, "\(String(describing: refused))")
        DatabaseFileLocks.letOpenersIn(descriptor)
        try flashsale(["book", "s1", "bob"], database: f.path)
        #expect(try f.counters().held == 1)
    }

    private static func copied(by watcher: DataVersionWatcher) -> Bool {
        var watcher = watcher
        do {
            _ = try watcher.hasChanged()
        } catch .logRemoved(let detail) as StoreFailure {
            return detail.contains("its log copied into the file first: no commit is lost")
        } catch {}
        return false
    }

    /// The users booked in s1, sorted, once `verify` finds the database whole.
    private static func users(of path: String) throws -> [String] {
        #expect(try runTool(flashsaleBinary, ["--db", path, "verify"], environment: [:]) == "ok\n")
        let listed = try runTool(flashsaleBinary, ["--db", path, "bookings", "s1", "--json"], environment: [:])
        let rows = try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: Any]] ?? []
        return rows.compactMap { $0["user"] as? String }.sorted()
    }

    /// Runs `body` with a database in a temporary directory (removed after) whose sale s1
    /// has 5 items, made by another process: nothing of this one has it open.
    private func withSaleDatabase(_ body: (String) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-journal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("test.db").path
        try flashsale(["create-sale", "s1", "--inventory", "5"], database: path)
        try body(path)
    }

    @discardableResult
    private func flashsale(_ arguments: [String], database: String) throws -> String {
        try runTool(flashsaleBinary, ["--db", database] + arguments, environment: [:])
    }
}
