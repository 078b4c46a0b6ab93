import Foundation
import Glibc

/// The `flashsale` binary `swift test` built beside this test bundle ($FLASHSALE_BIN overrides).
let flashsaleBinary: String = {
    if let path = ProcessInfo.processInfo.environment["FLASHSALE_BIN"] { return path }
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flashsale")
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside.path }
    // Under some runners argv[0] is a helper: fall back to the package's debug build.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/flashsale").path
}()

/// Where a program is installed, if it is (for `.enabled(if:)`).
func installed(_ name: String) -> String? {
    ["/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"].map { $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

let runningAsRoot = getuid() == 0

/// How a process ended.
enum Termination: Equatable {
    case exit(Int32)
    case signal(Int32)

    /// As a shell shows it: the exit status, or 128 + the signal.
    var status: Int32 {
        switch self {
        case .exit(let status): status
        case .signal(let signal): 128 + signal
        }
    }
}

// glibc functions that Swift's Glibc module leaves out (declared for _GNU_SOURCE only).
private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
private let addChdir: AddChdir? = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map { unsafeBitCast($0, to: AddChdir.self) }
private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
private let pipe2: Pipe2? = dlsym(nil, "pipe2").map { unsafeBitCast($0, to: Pipe2.self) }

/// A pipe made close-on-exec at once (pipe2), so that no process another test starts
/// meanwhile inherits an end: only the child it is handed to (dup2 clears the flag).
func closeOnExecPipe() throws -> (read: Int32, write: Int32) {
    var ends: [Int32] = [-1, -1]
    guard let pipe2 else { throw POSIXError(.ENOSYS) }
    guard pipe2(&ends, O_CLOEXEC) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    return (ends[0], ends[1])
}

/// The one way tests start a process. posix_spawn and waitpid, not Foundation's Process,
/// whose wait polls every 50 ms: about 40 ms a run against 1 ms here. The child starts
/// with every signal at its default action and none blocked, whatever this process set
/// (an in-process `events` ignores SIGPIPE), so a test of flashsale's own signal handling
/// sees what a shell would give it.
final class ChildProcess {
    let pid: pid_t
    private var ended: Termination?

    /// Starts `executable` with its standard streams on the given descriptors.
    init(_ executable: String, _ arguments: [String], environment: [String: String], directory: String? = nil,
         stdin: Int32, stdout: Int32, stderr: Int32) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (descriptor, target) in [(stdin, Int32(0)), (stdout, 1), (stderr, 2)] {
            posix_spawn_file_actions_adddup2(&actions, descriptor, target)
        }
        if let directory {
            guard let addChdir else { throw POSIXError(.ENOSYS) }
            try check(addChdir(&actions, directory))
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        var none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        try check(posix_spawn(&pid, executable, &actions, &attributes, argv, envp))
        self.pid = pid
    }

    /// A child never outlives its test.
    deinit {
        if ended == nil {
            kill(pid, SIGKILL)
            _ = wait()
        }
    }

    /// Waits for it to end.
    @discardableResult
    func wait() -> Termination {
        while ended == nil { reap(blocking: true) }
        return ended ?? .exit(-1)
    }

    /// Whether it still runs (reaping it if it has ended).
    var isRunning: Bool {
        if ended == nil { reap(blocking: false) }
        return ended == nil
    }

    private func reap(blocking: Bool) {
        var status: Int32 = 0
        switch waitpid(pid, &status, blocking ? 0 : WNOHANG) {
        case pid: ended = termination(status)
        case -1 where errno != EINTR: ended = .exit(-1)  // not a child of ours any more: nothing to wait for
        default: break
        }
    }

    func send(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// wait(2)'s status, decoded (WIFEXITED and friends are macros Swift cannot import).
    private func termination(_ status: Int32) -> Termination {
        status & 0x7F == 0 ? .exit((status >> 8) & 0xFF) : .signal(status & 0x7F)
    }
}

private func check(_ code: Int32) throws {
    guard code == 0 else { throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO) }
}

/// A process of a test left running in the sandbox, its stdout and stderr in files read
/// while it runs.
final class Background {
    let child: ChildProcess
    private let outPath: String
    private let errPath: String

    /// Starts `executable` in `box`'s directory with `input` on its standard input (nil:
    /// /dev/null) and stdout on `output` when given (then `stdout` stays empty).
    init(_ box: Sandbox, _ executable: String, _ arguments: [String], environment: [String: String],
         input: String? = nil, output: Int32? = nil) throws {
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
                                 stdin: stdin, stdout: output ?? out, stderr: err)
    }

    deinit {
        unlink(outPath)
        unlink(errPath)
    }

    // Decoded leniently: a kill can cut a character in two.
    var stdout: String { String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self) }
    var stderr: String { String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self) }

    /// Polls `condition` for at most 10 s while the process runs; false if it never held
    /// (checked once more if the process ended first).
    func waitUntil(_ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if try condition() { return true }
            if !child.isRunning { return try condition() }
            usleep(10_000)
        }
        return false
    }

    /// Waits up to 10 s for the process to end by itself; nil (and SIGKILL) if it does not.
    func waitForExit() -> Termination? {
        let deadline = Date().addingTimeInterval(10)
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
               input: String? = nil, output: Int32? = nil) throws -> Background {
        try Background(self, flashsaleBinary, (database ? ["--db", self.database] : []) + arguments,
                       environment: ["PATH": "/usr/bin:/bin"].merging(commandEnvironment(now: now, environment)) { _, new in new },
                       input: input, output: output)
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
