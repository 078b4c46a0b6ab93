import FlashSaleCore
import FlashSaleEngine

/// How a follower (`process --follow`, `events --follow`) waits. For work, without burning a
/// core: it sleeps on the stop signals for an interval, then asks the store's change watcher
/// whether another process has committed since it last looked. For
/// another process's lock, without giving up: it runs until told to stop, so busy is only a
/// reason to wait. Not following, it runs each step once and never waits, and a busy
/// database is exit 75 as for any command.
final class CommitWatcher {
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
    private let log: TextSink
    /// A stop signal is taken from the process when it is seen: remembered here, so that
    /// every later look sees it too.
    private var stopped = false
    private var waitingForLock = false

    /// Following, starts watching now: create it before the first query, so that a commit
    /// landing after that query still counts as new.
    init(store: any Store, follow: Bool, intervalMilliseconds: Int, log: TextSink) throws {
        signals = follow ? StopSignals() : nil
        milliseconds = intervalMilliseconds
        self.log = log
        if follow {
            changes = try persisting { try store.changeWatcher() }
        }
    }

    /// Whether SIGINT or SIGTERM has come, without waiting.
    func stopRequested() -> Bool {
        if !stopped, signals?.received() == true { stopped = true }
        return stopped
    }

    /// Runs one step of the command and returns its result, or nil once a stop signal came.
    /// A follower whose step finds the database held by another process past the busy
    /// timeout says so once on stderr, waits an interval and runs the step again (a step is
    /// whole transactions, so running it again is safe), and says so again when it gets
    /// through. A stop signal ends the waiting, at the latest a busy timeout later.
    func persisting<T>(_ step: () throws -> T) throws -> T? {
        while !stopRequested() {
            do {
                let result = try step()
                if waitingForLock {
                    waitingForLock = false
                    say("the database is free again; going on")
                }
                return result
            } catch where signals != nil && CommitWatcher.isBusy(error) {
                if !waitingForLock {
                    waitingForLock = true
                    say("another process has held the database longer than --busy-timeout; waiting for it")
                }
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

    private func hasChanged(_ alsoWake: () throws -> Bool) throws -> Bool {
        try changes?.hasChanged() == true || alsoWake()
    }

    /// Sleeps one interval on the stop signals; true if one came.
    private func pause() -> Bool {
        if !stopped, signals?.wait(milliseconds: milliseconds) == true { stopped = true }
        return stopped
    }

    private func say(_ message: String) {
        log.write("flashsale: \(message)\n")
        log.flush()
    }

    private static func isBusy(_ error: any Error) -> Bool {
        if case .busy = ExitStatus.error(for: error) { return true }
        return false
    }
}
