import Foundation
import Testing
import FlashSaleTestSupport
@testable import FlashSaleCLI
@testable import FlashSaleEngine
@testable import FlashSaleStore
import FlashSaleCore

@Suite struct SweepCommandTests {
    /// Busy after two batches committed: exit 75, and the message says what is done.
    @Test func aSweepStoppedHalfWaySaysWhatItExpiredBefore() throws {
        let busy = SQLiteError(code: 5, connection: nil)
        let stopped = Engine.SweepInterrupted(done: Engine.SweepReport([SaleID(trusted: "s1"): 10_000], named: nil), cause: busy)
        let error = SweepCommand.interruption(stopped)
        #expect(error.exitCode == 75)
        #expect(error.message == "the database is locked by another process; retry, or raise --busy-timeout; "
                    + "10000 overdue holds were expired before that and stay expired: run sweep again for the rest")
    }

    /// Found by probing: a sweep stopped by SIGINT ended silent, its finished batches
    /// committed. It finishes the batch under way, says how many its batches expired, and
    /// exits 130; the database holds exactly those expired. With --json, stdout holds the
    /// error object too, as for any failure (it held nothing: found by probing).
    @Test(arguments: [false, true])
    func aSweepStoppedBySIGINTSaysWhatItsBatchesExpired(json: Bool) throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "200000", "--hold", "1m"])
        let lines = (0..<200_000).map { "{\"user\":\"u\($0)\"}" }.joined(separator: "\n")
        #expect(try box.run(["book", "s1", "--stream", "-q"], input: lines).status == 0)
        let later = "2026-11-24T16:00:00Z"
        let sweep = try box.start((json ? ["--json"] : []) + ["sweep", "--busy-timeout", "60s"], now: later)
        // Once its first batch is committed, the write lock is taken from it (it sweeps 200,000
        // in well under a second), and SIGINT sent while it waits for the lock.
        let started = try sweep.waitUntil(within: 60) { try box.count("SELECT count(*) FROM booking WHERE status = 'expired'") > 0 }
        try #require(started, "the sweep expired nothing: \(sweep.stderr)")
        let holder = try Connection(path: box.database, busyTimeout: .seconds(60))
        try holder.execute("BEGIN IMMEDIATE")
        let before = try box.count("SELECT count(*) FROM booking WHERE status = 'expired'")
        try #require(before < 200_000, "the sweep ended before the lock was taken from it")
        sweep.child.send(SIGINT)
        try holder.execute("ROLLBACK")
        let ended = sweep.child.wait()
        #expect(ended == .exit(130), "\(sweep.stderr)")
        let expired = try box.count("SELECT count(*) FROM booking WHERE status = 'expired'")
        #expect(expired < 200_000)
        let said = "sweep interrupted; \(expired) overdue holds were expired before that and stay expired: run sweep again for the rest"
        #expect(sweep.stderr.hasSuffix("flashsale: \(said)\n"), "\(sweep.stderr)")
        #expect(sweep.stdout == (json ? "{\"error\":{\"code\":\"interrupted\",\"message\":\"\(said)\"}}\n" : ""))
        #expect(try box.run(["sweep"], now: later).stdout == "\(200_000 - expired)\n")
    }

    /// Found by probing: a stop signal while sweep waited for another process's write lock
    /// was heeded only once the lock came, or the busy timeout ran out (75). With no batch
    /// under way it stops at once, having expired nothing.
    @Test func aSweepWaitingForALockStopsAtOnce() throws {
        let (box, holder) = try oneHoldUnderAnotherProcesssWriteLock()
        defer { try? holder.execute("ROLLBACK") }
        let sweep = try box.start(["sweep", "--busy-timeout", "1h"], now: "2026-11-24T16:00:00Z")
        // Its stop signals are taken before it opens the database.
        try #require(sweep.waitUntil(within: 30) { sweep.hasOpen(box.database) }, "\(sweep.stderr)")
        sweep.child.send(SIGTERM)
        #expect(sweep.waitForExit(within: 20) == .exit(130), "\(sweep.stderr)")
        #expect(sweep.stderr == "flashsale: sweep interrupted; no overdue hold was expired: run sweep again\n")
        try holder.execute("ROLLBACK")
        #expect(try box.count("SELECT count(*) FROM booking WHERE status = 'held'") == 1)
    }

    /// Found by probing: a sweep took the write lock once more after its last full batch,
    /// to find nothing, and so failed busy (75) beside another writer after expiring every
    /// overdue hold; an idle sweep from cron failed the same way. It looks without the lock
    /// first: nothing overdue, no lock asked for.
    @Test func aSweepWithNothingOverdueAsksForNoWriteLock() throws {
        let (box, holder) = try oneHoldUnderAnotherProcesssWriteLock()
        defer { try? holder.execute("ROLLBACK") }
        let idle = try box.run(["--busy-timeout", "50ms", "sweep"])
        #expect(idle.status == 0 && idle.stdout == "0\n", "\(idle.stderr)")
        // An overdue hold is work, which waits for the lock as before.
        #expect(try box.run(["--busy-timeout", "50ms", "sweep"], now: "2026-11-24T15:05:00Z").status == 75)
    }

    /// A sale with one hold of 1 minute, made at T0, and a connection that holds the
    /// database's write lock (roll it back when done).
    private func oneHoldUnderAnotherProcesssWriteLock() throws -> (Sandbox, Connection) {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5", "--hold", "1m"])
        #expect(try box.run(["book", "s1", "u1"]).status == 0)
        let holder = try Connection(path: box.database, busyTimeout: .seconds(0))
        try holder.execute("BEGIN IMMEDIATE")
        return (box, holder)
    }

    @Test func progressWithATotalShowsTheShareTheRateAndTheTimeLeft() {
        #expect(Progress.line(label: "expired", count: 250_000, total: 1_000_000, seconds: 5)
                    == "expired 250000 of 1000000 (25%), 50000/s, 15s left")
        #expect(Progress.line(label: "expired", count: 0, total: 1_000_000, seconds: 0) == "expired 0 of 1000000 (0%)")
        #expect(Progress.line(label: "read", count: 300_000, total: nil, seconds: 2) == "read 300000")
    }
}

/// `sweep` killed with SIGKILL at random moments over several batches and two sales.
@Suite(.serialized) struct SweepCrashTests {
    /// 12,500 overdue holds of two sales, three batches: s1's first 5,000, then s2's, then
    /// s1's last 2,500. Each kill, on a fresh copy, leaves whole batches: a run from the
    /// front of the line, a number of batches long; the next sweep takes exactly the rest,
    /// each hold once.
    @Test func sweepKilledMidBatchLeavesWholeBatchesOnly() throws {
        var random = SplitMix64(seed: 31)
        let box = try Sandbox()
        let batch = Engine.defaultSweepBatch
        try box.run(["create-sale", "s1", "--inventory", "7500", "--hold", "1m"])
        try box.run(["create-sale", "s2", "--inventory", "5000", "--hold", "1m"])
        for (sale, users, at) in [("s1", 0..<5000, "15:00:00"), ("s2", 0..<5000, "15:00:10"), ("s1", 5000..<7500, "15:00:20")] {
            let lines = users.map { "{\"user\":\"u\($0)\"}" }.joined(separator: "\n")
            #expect(try box.run(["book", sale, "--stream"], now: "2026-11-24T\(at)Z", input: lines).status == 0)
        }
        // The last connection closed, so the file holds everything (no -wal to copy).
        let prepared = box.directory.appendingPathComponent("prepared.db")
        try FileManager.default.copyItem(atPath: box.database, toPath: prepared.path)
        let later = "2026-11-24T15:05:00Z"
        for _ in 0..<6 {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: box.database + suffix) }
            try FileManager.default.copyItem(atPath: prepared.path, toPath: box.database)
            // A debug build's sweep of these takes about 60 ms.
            _ = try box.runKilled(["sweep"], now: later, killAfter: UInt32.random(in: 5_000...90_000, using: &random))
            let expired = try box.count("SELECT count(*) FROM booking WHERE status = 'expired'")
            #expect(expired % batch == 0 || expired == 12_500, "\(expired) expired")
            let outOfLine = try box.count("""
                SELECT count(*) FROM booking WHERE status = 'expired' AND (expires_at, rowid) >
                    (SELECT expires_at, rowid FROM booking WHERE status = 'held' ORDER BY expires_at, rowid LIMIT 1)
                """)
            #expect(outOfLine == 0)
            #expect(try box.count("SELECT count(*) FROM event WHERE kind = 'expired'") == expired)
            #expect(try box.run(["sweep"], now: later).line == String(12_500 - expired))
            #expect(try box.count("SELECT count(*) FROM event WHERE kind = 'expired'") == 12_500)
            #expect(try box.run(["verify"], now: later).stdout == "ok\n")
        }
        #expect(try recount(box.database).violations.isEmpty)
    }
}
