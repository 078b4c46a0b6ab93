import CLinux
import FlashSaleCore
import Glibc

/// The processes and files of one rehearsal. SIGINT and SIGTERM are blocked in every thread
/// and waited for by a thread of their own, which ends the children, removes the scratch
/// files and exits 130, whatever the rehearsal was doing: a rehearsal leaves nothing behind.
final class RehearsalChildren: @unchecked Sendable {
    /// This binary, whose commands the children are.
    let executable: String
    /// The scratch directory: the database unless --db, the children's logs.
    let directory: String
    /// Whether the scratch database goes with the directory.
    var removesDirectory = true
    /// Whether the rehearsal reports in JSON (`--json`): so does its interruption.
    var reportsJSON = false
    /// The rehearsal's database, given to each child in its environment as `FLASHSALE_DB`,
    /// which only the user (and root) can read, rather than as `--db`, which every user of
    /// the host reads in ps(1): a URL's password too (found by probing).
    var database: String?
    /// Where the rehearsal's sale stays once made (the database given, or the scratch one
    /// kept): an interruption names it, as a failure does.
    var saleStaysIn: String? {
        get { locked { staysIn } }
        set { locked { staysIn = newValue } }
    }
    private var staysIn: String?
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var running: Set<pid_t> = []
    private var interrupted = false
    private var reporting = false
    private let environment: [String]

    /// Its scratch directory made in `base`.
    init(executable: String, scratchIn base: String) throws(FlashSaleError) {
        self.executable = executable
        // Blocked before the scratch directory is made: a signal between the two ended the
        // process by its default action, the directory left behind (found by probing).
        let signals = StopSignals()
        var template = Array((base + "/flashsale-rehearsal-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw .cantOpen("cannot make a scratch directory in '\(base)': \(String(cString: strerror(errno)))")
        }
        directory = String(cString: made)
        pthread_mutex_init(mutex, nil)
        // The children's clock and database are the rehearsal's, given to each.
        var inherited: [String] = []
        var entry = environ
        while let text = entry.pointee {
            let variable = String(cString: text)
            if !["FLASHSALE_NOW=", "FLASHSALE_DB=", RehearsalChildren.parentVariable + "="].contains(where: variable.hasPrefix) {
                inherited.append(variable)
            }
            entry += 1
        }
        environment = inherited + ["\(RehearsalChildren.parentVariable)=\(getpid())"]
        // Threads made later inherit the block; this one waits for them.
        signals.stopAtFirstChance { [self] in stopUnlessReporting() }
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Names the rehearsal's pid in its children's environment (`stopWithRehearsal`).
    static let parentVariable = "FLASHSALE_REHEARSAL_PID"

    /// In a rehearsal's child: SIGTERM from the kernel when the rehearsal ends, the signal
    /// each command stops on as when interrupted. A rehearsal killed by SIGKILL cannot end
    /// its children itself, and its `serve` would listen forever. Asked of the thread that
    /// spawns them, the one that runs the rehearsal to its end.
    static func stopWithRehearsal() {
        guard let value = getenv(parentVariable), let parent = pid_t(String(cString: value)) else { return }
        _ = clinux_signal_when_parent_ends(SIGTERM)
        // The rehearsal ended before the request was made: the kernel will send nothing.
        if getppid() != parent { kill(getpid(), SIGTERM) }
    }

    /// Runs `executable ARGUMENTS` with the clock at `now`, standard input from `input`
    /// (nil: /dev/null), standard output to `output` (nil: /dev/null), standard error to a
    /// log in the scratch directory, and returns its pid.
    func start(_ arguments: [String], now: Instant, input: Int32? = nil, output: Int32? = nil,
               log: String) throws(FlashSaleError) -> pid_t {
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        let errors = open(logPath(log), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { close(null); close(errors) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input ?? null, 0)
        posix_spawn_file_actions_adddup2(&actions, output ?? null, 1)
        posix_spawn_file_actions_adddup2(&actions, errors, 2)
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
        let variables = environment + ["FLASHSALE_NOW=\(now)"] + (database.map { ["FLASHSALE_DB=\($0)"] } ?? [])
        let envp = variables.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let status: Int32 = locked {
            guard !interrupted else { return EINTR }
            let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            if status == 0 { running.insert(pid) }
            return status
        }
        guard status == 0 else {
            throw .cantOpen("cannot run '\(executable)': \(String(cString: strerror(status)))")
        }
        return pid
    }

    /// Waits for `pid`; nil while it runs when `block` is false. Its exit status, or 128 + its signal.
    func wait(_ pid: pid_t, block: Bool = true) -> Int32? {
        var status: Int32 = 0
        var result: pid_t
        repeat {
            result = waitpid(pid, &status, block ? 0 : WNOHANG)
        } while result < 0 && errno == EINTR
        guard result == pid else { return result == 0 ? nil : 1 }
        locked { _ = running.remove(pid) }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// `attempt`'s exit status, `attempt` run again (after a pause) while the child it runs
    /// exits finding the database locked past its busy timeout: for the queue's commands,
    /// which lose nothing so (`submit` is one transaction; `process` keeps what it decided
    /// and resumes the line), so that a lock is waited out as `book --stream` waits it out.
    func againWhileBusy(_ attempt: () throws -> Int32) rethrows -> Int32 {
        while true {
            let status = try attempt()
            guard status == ErrorCode.busy.exitCode else { return status }
            RehearsalChildren.pauseWhileBusy()
        }
    }

    /// How long a rehearsal waits before it tries again what found the database locked:
    /// a child (`againWhileBusy`), or serve's requests answered 503 busy (`HTTPPath`).
    static let busyPause = 0.1

    static func pauseWhileBusy() {
        usleep(UInt32(busyPause * 1_000_000))
    }

    /// Exit 0, or the child's own last line with its exit code.
    func check(_ status: Int32, log: String) throws(FlashSaleError) {
        guard status != 0 else { return }
        let said = lastLine(of: logPath(log))
        let words = said.hasPrefix("flashsale: ") ? String(said.dropFirst("flashsale: ".count)) : said.isEmpty ? lostWords() : said
        let code = ErrorCode.allCases.first { $0.exitCode == status } ?? .internalFailure
        throw FlashSaleError(code, "rehearse: \(log) failed (exit \(status))" + (words.isEmpty ? "" : ": \(words)"))
    }

    /// Why a failed child's log says nothing, when it is known: the scratch directory's
    /// disk is full, so the child could not write its words there either (found by
    /// probing: a full TMPDIR failed `submit` 74, and the rehearsal did not say why).
    private func lostWords() -> String {
        var disk = statvfs()
        guard statvfs(directory, &disk) == 0, disk.f_bavail == 0 else { return "" }
        return "its words are lost: the disk of the scratch directory \(directory.controlCharactersEscaped) (TMPDIR) is full"
    }

    /// Stops the children still running and waits for them: a rehearsal that fails leaves no
    /// process on its database (found in CI: its serve, stopped by the kernel only as the
    /// rehearsal exited, had the database open after it). SIGTERM first, so that serve
    /// answers and commits what it has read; SIGKILL for any child still running after
    /// `stopGrace`, since one waiting for room on a full disk takes no stop signal (found
    /// by review).
    func stopRunning() {
        let children = locked { running }
        for pid in children { send(SIGTERM, to: pid) }
        let deadline = MonotonicClock.nanoseconds() + RehearsalChildren.stopGrace.nanoseconds
        var left = children
        while !left.isEmpty, MonotonicClock.nanoseconds() < deadline {
            left = left.filter { wait($0, block: false) == nil }
            if !left.isEmpty { usleep(10_000) }
        }
        for pid in left { send(SIGKILL, to: pid) }
        for pid in left { _ = wait(pid) }
    }

    /// How long a failed rehearsal's children have to stop before they are killed.
    static let stopGrace = Span.seconds(10)

    func send(_ signal: Int32, to pid: pid_t) {
        locked { if running.contains(pid) { kill(pid, signal) } }
    }

    func logPath(_ log: String) -> String {
        directory + "/" + log.split(separator: " ").joined(separator: "-") + ".log"
    }

    /// Removes the scratch directory (the database too unless it is kept elsewhere).
    ///
    /// On an interruption the rehearsal's own thread goes on until the process exits, and
    /// may make a file meanwhile (its next child's log, the returning buyers' requests).
    /// The directory is renamed first, so that any file made after is refused rather than
    /// left behind; a file made while the name was being taken is caught by the next pass.
    func removeScratch() {
        guard removesDirectory else {
            for name in listDirectory(directory) where !name.hasPrefix("rehearsal.db") { unlink(directory + "/" + name) }
            return
        }
        let removing = directory + ".removing"
        let path = rename(directory, removing) == 0 ? removing : directory
        for _ in 0..<3 {
            for name in listDirectory(path) { unlink(path + "/" + name) }
            if rmdir(path) == 0 || errno != ENOTEMPTY { return }
        }
    }

    private func listDirectory(_ path: String) -> [String] {
        guard let handle = opendir(path) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }

    private func lastLine(of path: String) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return "" }
        defer { close(descriptor) }
        let size = lseek(descriptor, 0, SEEK_END)
        let start = max(0, size - 4096)
        lseek(descriptor, start, SEEK_SET)
        var buffer = [UInt8](repeating: 0, count: Int(size - start))
        let count = read(descriptor, &buffer, buffer.count)
        guard count > 0 else { return "" }
        let text = String(decoding: buffer[..<count], as: UTF8.self)
        return text.split(separator: "\n").last.map(String.init) ?? ""
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// Never returns once a stop signal has come: the signal's thread is ending the
    /// children and the process (130, with its own line), and a failure they cause here
    /// must not end it first with another status.
    func waitIfInterrupted() {
        guard locked({ interrupted }) else { return }
        while true { pause() }
    }

    /// From now on a stop signal is too late: the day is done, and its report is written
    /// whole (found by probing: with --json, an error object after the report's). One
    /// that came first is stopping the rehearsal: its thread ends the process, and no
    /// report follows its line (review).
    func reportBegins() {
        locked { reporting = !interrupted }
        waitIfInterrupted()
    }

    private func stopUnlessReporting() {
        let stopping: (children: Set<pid_t>, staysIn: String?)? = locked {
            guard !reporting else { return nil }
            interrupted = true
            return (running, self.staysIn)
        }
        guard let (children, staysIn) = stopping else { return }
        for pid in children { kill(pid, SIGKILL) }
        for pid in children { var status: Int32 = 0; waitpid(pid, &status, 0) }
        removeScratch()
        // Found by probing: a rehearsal into --db left its sale unsaid (and a second run
        // was refused, the sale existing), and --keep named a "database given" it had not.
        let kept = staysIn.map { "; sale \(RehearseCommand.sale) stays in '\($0.controlCharactersEscaped)'" } ?? ""
        StopSignals.exitStopped(saying: "rehearse interrupted; its children are stopped and its scratch files removed\(kept)",
                                overProgress: true, json: reportsJSON)
    }
}
