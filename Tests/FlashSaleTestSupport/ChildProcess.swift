import Foundation
import Glibc

/// The `flashsale` binary `swift test` built beside this test bundle ($FLASHSALE_BIN overrides).
public let flashsaleBinary: String = {
    if let path = ProcessInfo.processInfo.environment["FLASHSALE_BIN"] { return path }
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flashsale")
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside.path }
    // Under some runners argv[0] is a helper: fall back to the package's debug build.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/flashsale").path
}()

/// Where a program is installed, if it is (for `.enabled(if:)`).
public func installed(_ name: String) -> String? {
    ["/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"].map { $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

public let runningAsRoot = getuid() == 0

/// How a process ended.
public enum Termination: Equatable, Sendable {
    case exit(Int32)
    case signal(Int32)

    /// As a shell shows it: the exit status, or 128 + the signal.
    public var status: Int32 {
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
public func closeOnExecPipe() throws -> (read: Int32, write: Int32) {
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
public final class ChildProcess {
    public let pid: pid_t
    private var ended: Termination?

    /// Starts `executable` with its standard streams on the given descriptors.
    public init(_ executable: String, _ arguments: [String], environment: [String: String], directory: String? = nil,
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
    public func wait() -> Termination {
        while ended == nil { reap(blocking: true) }
        return ended ?? .exit(-1)
    }

    /// Waits up to `seconds` for it to end: nil, once it is killed, if it has not, so that
    /// a test waiting for an end that never comes fails rather than hangs the run.
    public func wait(within seconds: Double) -> Termination? {
        let deadline = Date().addingTimeInterval(seconds)
        while isRunning, Date() < deadline { usleep(5_000) }
        guard isRunning else { return wait() }
        send(SIGKILL)
        wait()
        return nil
    }

    /// Whether it still runs (reaping it if it has ended).
    public var isRunning: Bool {
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

    public func send(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Stops it (SIGSTOP) and returns once it is stopped: the signal is delivered when its
    /// threads next run, and a CI run saw a server look at its files once more after
    /// `kill` had returned.
    public func holdStill() {
        send(SIGSTOP)
        for _ in 0..<2_000 where isRunning {
            guard let status = ProcessStatus(of: pid) else { return }
            if status.isStopped { return }
            usleep(1_000)
        }
    }

    /// Stops it while its main thread waits for a stop signal for a while (a long-running
    /// command at rest), not between two such waits: a stop signal sent then is the first
    /// thing it sees once continued, as it polls for one before it goes on. Found by a CI
    /// run under load: a follower stopped just after its wait had timed out looked at its
    /// files first. False if it never was (it ended, or this machine cannot tell).
    public func holdStillWhileItWaitsForASignal() -> Bool {
        for _ in 0..<2_000 where isRunning {
            holdStill()
            if isWaitingForASignal { return true }
            send(SIGCONT)
            usleep(1_000)
        }
        return false
    }

    /// Returns once its main thread waits for a stop signal for a while: a long-running
    /// command has then made what it watches the database with (a CI run under load
    /// removed a follower's files after it had opened them and before it watched them).
    /// False if it never did within 10 s.
    public func waitUntilItWaitsForASignal() -> Bool {
        for _ in 0..<10_000 where isRunning {
            if isWaitingForASignal { return true }
            usleep(1_000)
        }
        return false
    }

    /// Whether its main thread is in `sigtimedwait` with a timeout: not the zero one with
    /// which it polls for a pending signal, after which it goes on to what the poll guards
    /// (a review: stopped there, it looked at its files before it took the signal). The
    /// timeout is read from its memory, at the address of the call's third argument.
    private var isWaitingForASignal: Bool {
        guard let call = try? String(contentsOfFile: "/proc/\(pid)/syscall", encoding: .utf8) else { return false }
        let fields = call.split(separator: " ")
        guard fields.count > 3, fields[0] == Self.sigtimedwait, fields[3].hasPrefix("0x"),
              let address = Int64(fields[3].dropFirst(2), radix: 16), address != 0 else { return false }
        let memory = open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC)
        guard memory >= 0 else { return false }
        defer { close(memory) }
        var timeout = timespec()
        guard pread(memory, &timeout, MemoryLayout<timespec>.size, off_t(address)) == MemoryLayout<timespec>.size else { return false }
        return timeout.tv_sec != 0 || timeout.tv_nsec != 0
    }

    /// `rt_sigtimedwait`'s number, as `/proc/PID/syscall` gives it.
    #if arch(x86_64)
    private static let sigtimedwait = "128"
    #elseif arch(arm64)
    private static let sigtimedwait = "137"
    #else
    private static let sigtimedwait = "unknown on this machine"
    #endif

    /// wait(2)'s status, decoded (WIFEXITED and friends are macros Swift cannot import).
    private func termination(_ status: Int32) -> Termination {
        status & 0x7F == 0 ? .exit((status >> 8) & 0xFF) : .signal(status & 0x7F)
    }
}

private func check(_ code: Int32) throws {
    guard code == 0 else { throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO) }
}
