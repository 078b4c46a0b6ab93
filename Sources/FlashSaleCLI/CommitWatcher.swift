import FlashSaleEngine

/// How a follower (`process --follow`, `events --follow`) waits for work without burning a
/// core: it sleeps on the stop signals for an interval, then asks the store's change
/// watcher whether another process has committed since it last looked.
struct CommitWatcher {
    enum Wake: Equatable {
        /// Another process committed, or `alsoWake` said so: look again.
        case changed
        /// SIGINT, SIGTERM, or `alsoStop` said so: finish up.
        case stop
    }

    private let signals: StopSignals
    private let milliseconds: Int
    private var changes: any ChangeWatcher

    /// Starts watching now: create it before the first query, so that a commit landing
    /// after that query still counts as new.
    init(store: any Store, signals: StopSignals, intervalMilliseconds: Int) throws {
        self.signals = signals
        milliseconds = intervalMilliseconds
        changes = try store.changeWatcher()
    }

    mutating func wait(alsoStop: () -> Bool = { false }, alsoWake: () throws -> Bool = { false }) throws -> Wake {
        while true {
            if signals.wait(milliseconds: milliseconds) || alsoStop() { return .stop }
            if try changes.hasChanged() || alsoWake() { return .changed }
        }
    }
}
