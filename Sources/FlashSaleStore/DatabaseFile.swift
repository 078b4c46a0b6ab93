import Glibc
import FlashSaleCore

/// The database file holds buyers' data: create it readable by its owner only (0600)
/// before SQLite opens it (SQLite would use 0644). SQLite gives the -wal and -shm files
/// the same mode as the database.
enum DatabaseFile {
    static func createIfMissing(at path: String) throws(FlashSaleError) {
        guard access(path, F_OK) != 0 else { return }
        let code = createOwnerOnly(path)
        // EEXIST: another process created it between the two calls, which is fine.
        guard code == 0 || code == EEXIST else {
            throw .cantOpen("cannot create the database \(path): \(String(cString: strerror(code)))")
        }
    }

    /// Creates `path` empty with mode 0600, never opening a file that exists (O_EXCL).
    /// Returns 0, or the errno of the failure (EEXIST when the name is taken).
    static func createOwnerOnly(_ path: String) -> Int32 {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return errno }
        close(descriptor)
        return 0
    }
}
