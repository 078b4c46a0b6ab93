import Foundation
import Testing
@testable import FlashSaleCLI

/// A standard output on a full disk: the first write fails with ENOSPC, and every one after.
final class FullDiskSink: TextSink {
    private(set) var writeError: Int32?
    func write(_ text: String) { writeError = ENOSPC }
    func flush() {}
}

/// Runs a command line in this process with stdout on a full disk; returns its exit
/// status and its stderr.
private func runOnFullDisk(_ box: Sandbox, _ arguments: [String]) -> (status: Int32, stderr: String) {
    let err = Captured()
    let status = CLI.run(rawArguments: (["--db", box.database] + arguments).map { Array($0.utf8) },
                         environment: ["FLASHSALE_NOW": Array(T0.utf8)], stdin: 0, stdout: FullDiskSink(), stderr: err)
    return (status, err.text)
}

/// A sale with one hold (alice's) and one queued request.
private func saleWithAHold() throws -> Sandbox {
    let box = try Sandbox()
    try box.run(["create-sale", "s1", "--inventory", "20000"])
    try box.run(["book", "s1", "alice"])
    try box.run(["submit", "s1", "carol"])
    return box
}

private let fullDiskMessage = "flashsale: cannot write the output: No space left on device"

private let envPath = ["/usr/bin/env", "/bin/env"].first { FileManager.default.isExecutableFile(atPath: $0) }
/// GNU env (coreutils 8.31 and later) sets a signal's disposition for the command it runs.
private let envSetsSignals: Bool = {
    guard let envPath else { return false }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: envPath)
    process.arguments = ["--ignore-signal=PIPE", "true"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}()

/// Runs `env SIGNAL_OPTION flashsale --db DB ARGS...` with stdout a pipe whose reader has
/// already gone away.
private func runIntoClosedPipe(_ box: Sandbox, _ signalOption: String, _ arguments: [String]) throws
    -> (reason: Process.TerminationReason, status: Int32, stderr: String) {
    var ends: [Int32] = [0, 0]
    #expect(pipe(&ends) == 0)
    close(ends[0])
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try #require(envPath))
    process.arguments = [signalOption, flashsaleBinary, "--db", box.database] + arguments
    process.environment = ["PATH": "/usr/bin:/bin", "FLASHSALE_NOW": T0]
    let err = Pipe()
    process.standardOutput = FileHandle(fileDescriptor: ends[1], closeOnDealloc: true)
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationReason, process.terminationStatus, text)
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
        let result = runOnFullDisk(box, arguments)
        #expect(result.status == 74)
        #expect(result.stderr.hasPrefix(fullDiskMessage))
        #expect(result.stderr.filter { $0 == "\n" }.count == 1)
    }

    /// The hold is made before its id is lost: the message says so, and the user finds it.
    @Test func aBookWhoseIdCannotBePrintedSaysTheHoldWasCommitted() throws {
        let box = try saleWithAHold()
        let result = runOnFullDisk(box, ["book", "s1", "bob"])
        #expect(result.stderr == fullDiskMessage + "; its changes to the database are committed\n")
        #expect(try box.run(["bookings", "s1", "--user", "bob", "--json"]).jsonArray().count == 1)
        #expect(runOnFullDisk(box, ["bookings", "s1"]).stderr == fullDiskMessage + "\n")
    }

    /// A failure that came first keeps its exit code; with --json its message, which stdout
    /// could not take, goes to stderr.
    @Test func anEarlierErrorKeepsItsExitCode() throws {
        let box = try saleWithAHold()
        let text = runOnFullDisk(box, ["book", "nope", "bob"])
        #expect(text.status == 3)
        #expect(text.stderr.hasPrefix("flashsale: no sale nope"))
        let json = runOnFullDisk(box, ["book", "nope", "bob", "--json"])
        #expect(json.status == 3)
        #expect(json.stderr.hasPrefix("flashsale: no sale nope"))
    }

    /// With -q nothing is written, so nothing can fail.
    @Test func quietWritesNothingAndSucceeds() throws {
        let box = try saleWithAHold()
        let result = runOnFullDisk(box, ["-q", "book", "s1", "bob"])
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
    @Test(.enabled(if: FileManager.default.isWritableFile(atPath: "/dev/full")), arguments: binaryCommands)
    func outputToDevFullIsExit74(_ arguments: [String]) throws {
        let box = try saleWithAHold()
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let result = try box.run(arguments, output: full)
        #expect(result.status == 74)
        #expect(result.stderr.hasPrefix(fullDiskMessage))
    }

    /// `book --stream` stops at the first failed write: the group that could not be printed
    /// is committed, and no later line is read.
    @Test(.enabled(if: FileManager.default.isWritableFile(atPath: "/dev/full")))
    func aStreamStopsAtTheFirstFailedWrite() throws {
        let box = try saleWithAHold()
        let lines = "user\n" + (0...BookStream.groupSize).map { "u\($0)\n" }.joined()
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let result = try box.run(["book", "s1", "--stream"], input: lines, output: full)
        #expect(result.status == 74)
        #expect(result.stderr == fullDiskMessage + "; its changes to the database are committed\n")
        let status = try box.run(["status", "s1", "--json"]).json()
        #expect(status["held"] as? Int == 1 + BookStream.groupSize)
    }

    /// A closed standard output (`>&-`) is a failed write too.
    @Test func aClosedStdoutIsExit74() throws {
        let box = try saleWithAHold()
        let result = try box.shell(#""$FLASHSALE" --db "$DB" book s1 bob >&-; echo "exit $?""#)
        #expect(result.stdout == "exit 74\n")
        #expect(result.stderr.hasPrefix("flashsale: cannot write the output: Bad file descriptor"))
    }

    /// A reader that went away, with SIGPIPE ignored (as systemd services have it): the
    /// write fails with EPIPE, exit 74.
    @Test(.enabled(if: envSetsSignals),
          arguments: [["book", "s1", "bob"], ["submit", "s1", "dave"], ["status", "s1"], ["bookings", "s1"]])
    func aClosedPipeWithSIGPIPEIgnoredIsExit74(_ arguments: [String]) throws {
        let box = try saleWithAHold()
        let result = try runIntoClosedPipe(box, "--ignore-signal=PIPE", arguments)
        #expect(result.reason == .exit)
        #expect(result.status == 74)
        #expect(result.stderr.hasPrefix("flashsale: cannot write the output: Broken pipe"))
    }

    /// With SIGPIPE's default action flashsale dies of it, as Unix tools do (a shell shows
    /// 141); the hold was committed before.
    @Test(.enabled(if: envSetsSignals))
    func aClosedPipeWithSIGPIPEDefaultKillsTheProcess() throws {
        let box = try saleWithAHold()
        let result = try runIntoClosedPipe(box, "--default-signal=PIPE", ["book", "s1", "bob"])
        #expect(result.reason == .uncaughtSignal)
        #expect(result.status == SIGPIPE)
        #expect(try box.run(["bookings", "s1", "--user", "bob", "--json"]).jsonArray().count == 1)
    }
}
