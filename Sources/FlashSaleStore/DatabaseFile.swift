import Glibc
import FlashSaleCore

/// The database file holds buyers' data: create it readable by its owner only (0600)
/// before SQLite opens it (SQLite would use 0644 less the umask). SQLite gives the -wal
/// and -shm files the database's own mode.
enum DatabaseFile {
    static func createIfMissing(at path: String) throws(FlashSaleError) {
        guard access(path, F_OK) != 0 else { return }
        // No O_EXCL, which refuses a dangling symbolic link instead of creating its
        // target; a file another process made meanwhile is simply opened.
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw .cantOpen("cannot create the database \(path): \(String(cString: strerror(errno)))")
        }
        close(descriptor)
    }
}
