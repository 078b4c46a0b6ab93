import Glibc
import FlashSaleCore

/// The database file holds buyers' data: create it readable by its owner only (0600)
/// before SQLite opens it (SQLite would use 0644). SQLite gives the -wal and -shm files
/// the same mode as the database.
enum DatabaseFile {
    static func createIfMissing(at path: String) throws(FlashSaleError) {
        guard access(path, F_OK) != 0 else { return }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        // EEXIST: another process created it between the two calls, which is fine.
        guard descriptor >= 0 || errno == EEXIST else {
            let reason = String(cString: strerror(errno))
            throw .cantOpen("cannot create the database \(path): \(reason)")
        }
        if descriptor >= 0 { close(descriptor) }
    }
}
