import CSQLite
import FlashSaleCore
import FlashSaleEngine
import Glibc

/// A failed SQLite call: its extended result code, SQLite's message and the SQL, if any.
public struct SQLiteError: StoreError, CustomStringConvertible, Sendable {
    public let extendedCode: Int32
    public let message: String
    public let sql: String?
    /// The operating system's errno behind a failed write or open (0 for anything else):
    /// SQLite reports a full disk during a WAL write or a checkpoint as an I/O error, not
    /// SQLITE_FULL, and a process out of file descriptors as a file it cannot open.
    public let systemErrno: Int32
    /// For "attempt to write a readonly database": the database's shared-memory (-shm)
    /// file, when it is the one that cannot be written and the database can.
    let unwritableSharedMemory: String?
    /// Whether the log at the database's name is another file's (`anotherFilesLog`).
    let isAnotherFilesLog: Bool
    /// For a file SQLite cannot open or write: whether the database is on a read-only file
    /// system. The errno says nothing of it: SQLite tries the -wal again read-only, and
    /// finds none.
    let onReadOnlyFileSystem: Bool

    public var primaryCode: Int32 { extendedCode & 0xFF }

    /// The I/O errors that come from a failed write, sync or truncate: the ones a full disk
    /// or a file size limit cause. SHMSIZE is the wal-index (-shm) file failing to grow.
    private static let failedWrites: Set<Int32> = [
        CSQLITE_IOERR_WRITE, CSQLITE_IOERR_FSYNC, CSQLITE_IOERR_DIR_FSYNC, CSQLITE_IOERR_TRUNCATE, CSQLITE_IOERR_SHMSIZE,
    ]

    init(code: Int32, connection: OpaquePointer?, sql: String? = nil) {
        // First, before anything below can fail and set it again.
        let lastErrno = errno
        extendedCode = connection.map { sqlite3_extended_errcode($0) } ?? code
        message = connection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
            ?? String(cString: sqlite3_errstr(code))
        self.sql = sql
        // Only where a write-side system call failed: other I/O errors (a short read, a
        // corrupt file) have no errno of their own, and an old one would mislead. SQLite
        // records the errno of some failures only (not of a failed COMMIT's WAL write), so
        // the thread's own comes first: Statement.step clears it before each step.
        // A failed open's is always recorded, and is the open's own.
        let recorded = connection.map { sqlite3_system_errno($0) } ?? 0
        systemErrno = SQLiteError.failedWrites.contains(extendedCode) ? (lastErrno != 0 ? lastErrno : recorded)
            : extendedCode & 0xFF == SQLITE_CANTOPEN ? recorded : 0
        unwritableSharedMemory = extendedCode == SQLITE_READONLY ? connection.flatMap(SQLiteError.unwritableSharedMemory) : nil
        onReadOnlyFileSystem = [SQLITE_CANTOPEN, SQLITE_READONLY].contains(extendedCode & 0xFF)
            && connection.map(SQLiteError.isOnReadOnlyFileSystem) == true
        isAnotherFilesLog = false
    }

    private static func isOnReadOnlyFileSystem(_ connection: OpaquePointer) -> Bool {
        guard let name = sqlite3_db_filename(connection, "main"), name.pointee != 0 else { return false }
        var fileSystem = statvfs()
        return statvfs(name, &fileSystem) == 0 && fileSystem.f_flag & UInt(ST_RDONLY) != 0
    }

    /// A process that could only read a WAL database makes its -shm with the database's
    /// mode, read-only, and cannot remove it when it closes; made writable again, the
    /// database then stays read-only through it (found by probing: "check the database's
    /// permissions", which were right).
    private static func unwritableSharedMemory(_ connection: OpaquePointer) -> String? {
        guard let name = sqlite3_db_filename(connection, "main"), name.pointee != 0 else { return nil }
        let database = String(cString: name)
        let sharedMemory = database + "-shm"
        guard access(database, W_OK) == 0, access(sharedMemory, F_OK) == 0, access(sharedMemory, W_OK) != 0 else { return nil }
        return sharedMemory
    }

    /// A failure SQLite itself does not report, in `message`'s words.
    init(code: Int32, message: String) {
        self.init(code: code, message: message, isAnotherFilesLog: false)
    }

    private init(code: Int32, message: String, isAnotherFilesLog: Bool) {
        extendedCode = code
        self.message = message
        sql = nil
        systemErrno = 0
        unwritableSharedMemory = nil
        onReadOnlyFileSystem = false
        self.isAnotherFilesLog = isAnotherFilesLog
    }

    /// The log at a database's name is another file's (`Connection.refuseAnotherFilesLog`):
    /// nothing is lost and nothing to check in the path or permissions; the message says
    /// what mends it.
    static func anotherFilesLog(_ message: String) -> SQLiteError {
        SQLiteError(code: SQLITE_CANTOPEN, message: message, isAnotherFilesLog: true)
    }

    public var description: String {
        "SQLite error \(extendedCode): \(message)" + (sql.map { " in \($0)" } ?? "")
    }

    /// What SQLite reported, as the contract sees it: busy, disk trouble, a file that cannot
    /// be opened, written or read as a database; nil for anything else, a bug.
    public var failure: StoreFailure? {
        if isAnotherFilesLog { return .unwritable(detail: message) }
        if let sharedMemory = unwritableSharedMemory {
            return .unwritable(detail: "its shared-memory file \(sharedMemory) cannot be written, though the database can (a "
                               + "process that could only read the database left it): remove it while no process has the "
                               + "database open, or make it writable")
        }
        return switch primaryCode {
        case SQLITE_BUSY, SQLITE_LOCKED: .busy
        case SQLITE_FULL: .full(detail: message)
        case SQLITE_IOERR where systemErrno == ENOSPC: .full(detail: message)
        case SQLITE_IOERR where systemErrno == EFBIG: .fileSizeLimit(detail: message)
        case SQLITE_IOERR: .io(detail: message)
        // Found by probing: a database on a read-only mount was said to need its path and
        // permissions checked, which were right. Without its -wal and -shm there, SQLite
        // cannot even read it; with them, it reads and cannot write.
        case SQLITE_CANTOPEN where onReadOnlyFileSystem:
            .unwritable(detail: "it is on a read-only file system, where SQLite cannot make the -wal and -shm files it needs "
                        + "beside a WAL database even to read it: remount it read-write, or copy the database elsewhere")
        case SQLITE_READONLY where onReadOnlyFileSystem:
            .unwritable(detail: "it is on a read-only file system, where it can be read and not written: remount it "
                        + "read-write, or copy the database elsewhere")
        // "attempt to write a readonly database", said to a command that only reads (found
        // by probing): SQLite could not make the -wal file beside a WAL database, which it
        // opens even to read, or a rollback journal's -journal.
        case SQLITE_READONLY where extendedCode == CSQLITE_READONLY_DIRECTORY:
            .cantOpen(detail: "its directory cannot be written, where SQLite makes its -wal or -journal file (a WAL database's "
                      + "even to read it)")
        // Not the file's fault, and nothing about it to check (found by probing: `ulimit -n 5`
        // said to check the database's path and permissions).
        case SQLITE_CANTOPEN where systemErrno == EMFILE || systemErrno == ENFILE:
            .io(detail: "no file descriptor is free to open the database (\(String(cString: strerror(systemErrno)).lowercased())); "
                + "raise ulimit -n")
        case SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY, SQLITE_AUTH: .cantOpen(detail: message)
        case SQLITE_NOTADB, SQLITE_CORRUPT: .unusable(detail: message)
        // A table or column of flashsale's schema gone (changed by hand): as on PostgreSQL,
        // not this program's failure (found by probing: an internal error, exit 1).
        case SQLITE_ERROR where message.hasPrefix("no such table: ") || message.hasPrefix("no such column: ")
                                || message.contains(" has no column named "):
            .unusable(detail: message)
        default: nil
        }
    }
}
