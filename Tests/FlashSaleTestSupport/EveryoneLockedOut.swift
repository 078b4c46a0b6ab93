import FlashSaleStore

/// A connection that keeps every other process out of the SQLite database at `path`, its
/// readers too, until it is let go: exclusive locking mode and a write, as an operator's
/// `sqlite3` session with `PRAGMA locking_mode=EXCLUSIVE` does. (Another's write lock
/// keeps out writers only: a long-running command's start reads.)
public func lockingEveryoneOut(of path: String) throws -> Connection {
    let holder = try Connection(path: path, busyTimeout: .seconds(0))
    try holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    try holder.execute("BEGIN EXCLUSIVE")
    try holder.execute("COMMIT")
    return holder
}
