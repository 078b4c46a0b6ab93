import Glibc
import FlashSaleCore
import FlashSaleEngine

/// How a follower (`process --follow`, `events --follow`) waits. For work, without burning a
/// core: it sleeps on the stop signals for an interval, then asks the store's change watcher
/// whether another process has committed since it last looked. For
/// another process's lock, without giving up: it runs until told to stop, so busy is only a
/// reason to wait. Not following, it runs each step once and never waits, and a busy
/// database is exit 75 as for any command.
package final class CommitWatcher {
    enum Wake: Equatable {
        /// Another process committed, or `alsoWake` said so: look again.
        case changed
        /// SIGINT, SIGTERM, or `alsoStop` said so: finish up (always, when not following).
        case stop
    }

    private var changes: (any ChangeWatcher)?
    /// nil when not following.
    private let signals: StopSignals?
    private let milliseconds: Int
    /// Where a wait for another process's lock is said (`Output.notes`: not with -q).
    private let notes: TextSink
    /// Where trouble is said, a server gone or a statement canceled, and its end: stderr,
    /// with -q too (found by probing: a quiet follower cut off from its server said
    /// nothing).
    private let log: TextSink
    /// A stop signal is taken from the process when it is seen: remembered here, so that
    /// every later look sees it too.
    private var stopped = false
    /// What the follower is waiting out, said once when it began: nil when nothing.
    private var waitingFor: Obstacle?
    /// A change the watcher told of while it was asked only whether the database is still
    /// there (`movedDatabase`), owed to the next look.
    private var changeSeenAside = false

    /// Why a follower's step could not run, and waits: another process's lock, a statement
    /// the server canceled (PostgreSQL's statement_timeout, the busy timeout too), or a
    /// database server that went away or takes no writes (the store connects anew for the
    /// next step).
    private enum Obstacle {
        case lock
        case canceled(String)
        case server(String)

        var isServer: Bool {
            if case .server = self { true } else { false }
        }
    }

    /// Following when `signals` (made before the store is opened: see `StopSignals`) is
    /// given. Made before the store is opened, so that a follower waits out another
    /// process's lock from its start (`persisting`), as it does later: it ran as long as
    /// one, and exited 75 when the lock was there first (found by probing).
    init(signals: StopSignals?, intervalMilliseconds: Int, notes: TextSink, log: TextSink) {
        self.signals = signals
        milliseconds = intervalMilliseconds
        self.notes = notes
        self.log = log
    }

    /// Following, starts watching `store` for other processes' commits: call it before the
    /// first query of what to follow, so that a commit landing after that query still
    /// counts as new. Part of the start: a watcher whose connection cannot be made fails
    /// the command, as the store's first did (found by probing: a role allowed one
    /// connection, the store's, waited for a second for ever, saying it would connect again).
    func watch(_ store: any Store) throws {
        guard signals != nil else { return }
        changes = try startingUp { try store.changeWatcher() }
    }

    /// Whether a stop signal (SIGINT, SIGTERM, SIGHUP) has come, without waiting.
    func stopRequested() -> Bool {
        if !stopped, signals?.received() == true { stopped = true }
        return stopped
    }

    /// Runs one step of the command and returns its result, or nil once a stop signal came.
    /// A follower whose step finds the database held by another process past the busy
    /// timeout, or its server gone (restarted, failed over), says so once on stderr, waits an
    /// interval and runs the step again (a step is whole transactions, so running it again
    /// is safe), and says so again when it gets through. A stop signal ends the waiting, at
    /// the latest a busy timeout (or a connection attempt) later.
    func persisting<T>(_ step: () throws -> T) throws -> T? {
        try persisting(waitingForServer: true, step)
    }

    /// `persisting` for the follower's start (opening the store, reading where to begin,
    /// making its change watcher):
    /// another process's lock is waited out, but a server not reached fails the command at
    /// once, as any command's, since that is more often a wrong URL than a restart.
    func startingUp<T>(_ step: () throws -> T) throws -> T? {
        try persisting(waitingForServer: false, step)
    }

    private func persisting<T>(waitingForServer: Bool, _ step: () throws -> T) throws -> T? {
        while !stopRequested() {
            do {
                let result = try step()
                switch waitingFor {
                case .lock: Self.say(Self.lockFree, to: notes)
                case .canceled: say(Self.lockFree)
                case .server: say(Self.serverBack)
                case nil: break
                }
                waitingFor = nil
                return result
            } catch {
                // A database file removed or replaced under the step fails its commit as an
                // I/O error (74); a follower says what its watcher says of it, 73, as when it
                // finds it between steps (found by a test under load, whose follower met it
                // at a commit first).
                // Not asked of a server gone: the watcher would connect again first, and the
                // follower say so only once that had failed, connect_timeout later (probe).
                let obstacle = CommitWatcher.obstacle(error)
                if signals != nil, obstacle?.isServer != true, let moved = movedDatabase() { throw moved }
                guard signals != nil, let obstacle else { throw error }
                if case .server = obstacle, !waitingForServer { throw error }
                switch (waitingFor, obstacle) {
                case (nil, .lock):
                    Self.say(Self.waitingForLock, to: notes)
                case (nil, .canceled(let detail)):
                    // The server's words say why: a statement timeout, or an operator's cancel.
                    say("the server canceled a statement (\(detail)); trying again")
                case (nil, .server(let detail)), (.lock, .server(let detail)):
                    say(Self.serverGone(detail))
                default:
                    break
                }
                waitingFor = obstacle
                if pause() { return nil }
            }
        }
        return nil
    }

    /// Waits until another process commits or `alsoWake` says so (`.changed`), or until a
    /// stop signal or `alsoStop` (`.stop`).
    func wait(alsoStop: () -> Bool = { false }, alsoWake: () throws -> Bool = { false }) throws -> Wake {
        guard signals != nil else { return .stop }
        while true {
            if pause() || alsoStop() { return .stop }
            guard let changed = try persisting({ try hasChanged(alsoWake) }) else { return .stop }
            if changed { return .changed }
        }
    }

    /// The watcher's word that the database it watches is no longer there, if it says so.
    /// Whether another process committed meanwhile is kept for the next look: when the
    /// step was that look, forgotten, it left a request committed while the follower's
    /// server was gone queued until the next commit (found by probing).
    private func movedDatabase() -> StoreFailure? {
        do {
            if try changes?.hasChanged() == true { changeSeenAside = true }
        } catch let failure as StoreFailure {
            if failure.endsTheDatabaseFollowed { return failure }
        } catch {}
        return nil
    }

    private func hasChanged(_ alsoWake: () throws -> Bool) throws -> Bool {
        let changed = try changes?.hasChanged() == true || changeSeenAside
        changeSeenAside = false
        return try changed || alsoWake()
    }

    /// Sleeps one interval on the stop signals; true if one came.
    private func pause() -> Bool {
        if !stopped, signals?.wait(milliseconds: milliseconds) == true { stopped = true }
        return stopped
    }

    /// What a long-running command says when another process's lock outlasts its busy
    /// timeout, and when it gets through again (`BookStream` says them too).
    package static let waitingForLock = "another process has held the database longer than --busy-timeout; waiting for it"
    package static let lockFree = "the database is free again; going on"
    /// The same for a database server gone (restarted, failed over), and back.
    static func serverGone(_ detail: String) -> String { "\(detail); connecting again until it is back" }
    static let serverBack = "connected to the database again; going on"

    private func say(_ message: String) {
        Self.say(message, to: log)
    }

    /// One line on stderr, at once: what a waiting command says.
    static func say(_ message: String, to log: TextSink) {
        log.write("flashsale: \(message)\n")
        log.flush()
    }

    /// Runs `step` until no other process's lock outlasts the busy timeout, for a
    /// long-running command that has no stop signals of its own to wait on (`book
    /// --stream`, serve's start): each try waits the busy timeout itself, then a pause (with
    /// `--busy-timeout 0`, no spinning). `waiting` is told once when the wait begins, `free`
    /// when it ends. Only a lock is waited out: a statement the server canceled would be
    /// canceled again, and is exit 75 as before.
    package static func waitingOutLocks<T>(waiting: () -> Void, free: () -> Void, _ step: () throws -> T) throws -> T {
        try retrying(step, while: { isLock($0) ? waitingForLock : nil }, waiting: { _ in waiting() }, over: free)
    }

    /// Runs `step` until the database server answers it, for `book --stream`, which has no
    /// stop signals of its own to wait on: a server gone (restarted, failed over, taking no
    /// writes) or with no connection free is said once on `log` with why, connected to again
    /// ten times a second, and its return said, as a follower does. A commit whose answer
    /// was lost with the connection is waited out too: whether it stands is `step`'s to ask.
    static func waitingOutServer<T>(log: TextSink, _ step: () throws -> T) throws -> T {
        try retrying(step, while: { if case .server(let detail)? = obstacle($0) { detail } else { nil } },
                     waiting: { say(serverGone($0), to: log) }, over: { say(serverBack, to: log) })
    }

    /// Runs `step` again, a tenth of a second apart, for as long as it fails for a reason
    /// `reason` finds (nil: the failure is thrown): `waiting` is told the first reason, once,
    /// and `over` when a step gets through after it.
    private static func retrying<T>(_ step: () throws -> T, while reason: (any Error) -> String?,
                                    waiting: (String) -> Void, over: () -> Void) throws -> T {
        var waited = false
        while true {
            do {
                let result = try step()
                if waited { over() }
                return result
            } catch {
                guard let why = reason(error) else { throw error }
                if !waited { waiting(why) }
                waited = true
                usleep(100_000)
            }
        }
    }

    /// Whether `error` is another process's lock held past the busy timeout, and only that.
    package static func isLock(_ error: any Error) -> Bool {
        if case .lock? = obstacle(error) { true } else { false }
    }

    private static func obstacle(_ error: any Error) -> Obstacle? {
        switch StoreFailure.of(error) {
        case .connectionLost(let detail)?, .commitUnanswered(let detail)?, .unreachable(let detail)?, .noConnectionFree(let detail)?:
            return .server(detail)
        case .canceled(let detail)?: return .canceled(detail)
        default: break
        }
        if case .busy = ExitStatus.error(for: error) { return .lock }
        return nil
    }
}
