import Foundation
import Testing
@testable import FlashSaleCLI
import FlashSaleTestSupport

/// A standard output on a full disk: the first write fails with ENOSPC, and every one after.
final class FullDiskSink: TextSink {
    private(set) var writeError: Int32?
    func write(_ text: String) { writeError = ENOSPC }
    func flush() {}
    var endsMidLine: Bool { false }
}

/// Runs a command line in this process with stdout on a full disk; returns its exit
/// status and its stderr.
private func runOnFullDisk(_ box: Sandbox, _ arguments: [String]) throws -> (status: Int32, stderr: String) {
    let result = try box.run(arguments, stdout: FullDiskSink())
    return (result.status, result.stderr)
}

/// A sale with one hold (alice's) and one queued request.
private func saleWithAHold(on store: TestStore = .sqlite) throws -> Sandbox {
    let box = try Sandbox(store)
    try box.run(["create-sale", "s1", "--inventory", "20000"])
    try box.run(["book", "s1", "alice"])
    try box.run(["submit", "s1", "carol"])
    return box
}

private let fullDiskMessage = "flashsale: cannot write the output: No space left on device"

private let envPath = installed("env")
/// GNU env (coreutils 8.31 and later) sets a signal's disposition for the command it runs.
private let envSetsSignals: Bool = {
    guard let envPath, let box = try? Sandbox() else { return false }
    return (try? box.execute(envPath, ["--ignore-signal=PIPE", "true"]))?.status == 0
}()

/// /dev/full, whose every write fails with ENOSPC.
private let devFull = "/dev/full"

/// Runs `env SIGNAL_OPTION flashsale --db DB ARGS...` with stdout a pipe whose reader has
/// already gone away.
private func runIntoClosedPipe(_ box: Sandbox, _ signalOption: String, _ arguments: [String],
                               environment: [String: String] = [:]) throws -> Result {
    let ends = try closeOnExecPipe()
    close(ends.read)
    defer { close(ends.write) }
    return try box.execute(try #require(envPath), [signalOption, flashsaleBinary, "--db", box.database] + arguments,
                           environment: ["PATH": "/usr/bin:/bin", "FLASHSALE_NOW": T0].merging(environment) { $1 },
                           output: ends.write)
}

/// A descriptor writing to /dev/full.
private func openDevFull() throws -> Int32 {
    let descriptor = open(devFull, O_WRONLY | O_CLOEXEC)
    try #require(descriptor >= 0)
    return descriptor
}

@Suite struct UnwritableOutputTests {
    static let commands: [[String]] = [
        ["book", "s1", "bob"],
        ["book", "s1", "bob", "--json"],
        ["submit", "s1", "dave"],
        ["status", "s1"],
        ["status", "s1", "--json"],
        ["sales"],
        ["bookings", "s1"],
        ["blocks"],
        ["request", "1"],
        ["sweep"],
        ["verify"],
        ["--version"],
        ["help"],
        ["book", "--help"],
    ]

    /// Whatever the command, output that cannot be written is exit 74 and one line on
    /// stderr, also with --json, whose error object stdout could not take either.
    @Test(arguments: commands)
    func outputOnAFullDiskIsExit74WithAMessage(_ arguments: [String]) throws {
        let box = try saleWithAHold()
        let result = try runOnFullDisk(box, arguments)
        #expect(result.status == 74)
        #expect(result.stderr.hasPrefix(fullDiskMessage))
        #expect(result.stderr.filter { $0 == "\n" }.count == 1)
    }

    /// The hold is made before its id is lost: the message says so, and the user finds it.
    @Test func aBookWhoseIdCannotBePrintedSaysTheHoldWasCommitted() throws {
        let box = try saleWithAHold()
        let result = try runOnFullDisk(box, ["book", "s1", "bob"])
        #expect(result.stderr == fullDiskMessage + "; its changes to the database are committed\n")
        #expect(try box.run(["bookings", "s1", "--user", "bob", "--json"]).jsonArray().count == 1)
        #expect(try runOnFullDisk(box, ["bookings", "s1"]).stderr == fullDiskMessage + "\n")
    }

    /// Found by probing: on PostgreSQL an empty `submit --file` said its changes were
    /// committed, its empty tally of attempts taken for a write. It changed nothing.
    @Test(.enabled(if: FileManager.default.isWritableFile(atPath: devFull), "needs /dev/full"), arguments: commandLineStores)
    func anEmptySubmitFileWhoseReportIsLostSaysNoChange(on store: TestStore) throws {
        let box = try saleWithAHold(on: store)
        let full = try openDevFull()
        defer { close(full) }
        let result = try box.spawn(["submit", "s1", "--file", "-"], input: "", output: full)
        #expect(result.status == 74)
        #expect(result.stderr == fullDiskMessage + "\n")
    }

    /// Found by probing: a backup or an init whose output could not be written said nothing
    /// of the file it had made, and a script trying again got "already exists" (exit 4).
    @Test func aBackupOrInitWhoseOutputIsLostSaysWhatItMade() throws {
        let box = try saleWithAHold()
        let copy = box.directory.appendingPathComponent("copy.db").path
        #expect(try runOnFullDisk(box, ["backup", copy]).stderr == fullDiskMessage + "; the backup \(copy) is whole\n")
        #expect(try box.run(["--db", copy, "verify"], database: false).status == 0)
        let made = box.directory.appendingPathComponent("new.db").path
        let initialized = try box.run(["--db", made, "init"], database: false, stdout: FullDiskSink())
        #expect(initialized.stderr == fullDiskMessage + "; the database is ready\n")
        #expect(try box.run(["--db", made, "verify"], database: false).status == 0)
    }

    /// A failure that came first keeps its exit code; with --json its message, which stdout
    /// could not take, goes to stderr.
    @Test func anEarlierErrorKeepsItsExitCode() throws {
        let box = try saleWithAHold()
        let text = try runOnFullDisk(box, ["book", "nope", "bob"])
        #expect(text.status == 3)
        #expect(text.stderr.hasPrefix("flashsale: no sale nope"))
        let json = try runOnFullDisk(box, ["book", "nope", "bob", "--json"])
        #expect(json.status == 3)
        #expect(json.stderr.hasPrefix("flashsale: no sale nope"))
    }

    /// With -q nothing is written, so nothing can fail.
    @Test func quietWritesNothingAndSucceeds() throws {
        let box = try saleWithAHold()
        let result = try runOnFullDisk(box, ["-q", "book", "s1", "bob"])
        #expect(result.status == 0)
        #expect(result.stderr == "")
    }

    static let binaryCommands: [[String]] = [
        ["book", "s1", "bob"],
        ["book", "s1", "bob", "--json"],
        ["submit", "s1", "dave"],
        ["status", "s1"],
        ["bookings", "s1"],
        ["export", "s1"],
        ["metrics"],
        ["events"],
        ["--version"],
    ]

    /// The same through the real binary, stdout on /dev/full.
    @Test(.enabled(if: FileManager.default.isWritableFile(atPath: devFull), "needs /dev/full"), arguments: binaryCommands)
    func outputToDevFullIsExit74(_ arguments: [String]) throws {
        let box = try saleWithAHold()
        let full = try openDevFull()
        defer { close(full) }
        let result = try box.spawn(arguments, output: full)
        #expect(result.status == 74)
        #expect(result.stderr.hasPrefix(fullDiskMessage))
    }

    /// `book --stream` stops at the first failed write: the group that could not be printed
    /// is committed, and no later line is read.
    @Test(.enabled(if: FileManager.default.isWritableFile(atPath: devFull), "needs /dev/full"))
    func aStreamStopsAtTheFirstFailedWrite() throws {
        let box = try saleWithAHold()
        let lines = "user\n" + (0...BookStream.groupSize).map { "u\($0)\n" }.joined()
        let full = try openDevFull()
        defer { close(full) }
        let result = try box.spawn(["book", "s1", "--stream"], input: lines, output: full)
        #expect(result.status == 74)
        #expect(result.stderr == fullDiskMessage + "; its changes to the database are committed\n")
        let status = try box.run(["status", "s1", "--json"]).json()
        #expect(status["held"] as? Int == 1 + BookStream.groupSize)
    }

    /// A closed standard output (`>&-`) is a failed write too, in the same words on both
    /// stores: on PostgreSQL flashsale-serve's event loop took descriptor 1 ("Invalid
    /// argument"), and with stdin closed too its eventfd, which a write could go to unseen.
    @Test(arguments: commandLineStores, [">&-", "<&- >&-"])
    func aClosedStdoutIsExit74(on store: TestStore, closing: String) throws {
        let box = try saleWithAHold(on: store)
        let result = try box.shell(#""$FLASHSALE" --db "$DB" book s1 bob "# + closing + #"; echo "exit $?""#)
        #expect(result.stdout == "exit 74\n")
        #expect(result.stderr.hasPrefix("flashsale: cannot write the output: Bad file descriptor"), "\(result.stderr)")
    }

    /// A reader that went away, with SIGPIPE ignored (as systemd services have it): the
    /// write fails with EPIPE, exit 74.
    @Test(.enabled(if: envSetsSignals, "needs GNU env 8.31 or later, to set SIGPIPE's disposition"),
          arguments: commandLineStores, [["book", "s1", "bob"], ["submit", "s1", "dave"], ["status", "s1"], ["bookings", "s1"]])
    func aClosedPipeWithSIGPIPEIgnoredIsExit74(on store: TestStore, _ arguments: [String]) throws {
        let box = try saleWithAHold(on: store)
        let result = try runIntoClosedPipe(box, "--ignore-signal=PIPE", arguments)
        #expect(result.termination == .exit(74))
        #expect(result.stderr.hasPrefix("flashsale: cannot write the output: Broken pipe"))
    }

    /// With SIGPIPE's default action flashsale dies of it, as Unix tools do (a shell shows
    /// 141); the hold was committed before. On PostgreSQL too, where the command runs in
    /// flashsale-serve, whose SwiftNIO ignores SIGPIPE: it said exit 74 there, and for a
    /// decline's error object (`--json`) it said the error and exited with its code.
    @Test(.enabled(if: envSetsSignals, "needs GNU env 8.31 or later, to set SIGPIPE's disposition"),
          arguments: commandLineStores, [["book", "s1", "bob"], ["--json", "book", "s1", "alice"]])
    func aClosedPipeWithSIGPIPEDefaultKillsTheProcess(on store: TestStore, _ arguments: [String]) throws {
        let box = try saleWithAHold(on: store)
        let result = try runIntoClosedPipe(box, "--default-signal=PIPE", arguments)
        #expect(result.termination == .signal(SIGPIPE), "\(result.stderr)")
        #expect(result.stderr.isEmpty)
        // bob's hold was made; alice, at her limit, keeps the one she had.
        #expect(try box.run(["bookings", "s1", "--user", arguments[arguments.count - 1], "--json"]).jsonArray().count == 1)
    }

    /// Found by probing: `rehearse | true` died of SIGPIPE at its report, before it removed
    /// its scratch directory (its children's logs), which stayed in $TMPDIR.
    @Test(.enabled(if: envSetsSignals, "needs GNU env 8.31 or later, to set SIGPIPE's disposition"))
    func aRehearsalKilledBySIGPIPELeavesNoScratchFiles() throws {
        let box = try Sandbox()
        let scratch = box.directory.appendingPathComponent("tmp").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let result = try runIntoClosedPipe(box, "--default-signal=PIPE", ["rehearse", "--buyers", "50", "--inventory", "5"],
                                           environment: ["TMPDIR": scratch])
        #expect(result.termination == .signal(SIGPIPE), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch).isEmpty)
    }
}
