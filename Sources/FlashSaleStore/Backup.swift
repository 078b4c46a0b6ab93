import Glibc
import CSQLite
import FlashSaleCore

/// `backup`: an online copy through SQLite's backup API, consistent while other processes
/// keep writing, into a new file that only its owner can read (it holds buyers' data).
extension SQLiteStore {
    /// Copies the whole database to `path`, which must not exist; returns its size in
    /// pages. On any failure the partial copy is removed.
    public func backup(to path: String) throws -> Int64 {
        try BackupFile.create(at: path)
        do {
            let pages = try BackupFile.copy(from: db, to: path)
            BackupFile.syncDirectory(of: path)
            return pages
        } catch {
            BackupFile.remove(path)
            throw error
        }
    }
}

enum BackupFile {
    /// Creates `path` empty with mode 0600 (DatabaseFile), refusing (exit 4) a name that is taken.
    static func create(at path: String) throws(FlashSaleError) {
        // A -wal or -journal left by an earlier database of that name would be read back
        // into the copy when SQLite opens it: a copy must start from nothing.
        for suffix in ["-wal", "-journal"] where access(path + suffix, F_OK) == 0 {
            throw .conflict("\(path)\(suffix) exists (left by an earlier database of that name); remove it or choose another name")
        }
        // O_EXCL: a file that appeared since any check is refused too, never overwritten.
        switch DatabaseFile.createOwnerOnly(path) {
        case 0: return
        case EEXIST: throw .conflict("\(path) already exists; backup never overwrites a file: choose a new name")
        case let code: throw .cantOpen("cannot create the backup \(path): \(String(cString: strerror(code)))")
        }
    }

    /// Copies every page of `source`'s main database into the empty file at `path`.
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
    static func copy(from source: Connection, to path: String) throws -> Int64 {
        let destination = try Connection(path: path, busyTimeout: .seconds(5))
        return try source.readTransaction {
            _ = try source.firstRow("SELECT count(*) FROM sqlite_schema") { $0.int64(0) }
            guard let backup = sqlite3_backup_init(destination.handle, "main", source.handle, "main") else {
                throw SQLiteError(code: sqlite3_errcode(destination.handle), connection: destination.handle)
            }
            var code = sqlite3_backup_step(backup, -1)
            // The destination is a file this process just created, so a lock there is
            // someone else opening it by name: wait a little, then give up.
            var tries = 0
            while code == SQLITE_BUSY || code == SQLITE_LOCKED, tries < 200 {
                tries += 1
                usleep(10_000)
                code = sqlite3_backup_step(backup, -1)
            }
            let pages = Int64(sqlite3_backup_pagecount(backup))
            // finish releases the backup whatever happened; its code repeats a step's error.
            let finished = sqlite3_backup_finish(backup)
            guard code == SQLITE_DONE, finished == SQLITE_OK else {
                throw SQLiteError(code: code == SQLITE_DONE ? finished : code, connection: destination.handle)
            }
            return pages
        }
    }

    /// The new directory entry must reach the disk too, or a power cut could lose a copy
    /// that was reported done. (SQLite syncs the file's contents itself.)
    static func syncDirectory(of path: String) {
        let directory = path.contains("/") ? String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]) : "."
        let descriptor = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    /// Removes a failed copy with anything SQLite made beside it. Only called for a file
    /// this process created.
    static func remove(_ path: String) {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            unlink(path + suffix)
        }
    }
}
