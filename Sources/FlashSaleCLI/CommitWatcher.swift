import FlashSaleStore

/// How a follower (`process --follow`, `events --follow`) waits for work without burning a
/// core: it sleeps on the stop signals for an interval, then asks `PRAGMA data_version` (a
/// look at shared memory) whether another process has committed since it last looked.
struct CommitWatcher {
    enum Wake: Equatable {
        /// Another process committed, or `alsoWake` said so: look again.
        case changed
        /// SIGINT, SIGTERM, or `alsoStop` said so: finish up.
        case stop
    }

    private let store: SaleStore
    private let signals: StopSignals
    private let milliseconds: Int
    private var seenVersion: Int64

    /// Reads the version now: create it before the first query, so that a commit landing
    /// after that query still counts as new.
    init(store: SaleStore, signals: StopSignals, intervalMilliseconds: Int) throws {
        self.store = store
        self.signals = signals
        milliseconds = intervalMilliseconds
        seenVersion = try store.dataVersion()
    }

    mutating func wait(alsoStop: () -> Bool = { false }, alsoWake: () throws -> Bool = { false }) throws -> Wake {
        while true {
            if signals.wait(milliseconds: milliseconds) || alsoStop() { return .stop }
            let version = try store.dataVersion()
            if try version != seenVersion || alsoWake() {
                seenVersion = version
                return .changed
            }
        }
    }
}
