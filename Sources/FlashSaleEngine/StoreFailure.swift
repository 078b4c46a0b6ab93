import FlashSaleCore

/// A failure of the database itself, as each store reports its own errors and each front
/// end words them: the contract's busy (75), I/O (74) and cannot-open (73) cases. Whatever
/// failed, the transaction was rolled back, but for `commitUnanswered`, of which nobody can
/// tell.
public enum StoreFailure: Error, Equatable, Sendable {
    /// Another process held the lock past the busy timeout: retry.
    case busy
    /// The server canceled a statement, one that ran past the busy timeout (PostgreSQL's
    /// statement_timeout) or at an operator's request: retry, as for `busy`. `detail` is
    /// the server's words.
    case canceled(detail: String)
    /// No room left on the disk (or the server's).
    case full(detail: String)
    /// A file reached the process's size limit (`ulimit -f`).
    case fileSizeLimit(detail: String)
    /// Another failure to read or write.
    case io(detail: String)
    /// The connection to the database server was lost (the server restarted, a failover,
    /// the network): the transaction is gone with it. The store connects anew for its next
    /// transaction, so a process that goes on (a follower) runs its step again.
    case connectionLost(detail: String)
    /// The connection to the server was lost once the transaction's COMMIT had been sent,
    /// before its answer: the server may have committed it or not (found by probing: the
    /// command said 74 and to run it again, and a repeated `submit` queued its request
    /// twice). The store connects anew for its next transaction, as after `connectionLost`.
    case commitUnanswered(detail: String)
    /// The database cannot be opened or written: its path, permissions, a read-only file.
    case cantOpen(detail: String)
    /// The database, or a file SQLite needs beside it, cannot be written (or used) where it
    /// is, for a reason that is not the path or its permissions: `detail` says which, and
    /// what mends it (a read-only file system; a -shm a reader left read-only; a -wal and
    /// -shm another process holds for another file).
    case unwritable(detail: String)
    /// The database file was removed or replaced (`rm`, `mv` of another onto its name)
    /// while a long-running process had it open: what it would commit goes where nobody
    /// finds it, and what others commit to the file now there it never sees. `detail` says
    /// what to do.
    case moved(detail: String)
    /// The database's WAL or its index was removed or replaced while a long-running process
    /// had them open, before any other process made new ones: the process copies its log
    /// into the file and stops, since its commits would go where nobody else looks.
    /// `detail` says whether the copy was made.
    case logRemoved(detail: String)
    /// The database's WAL or its index was removed or replaced while a long-running process
    /// had them open, and another process has made new ones, which the others commit to:
    /// the process stops, keeping theirs, and the commits in the removed log since SQLite
    /// last copied it into the file, its own and those of any process that shared it, are
    /// lost (two histories cannot be merged).
    case split(detail: String)
    /// The database server cannot be reached or refuses the connection: nothing listens
    /// there, a wrong password, TLS required and not offered; or it takes no writes (a
    /// standby). `detail` names the server.
    case unreachable(detail: String)
    /// The database server refused the connection for want of one free: all its
    /// connections (max_connections), or all the role's (CONNECTION LIMIT), are taken.
    case noConnectionFree(detail: String)
    /// No database at `path` (no file, or one with no schema yet), and none was to be
    /// created: a mistyped path must not become an empty database.
    case missingDatabase(path: String)
    /// What is there is not a usable flashsale database: another program's, corrupt, or a
    /// newer flashsale's.
    case unusable(detail: String)

    /// The failure `error` is or carries (a store's own error); nil for any other error.
    public static func of(_ error: any Error) -> StoreFailure? {
        (error as? StoreFailure) ?? (error as? any StoreError)?.failure
    }

    /// Whether the database could not take a write: no room, a size limit, a read-only
    /// file or no privilege, an I/O error (on PostgreSQL also a server error of its own),
    /// rather than being busy, moved or unreachable, or the connection lost. What a decline
    /// writes, its attempt's count, is then lost rather than the decline, which needs no
    /// write to stand.
    public var refusedTheWrite: Bool {
        switch self {
        case .full, .fileSizeLimit, .io, .cantOpen, .unwritable: true
        case .busy, .canceled, .connectionLost, .commitUnanswered, .moved, .logRemoved, .split, .unreachable,
             .noConnectionFree, .missingDatabase, .unusable: false
        }
    }

    /// Whether the database kept the process waiting until it gave up: another's lock held
    /// past the busy timeout, a statement canceled at its timeout, or a server that went
    /// away, went quiet or had no connection free. Trying again waits again.
    public var endedAWait: Bool {
        switch self {
        case .busy, .canceled, .connectionLost, .commitUnanswered, .unreachable, .noConnectionFree: true
        case .full, .fileSizeLimit, .io, .cantOpen, .unwritable, .moved, .logRemoved, .split, .missingDatabase, .unusable: false
        }
    }

    /// Whether the database a long-running process follows is gone from under it (`moved`,
    /// `logRemoved`, `split`): it stops, for good.
    public var endsTheDatabaseFollowed: Bool {
        switch self {
        case .moved, .logRemoved, .split: true
        default: false
        }
    }

    public var code: ErrorCode {
        switch self {
        case .busy, .canceled: .busy
        case .full, .fileSizeLimit, .io, .connectionLost, .commitUnanswered: .io
        case .cantOpen, .unwritable, .moved, .logRemoved, .split, .unreachable, .noConnectionFree, .missingDatabase, .unusable:
            .cantOpen
        }
    }
}

/// An error of a store's own kind that may be one of the failures above; nil for one that
/// is a bug (an SQL mistake, a misuse of the library).
public protocol StoreError: Error {
    var failure: StoreFailure? { get }
    /// Whether the transaction lost to another one (a deadlock, a serialization failure)
    /// and was rolled back: run again from the start, it may well succeed. The write paths
    /// retry it (`Store.retryingConflicts`), but for one that cannot run again
    /// (`Store.writeOnce`), whose command fails with it (busy: retry).
    var isTransient: Bool { get }
}

extension StoreError {
    public var isTransient: Bool { false }
}
