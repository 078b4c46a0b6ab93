import Foundation
import Glibc
import FlashSaleTestSupport

/// A process of a test left running in the sandbox, its stdout and stderr in files read
/// while it runs.
final class Background {
    let child: ChildProcess
    private let outPath: String
    private let errPath: String

    /// Starts `executable` in `box`'s directory with `input` on its standard input (nil:
    /// /dev/null), stdout on `output` and stderr on `errors` when given (then `stdout` or
    /// `stderr` stays empty).
    init(_ box: Sandbox, _ executable: String, _ arguments: [String], environment: [String: String],
         input: String? = nil, output: Int32? = nil, errors: Int32? = nil) throws {
        let name = box.directory.appendingPathComponent("process-\(UUID().uuidString)").path
        outPath = name + ".out"
        errPath = name + ".err"
        let out = try openForWriting(outPath)
        defer { close(out) }
        let err = try openForWriting(errPath)
        defer { close(err) }
        let stdin = try box.openInput(input)
        defer { close(stdin) }
        child = try ChildProcess(executable, arguments, environment: environment, directory: box.directory.path,
                                 stdin: stdin, stdout: output ?? out, stderr: errors ?? err)
    }

    deinit {
        unlink(outPath)
        unlink(errPath)
    }

    // Decoded leniently: a kill can cut a character in two.
    var stdout: String { String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self) }
    var stderr: String { String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self) }

    /// Whether the process has `path` open (its descriptors in /proc).
    func hasOpen(_ path: String) -> Bool {
        let descriptors = "/proc/\(child.pid)/fd"
        return ((try? FileManager.default.contentsOfDirectory(atPath: descriptors)) ?? []).contains { descriptor in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(descriptors)/\(descriptor)")) == path
        }
    }

    /// Polls `condition` for at most `seconds` while the process runs; false if it never
    /// held (checked once more if the process ended first).
    func waitUntil(within seconds: TimeInterval = 10, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            if !child.isRunning { return try condition() }
            usleep(10_000)
        }
        return false
    }

    /// Waits up to `seconds` for the process to end by itself; nil (and SIGKILL) if it does not.
    func waitForExit(within seconds: TimeInterval = 10) -> Termination? {
        let deadline = Date().addingTimeInterval(seconds)
        while child.isRunning, Date() < deadline { usleep(10_000) }
        guard !child.isRunning else {
            child.send(SIGKILL)
            child.wait()
            return nil
        }
        return child.wait()
    }

    /// Sends `signal` (SIGTERM), then waits for the end.
    func stop(_ signal: Int32 = SIGTERM) -> Termination {
        child.send(signal)
        return child.wait()
    }

    /// Waits for the end; what it printed.
    func result() -> Result {
        Result(termination: child.wait(), stdout: stdout, stderr: stderr)
    }
}

private func openForWriting(_ path: String) throws -> Int32 {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    return descriptor
}

extension Sandbox {
    /// `run` as a process of its own, for what only a process shows: concurrency between
    /// processes, kills, signals, the real standard streams (/dev/full, a closed pipe),
    /// the process's working directory. stdout goes to `output` when given.
    @discardableResult
    func spawn(_ arguments: [String], now: String? = T0, database: Bool = true, environment: [String: String] = [:],
               input: String? = nil, output: Int32? = nil) throws -> Result {
        try start(arguments, now: now, database: database, environment: environment, input: input, output: output).result()
    }

    /// Starts `flashsale --db DATABASE ARGS...` and leaves it running.
    func start(_ arguments: [String], now: String? = T0, database: Bool = true, environment: [String: String] = [:],
               input: String? = nil, output: Int32? = nil, errors: Int32? = nil) throws -> Background {
        try Background(self, flashsaleBinary, (database ? ["--db", self.database] : []) + arguments,
                       environment: ["PATH": "/usr/bin:/bin"].merging(commandEnvironment(now: now, environment)) { _, new in new },
                       input: input, output: output, errors: errors)
    }

    /// Runs any program in the sandbox to its end.
    func execute(_ executable: String, _ arguments: [String], environment: [String: String] = ["PATH": "/usr/bin:/bin"],
                 input: String? = nil, output: Int32? = nil) throws -> Result {
        try Background(self, executable, arguments, environment: environment, input: input, output: output).result()
    }

    /// Runs a shell command line with `$FLASHSALE` and `$DB` set: for bytes that a Swift
    /// String cannot carry into argv (invalid UTF-8), and for what a shell sets up
    /// (`ulimit`, `>&-`, pipelines).
    func shell(_ script: String, now: String = T0) throws -> Result {
        try execute("/bin/sh", ["-c", script], environment: shellEnvironment(now: now))
    }

    /// `shell`, left running.
    func startShell(_ script: String, now: String? = T0) throws -> Background {
        try Background(self, "/bin/sh", ["-c", script], environment: shellEnvironment(now: now))
    }

    private func shellEnvironment(now: String?) -> [String: String] {
        ["FLASHSALE": flashsaleBinary, "DB": database, "PATH": "/usr/bin:/bin"].merging(commandEnvironment(now: now, [:])) { _, new in new }
    }

    /// Starts `flashsale --db DATABASE ARGS...` with `input` on stdin, kills it with SIGKILL
    /// after `killAfter` microseconds, and returns what it printed before dying. `now` fixes
    /// its clock (nil: the real clock).
    func runKilled(_ arguments: [String], inputPath: String? = nil, now: String? = nil, killAfter microseconds: UInt32) throws -> String {
        let input = try inputPath.map { try String(contentsOfFile: $0, encoding: .utf8) }
        let process = try start(arguments, now: now, input: input)
        usleep(microseconds)
        _ = process.stop(SIGKILL)
        return process.stdout
    }
}
