import CSQLite
import FlashSaleCore
import Glibc

/// A failed SQLite call: its extended result code, SQLite's message and the SQL, if any.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public let extendedCode: Int32
    public let message: String
    public let sql: String?
    /// The operating system's errno behind a failed write (0 for anything else): SQLite
    /// reports a full disk during a WAL write or a checkpoint as an I/O error, not SQLITE_FULL.
    public let systemErrno: Int32

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
        let recorded = connection.map { sqlite3_system_errno($0) } ?? 0
        systemErrno = SQLiteError.failedWrites.contains(extendedCode) ? (lastErrno != 0 ? lastErrno : recorded) : 0
    }

    public var description: String {
        "SQLite error \(extendedCode): \(message)" + (sql.map { " in \($0)" } ?? "")
    }

    /// The contract's exit codes for what SQLite can report: busy → 75, disk trouble → 74,
    /// a file that cannot be opened, written or read as a database → 73, anything else is a bug.
    public var flashSaleError: FlashSaleError {
        switch primaryCode {
        case SQLITE_BUSY, SQLITE_LOCKED:
            .busy("the database is locked by another process; retry, or raise --busy-timeout")
        case SQLITE_FULL:
            .io("the disk is full; nothing was written (\(message))")
        case SQLITE_IOERR where systemErrno == ENOSPC:
            .io("the disk is full; nothing was written (\(message))")
        case SQLITE_IOERR where systemErrno == EFBIG:
            .io("the database file reached the file size limit (ulimit -f); nothing was written (\(message))")
        case SQLITE_IOERR:
            .io("I/O error, nothing was written: \(message)")
        case SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY, SQLITE_AUTH:
            .cantOpen("cannot use the database: \(message); check the path and its permissions")
        case SQLITE_NOTADB, SQLITE_CORRUPT:
            .cantOpen("the file is not a usable flashsale database: \(message)")
        default:
            .internalFailure(description)
        }
    }
}
