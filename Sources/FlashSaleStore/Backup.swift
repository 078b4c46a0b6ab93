import Glibc
import CSQLite
import FlashSaleCore

/// `backup`: an online copy through SQLite's backup API, consistent while other processes
/// keep writing, into a new file that only its owner can read (it holds buyers' data).
extension SQLiteStore {
    /// Copies the whole database to `path`, which must not exist; returns its size in pages.
    ///
    /// The copy is made under a temporary name beside `path` and given the name `path` only
    /// once it is complete and on disk, so `path` is either absent or a whole copy, even
    /// after a kill or a power cut. A failure removes the temporary file; a kill leaves it,
    /// unless the caller removes it: `stage` is told its name before the copy starts, and
    /// when the copy is whole, on disk and about to take `path`, from when the caller must
    /// leave the file alone (`PartialFile.publish`).
    public func backup(to path: String, stage: (BackupStage) -> Void = { _ in }) throws -> Int64 {
        try BackupFile.refuseTaken(path)
        // A name near the file system's 255 bytes has no room for the suffixes: a name of
        // its own then (240 bytes and more failed "File name too long": found by probing).
        let partial = try PartialFile(for: path, what: "backup", fallbacks: [".flashsale-backup.partial-XXXXXX"])
        stage(.copying(temporaryPath: partial.path))
        do {
            let pages = try BackupFile.copy(from: db, into: partial)
            try partial.sync()
            stage(.naming)
            guard try partial.publish(othersMayOpenIt: false) else { throw BackupFile.taken(path) }
            return pages
        } catch {
            partial.discard()
            throw error
        }
    }
}

/// Where a backup's file stands, for a caller that would remove it on a stop signal.
public enum BackupStage: Sendable {
    /// The copy is being made (and synced) in the file at `temporaryPath`, which may be
    /// removed.
    case copying(temporaryPath: String)
    /// The copy is whole, on disk, and taking its name: too late to stop.
    case naming
}

enum BackupFile {
    /// Refuses (exit 4) a name that is taken, before any copying.
    static func refuseTaken(_ path: String) throws(FlashSaleError) {
        // SQLite opens a WAL database with NAME-wal and NAME-shm beside it, and no path
        // longer than 504 bytes (its 512, less -journal).
        try PartialFile.refuseTooLong(path, "a backup", nameBytes: maximumNameBytes,
                                      nameRoom: "room for the -wal and -shm SQLite opens beside it",
                                      pathRoom: "the longest SQLite opens")
        // Named as a database's journal, the copy would be taken for one, and removed or
        // replayed, the next time that database is opened (a backup to sale.db-journal
        // vanished with the next command: found by probing). Said first: the source's own
        // -wal and -shm, which the backup's connection makes, were said to exist already
        // when none was there before the command (probe).
        for suffix in ["-wal", "-journal", "-shm"] where path.hasSuffix(suffix) && exists(String(path.dropLast(suffix.count))) {
            throw .conflict("\(path) would be taken for the \(suffix.dropFirst()) file of \(path.dropLast(suffix.count)), "
                            + "and removed when that is opened: choose another name")
        }
        // A live database (the one being copied, say) has a -wal of its own, which must
        // never be called a leftover to remove.
        if exists(path) { throw taken(path) }
        try PartialFile.refuseLeftovers(path)
    }

    /// A file name's 255 bytes, less `-wal`.
    static let maximumNameBytes = 251

    static func taken(_ path: String) -> FlashSaleError {
        .conflict("\(path) already exists; backup never overwrites a file: choose a new name")
    }

    /// Whether anything has the name, a dangling symbolic link included.
    private static func exists(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0
    }

    /// Copies every page of `source`'s main database into the empty file of `partial`.
    ///
    /// The copy is one step over all pages (`sqlite3_backup_step(-1)`) inside one read
    /// transaction on the source, so it is the database as of one commit. In WAL mode a
    /// reader does not block writers, so other processes go on committing meanwhile; their
    /// commits are simply not in the copy. (Copying in several steps instead would let a
    /// write from another connection between two steps restart the copy from the start,
    /// again and again on a busy sale.) The read transaction is opened by a query, not by
    /// the backup itself, because the backup API does not wait for a lock (it reports
    /// BUSY at once) while a query waits up to --busy-timeout.
    ///
    /// The copy keeps the source's journal mode: the header bytes that say WAL are copied
    /// with page 1, so a copy of a flashsale database is a WAL database like its source.
    /// It is written without a journal, and so never has a -wal or -shm: the file alone is
    /// the whole database once the destination connection is closed, on return.
    static func copy(from source: Connection, into partial: PartialFile) throws -> Int64 {
        let destination = try Connection(path: partial.path, busyTimeout: .seconds(5))
        // A scratch file until it is published, synced once then: a journal or a sync per
        // write would only slow the copy and leave more behind after a kill.
        try destination.execute("PRAGMA journal_mode = OFF")
        try destination.execute("PRAGMA synchronous = OFF")
        return try source.readTransaction {
            _ = try source.firstRow("SELECT count(*) FROM sqlite_schema") { $0.int64(0) }
            guard let backup = sqlite3_backup_init(destination.handle, "main", source.handle, "main") else {
                throw SQLiteError(code: sqlite3_errcode(destination.handle), connection: destination.handle)
            }
            errno = 0 // so that a failure's errno is its own (see SQLiteError.systemErrno)
            let code = sqlite3_backup_step(backup, -1)
            let pages = Int64(sqlite3_backup_pagecount(backup))
            // finish releases the backup whatever happened; its code repeats a step's error.
            let finished = sqlite3_backup_finish(backup)
            guard code == SQLITE_DONE, finished == SQLITE_OK else {
                throw copyFailure(SQLiteError(code: code == SQLITE_DONE ? finished : code, connection: destination.handle),
                                  naming: partial.target)
            }
            return pages
        }
    }

    /// A copy's failure, which SQLite reports on the copy's connection whichever side it
    /// met: no room, or the file size limit, can only be the copy's, whose file grows
    /// (the source is only read), and is said so (found by probing: a backup past
    /// `ulimit -f` said the database had reached it).
    private static func copyFailure(_ error: SQLiteError, naming target: String) -> any Error {
        switch error.failure {
        case .fileSizeLimit?: FlashSaleError.io("cannot write the backup \(target): it reached the file size limit (ulimit -f)")
        case .full?: FlashSaleError.io("cannot write the backup \(target): the disk is full")
        default: error
        }
    }
}
