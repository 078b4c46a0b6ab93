import CSQLite
import FlashSaleCore
import Glibc

/// A failed SQLite call: its extended result code, SQLite's message and the SQL, if any.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public let extendedCode: Int32
    public let message: String
    public let sql: String?
    /// The operating system's errno behind an I/O error: SQLite reports a full disk during
    /// a WAL write or a checkpoint as an I/O error, not SQLITE_FULL. Read only for those.
    public let systemErrno: Int32

    public var primaryCode: Int32 { extendedCode & 0xFF }

    init(code: Int32, connection: OpaquePointer?, sql: String? = nil) {
        extendedCode = connection.map { sqlite3_extended_errcode($0) } ?? code
        message = connection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
            ?? String(cString: sqlite3_errstr(code))
        self.sql = sql
        // SQLite records the errno of some failures only (not of a failed COMMIT's WAL
        // write); then the thread's errno, read right after the failed call, is that of
        // the last system call that failed in it.
        let recorded = connection.map { sqlite3_system_errno($0) } ?? 0
        systemErrno = recorded != 0 ? recorded : errno
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
