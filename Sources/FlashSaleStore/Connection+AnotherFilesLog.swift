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
    /// `leastWait`, whatever the busy timeout. And one that has this file open is no
    /// stranger, lock or none: a program that closes another descriptor of the file (a
    /// script copying it while connected) loses its locks on it, as POSIX has it, and
    /// keeps its index's (found by review: every command was then refused).
    func refuseAnotherFilesLog() throws(SQLiteError) {
        let patience = max(busyTimeout.nanoseconds, Connection.leastWait.nanoseconds)
        let firstLook = MonotonicClock.nanoseconds()
        var since = firstLook
        var seen: Set<pid_t> = []
        var hasThisFileOpen: [pid_t: Bool] = [:]
        while let file = FileIdentity(of: openedFile), let index = FileIdentity(of: openedFile + "-shm") {
            let looked = MonotonicClock.nanoseconds()
            guard let holders = LockHolders.now(on: [file, index]) else { return }
            let lockless = holders.others(holding: index, byte: WALIndex.deadMansSwitch).subtracting(holders.others(holding: file))
            let strangers = lockless.filter { process in
                if let known = hasThisFileOpen[process] { return !known }
                // Its descriptors unreadable (another user's process), the locks decide.
                let opened = WALIndex.descriptor(of: file, in: process) != nil
                hasThisFileOpen[process] = opened
                return !opened
            }
            guard !strangers.isEmpty else { return }
            // Timed from before the look, so that a pause after it (this process descheduled)
            // does not count as time the strangers were seen.
            let stayed = seen.intersection(strangers)
            if stayed.isEmpty {
                // Strangers that come and go (processes closing, one after another) are
                // no other file's: looked at for twice the patience, they let this one in.
                guard looked - firstLook < 2 * patience else { return }
                since = looked
                seen = strangers
            } else if looked - since >= patience, let stranger = stayed.min() {
                throw SQLiteError.anotherFilesLog(
                    "the -wal and -shm at its name are held by process \(stranger) for another file (one moved away or removed "
                        + "while that process had it open): stop that process first; this file is left as it is")
            } else {
                seen = stayed
            }
            // At least as long as the look took: a machine with thousands of locks takes
            // milliseconds to list them, and the wait must not take a core.
            sleep(nanoseconds: max(1_000_000, MonotonicClock.nanoseconds() - looked))
        }
    }

    /// How long a process seen holding the index at this name without this file is waited
    /// for, at least: the moment an exiting process holds the index alone.
    static let leastWait = Span(milliseconds: 100)
}
