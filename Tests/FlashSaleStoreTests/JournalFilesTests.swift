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
        var watcher = try DataVersionWatcher(f.store.db)
        for suffix in ["-wal", "-shm"] { unlink(f.path + suffix) }
        #expect {
            _ = try watcher.hasChanged()
        } throws: { error in
            guard case .logRemoved(let detail)? = error as? StoreFailure else { return false }
            return detail.contains("its log copied into the file first: nothing is lost")
        }
        try flashsale(["book", "s1", "bob"], database: f.path)
        let bookings = try flashsale(["bookings", "s1", "--json"], database: f.path)
        #expect(bookings.contains(#""user":"alice""#) && bookings.contains(#""user":"bob""#), "\(bookings)")
        #expect(try flashsale(["verify"], database: f.path) == "ok\n")
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

    @discardableResult
    private func flashsale(_ arguments: [String], database: String) throws -> String {
        try runTool(flashsaleBinary, ["--db", database] + arguments, environment: [:])
    }
}
