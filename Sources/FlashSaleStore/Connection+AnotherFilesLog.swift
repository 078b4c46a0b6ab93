import CSQLite
import FlashSaleCore
import Glibc

extension Connection {
    /// Waits, within the busy timeout, while the WAL index at this database's name is held
    /// by another process that does not hold this file, and refuses the database if it
    /// still is. That process has another file open with the log at this name: one moved
    /// away or removed while it had it open, and this one put at the name since (a
    /// restore by `mv` under an idle `book --stream`). Gone on, this connection would read
    /// this file's pages through that log, and its commits and checkpoints would mix the
    /// two (found by probing: `sales` printed a mix of both databases, and `verify` found
    /// them corrupt). Every SQLite process takes a database's lock before its index's, and
    /// lets go of its index first, so one that holds the index and not the file has
    /// another file; the locks of both are read at one moment (`LockHolders`), and the
    /// wait lets that process settle its log and close. Looked at before the first read,
    /// which would open the log.
    ///
    /// A process that exits without closing its database lets the kernel close its files
    /// in the order of their descriptors, the database's first: for a moment it holds the
    /// index alone (found by a run of `book` processes with `--busy-timeout 0ms`, one
    /// refused). So only a process seen so all along is waited for, for at least
    /// `leastWait`, whatever the busy timeout.
    func refuseAnotherFilesLog() throws(SQLiteError) {
        let patience = max(busyTimeout.nanoseconds, Connection.leastWait.nanoseconds)
        var since = MonotonicClock.nanoseconds()
        var seen: Set<pid_t> = []
        while let file = FileIdentity(of: openedFile), let index = FileIdentity(of: openedFile + "-shm"),
              let holders = LockHolders.now() {
            let strangers = holders.others(holding: index, byte: WALIndex.deadMansSwitch).subtracting(holders.others(holding: file))
            guard !strangers.isEmpty else { return }
            let stayed = seen.intersection(strangers)
            if stayed.isEmpty {
                since = MonotonicClock.nanoseconds()
                seen = strangers
            } else if MonotonicClock.nanoseconds() - since >= patience, let stranger = stayed.min() {
                throw SQLiteError.anotherFilesLog(
                    "the -wal and -shm at its name are held by process \(stranger) for another file (one moved away or removed "
                        + "while that process had it open): stop that process first; this file is left as it is")
            } else {
                seen = stayed
            }
            usleep(1_000)
        }
    }

    /// How long a process seen holding the index at this name without this file is waited
    /// for, at least: the moment an exiting process holds the index alone.
    static let leastWait = Span(milliseconds: 100)
}
