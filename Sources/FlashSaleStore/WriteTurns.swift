import Glibc
import FlashSaleCore

// Taking turns at SQLite's write lock. SQLite queues nobody: a writer that finds the lock
// taken sleeps in its busy handler and looks again, and a process that writes batch after
// batch (`sweep`, `process`, `book --stream`) takes the lock again microseconds after
// letting it go. With SQLite's own handler, which sleeps up to 100 ms between looks, a
// `book` beside such a process mostly looks while a batch holds the lock, and gives up
// after --busy-timeout (exit 75) although the lock was free many times meanwhile. So a
// waiter looks every millisecond (`BusyWait`), and a connection that has held the lock
// for a while leaves it free a little before taking it again (`WriteTurns`).

/// A busy handler that looks again every millisecond until the busy timeout has passed.
final class BusyWait {
    private static let interval: UInt64 = 1_000_000
    private let timeout: UInt64
    private var startedAt: UInt64 = 0

    init(timeout: Span) {
        self.timeout = timeout.nanoseconds
    }

    /// Whether SQLite should try the lock again (after a sleep); `previous` is how many
    /// times it has already asked about this lock.
    func lookAgain(previous: Int32) -> Bool {
        let now = MonotonicClock.nanoseconds()
        if previous == 0 { startedAt = now }
        let waited = now - startedAt
        guard waited < timeout else { return false }
        sleep(nanoseconds: min(Self.interval, timeout - waited))
        return true
    }
}

/// When this connection held the write lock, and whether others write too. A pause costs
/// the long writer its length, so it pays one after every hold only while other writers
/// are about (they committed lately); alone, after each 100 ms of holding, so that a
/// waiter that has not got in yet, and so cannot be seen, gets in.
struct WriteTurns {
    /// A quarter of the holding paid for, at most 3 ms: a waiter looking every millisecond
    /// gets in, and the writer keeps most of its pace.
    private static let longestPause: UInt64 = 3_000_000
    private static let aloneFor: UInt64 = 100_000_000
    /// How long another writer's commit counts as others being about.
    private static let othersAboutFor: UInt64 = 1_000_000_000
    private var heldSince: UInt64?
    private var lastLetGo: UInt64?
    private var heldUnpaid: UInt64 = 0
    private var othersSeenAt: UInt64?
    private var seenVersion: Int64?

    /// Before taking the lock: sleeps out the pause owed, if any. `dataVersion` is
    /// SQLite's, which changes when another connection commits.
    mutating func waitForTurn(dataVersion: () throws -> Int64) rethrows {
        guard let lastLetGo else { return }
        let now = MonotonicClock.nanoseconds()
        let version = try dataVersion()
        if seenVersion.map({ $0 != version }) ?? false { othersSeenAt = now }
        seenVersion = version
        let othersAbout = othersSeenAt.map { now - $0 < Self.othersAboutFor } ?? false
        guard othersAbout || heldUnpaid >= Self.aloneFor else { return }
        let pause = min(heldUnpaid / 4, Self.longestPause)
        heldUnpaid = 0
        let since = now - lastLetGo
        if since < pause { sleep(nanoseconds: pause - since) }
    }

    mutating func took() {
        heldSince = MonotonicClock.nanoseconds()
    }

    mutating func letGo() {
        guard let heldSince else { return }
        let now = MonotonicClock.nanoseconds()
        heldUnpaid += now - heldSince
        lastLetGo = now
        self.heldSince = nil
    }
}

/// Sleeps that long, signals or not (the waits of this module are measured, not woken).
func sleep(nanoseconds: UInt64) {
    var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    var left = timespec()
    while nanosleep(&request, &left) == -1 && errno == EINTR { request = left }
}
