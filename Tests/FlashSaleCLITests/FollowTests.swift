import Foundation
import Testing
@testable import FlashSaleStore

@Suite struct FollowTests {
    /// `process --follow` decides requests submitted while it runs, and on SIGTERM finishes
    /// and exits 0 with its summary.
    @Test func followDecidesNewRequestsUntilTerminated() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"], now: nil)
        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: flashsaleBinary)
        follower.arguments = ["--db", box.database, "process", "--follow"]
        follower.environment = ["PATH": "/usr/bin:/bin"]
        let output = Pipe()
        follower.standardOutput = output
        follower.standardError = FileHandle.nullDevice
        try follower.run()
        defer { if follower.isRunning { kill(follower.processIdentifier, SIGKILL) } }

        let id = try box.run(["submit", "s1", "alice"], now: nil).line
        // Wait for the follower to decide it: it polls ten times a second.
        let deadline = Date().addingTimeInterval(10)
        var status = "queued"
        while status == "queued", Date() < deadline {
            status = try box.run(["request", id, "--json"], now: nil).json()["status"] as? String ?? "?"
            if status == "queued" { usleep(20_000) }
        }
        #expect(status == "accepted")

        follower.terminate()  // SIGTERM
        follower.waitUntilExit()
        #expect(follower.terminationReason == .exit)
        #expect(follower.terminationStatus == 0)
        let summary = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(summary == "1 accepted, 0 rejected\n")
    }
}

/// A follower that another process keeps from the database past `--busy-timeout`: it waits
/// and goes on, saying so on stderr, and never exits 75.
@Suite struct FollowBusyTests {
    static let waiting = "flashsale: another process has held the database longer than --busy-timeout; waiting for it\n"
    static let resumed = "flashsale: the database is free again; going on\n"

    @Test func processFollowWaitsOutAWriteLockAndDecidesAfterIt() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let id = try box.run(["submit", "s1", "alice"]).line
        let holder = try Connection(path: box.database, busyTimeout: .seconds(0))
        try holder.execute("BEGIN IMMEDIATE")
        let follower = try Follower(box, ["--busy-timeout", "100ms", "process", "--follow"])
        #expect(try follower.waitForStderr(Self.waiting), "stderr: \(follower.stderr)")
        try holder.execute("ROLLBACK")
        #expect(try follower.waitUntil { try box.run(["request", id, "--json"]).json()["status"] as? String == "accepted" })
        #expect(try follower.waitForStderr(Self.waiting + Self.resumed), "stderr: \(follower.stderr)")
        let (status, stdout) = follower.terminate()
        #expect(status == 0)
        #expect(stdout == "1 accepted, 0 rejected\n")
    }

    @Test func aStopSignalEndsTheWaitForALock() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try box.run(["submit", "s1", "alice"])
        let holder = try Connection(path: box.database, busyTimeout: .seconds(0))
        try holder.execute("BEGIN IMMEDIATE")
        defer { try? holder.execute("ROLLBACK") }
        let follower = try Follower(box, ["--busy-timeout", "100ms", "process", "--follow"])
        #expect(try follower.waitForStderr(Self.waiting), "stderr: \(follower.stderr)")
        let (status, stdout) = follower.terminate()
        #expect(status == 0)
        #expect(stdout == "0 accepted, 0 rejected\n")
    }

    /// Only a follower waits: a single run is exit 75, as the contract says.
    @Test func processWithoutFollowIsExit75WhenBusy() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try box.run(["submit", "s1", "alice"])
        let holder = try Connection(path: box.database, busyTimeout: .seconds(0))
        try holder.execute("BEGIN IMMEDIATE")
        defer { try? holder.execute("ROLLBACK") }
        #expect(try box.run(["--busy-timeout", "100ms", "process"]).status == 75)
    }

    /// In WAL mode a reader waits for nobody but a process that rebuilds the WAL index
    /// (recovery, after a crash): what an events follower must survive all the same.
    @Test func eventsFollowWaitsOutAWALRecoveryAndPrintsAfterIt() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let follower = try Follower(box, ["--busy-timeout", "100ms", "events", "--follow"])
        #expect(try follower.waitUntil { follower.stdout.contains("sale_created") })
        let recovery = try WALRecovery(of: box.database)
        #expect(try follower.waitForStderr(Self.waiting), "stderr: \(follower.stderr)")
        recovery.end()
        try box.run(["create-sale", "s2", "--inventory", "1"])
        #expect(try follower.waitUntil { follower.stdout.contains("\"sale\":\"s2\"") })
        #expect(try follower.waitForStderr(Self.waiting + Self.resumed), "stderr: \(follower.stderr)")
        let (status, _) = follower.terminate()
        #expect(status == 0)
    }
}

/// Looks to other processes like one recovering the database's WAL index: it holds the
/// index's write and recover locks, and the index header is torn (its two copies differ),
/// so a reader must wait for the recovery (SQLITE_BUSY_RECOVERY). Once the locks are
/// released, the next reader recovers the index itself. Offsets are those of SQLite's
/// wal-index format (wal.c): header copies at 0 and 48, locks from byte 120.
final class WALRecovery {
    private let descriptor: Int32

    init(of database: String) throws {
        descriptor = open(database + "-shm", O_RDWR)
        guard descriptor >= 0 else { throw POSIXError(.ENOENT) }
        for byte in [120, 122] {  // WAL_WRITE_LOCK, WAL_RECOVER_LOCK
            var lock = flock(l_type: Int16(F_WRLCK), l_whence: Int16(SEEK_SET), l_start: off_t(byte), l_len: 1, l_pid: 0)
            guard fcntl(descriptor, F_SETLK, &lock) == 0 else { throw POSIXError(.EAGAIN) }
        }
        var version: UInt8 = 0
        guard pread(descriptor, &version, 1, 8) == 1 else { throw POSIXError(.EIO) }
        version ^= 0xFF
        guard pwrite(descriptor, &version, 1, 8) == 1 else { throw POSIXError(.EIO) }
    }

    /// Releases the locks (closing the file does).
    func end() {
        close(descriptor)
    }
}

/// `flashsale --db DATABASE ARGS...` running in the background at T0, its output in files.
final class Follower {
    private let process = Process()
    private let outURL: URL
    private let errURL: URL

    init(_ box: Sandbox, _ arguments: [String]) throws {
        outURL = box.directory.appendingPathComponent("follower-\(UUID().uuidString).out")
        errURL = box.directory.appendingPathComponent("follower-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: flashsaleBinary)
        process.arguments = ["--db", box.database] + arguments
        process.environment = ["PATH": "/usr/bin:/bin", "FLASHSALE_NOW": T0]
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    var stdout: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }

    /// Polls `condition` while the follower runs, for at most 10 s; false if it never held
    /// or the follower exited first.
    func waitUntil(_ condition: () throws -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if try condition() { return true }
            if !process.isRunning { return false }
            usleep(20_000)
        }
        return false
    }

    func waitForStderr(_ expected: String) throws -> Bool {
        try waitUntil { stderr == expected }
    }

    /// SIGTERM, then its exit status and what it printed.
    func terminate() -> (Int32, String) {
        process.terminate()
        process.waitUntilExit()
        return (process.terminationReason == .exit ? process.terminationStatus : -1, stdout)
    }
}
