import Glibc
import FlashSaleCore
import FlashSaleEngine

/// The file at the database path, checked (and, if asked, created) before SQLite opens it.
/// SQLite never creates it (Connection opens without SQLITE_OPEN_CREATE), so a command that
/// may not create a database cannot turn a mistyped path into an empty one.
enum DatabaseFile {
    /// The file made here, if `create` made one (and it was not there before): what
    /// `removeUnfinished` may remove.
    @discardableResult
    static func prepare(_ path: String, create: Bool) throws -> FileIdentity? {
        var status = stat()
        if stat(path, &status) == 0 {
            // SQLite would open /dev/null and make /dev/null-journal beside it, or wait on a FIFO.
            guard status.st_mode & S_IFMT == S_IFREG else {
                throw FlashSaleError.cantOpen("cannot open the database \(path): it is not a regular file")
            }
            // SQLite keeps the WAL and its index beside the name it opens: through two hard
            // links, two processes each had a WAL of their own, so that one item was sold
            // twice and one's commits were later lost (found by probing; SQLite's "How To
            // Corrupt", 2.4). A symbolic link is followed to the one name, and is fine.
            guard status.st_nlink <= 1 else {
                throw FlashSaleError.cantOpen("cannot open the database \(Quoted(path, keeping: .max)): the file has \(status.st_nlink) "
                                              + "names (hard links), and SQLite would keep a log beside each as if they were "
                                              + "different databases; remove the other names, or use a symbolic link")
            }
            return nil
        }
        let code = errno
        guard code == ENOENT else {
            throw FlashSaleError.cantOpen("cannot open the database \(path): \(String(cString: strerror(code)))")
        }
        guard create else { throw StoreFailure.missingDatabase(path: path) }
        // SQLite makes the schema with NAME-journal beside the file, and a name without room
        // for it failed with "unable to open database file" and left an empty file behind,
        // which later commands then took for a database that was never made (probe).
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard name.utf8.count <= maximumNewNameBytes else {
            throw FlashSaleError.usage("a new database's file name takes at most \(maximumNewNameBytes) bytes, room for the "
                                       + "-journal SQLite makes beside it; this one has \(name.utf8.count)")
        }
        // So does the whole path, from the root, within SQLite's 512 bytes (probe).
        let absolute = path.hasPrefix("/") ? path.utf8.count : workingDirectoryBytes() + 1 + path.utf8.count
        guard absolute <= maximumNewPathBytes else {
            throw FlashSaleError.usage("a new database's path takes at most \(maximumNewPathBytes) bytes from the root, room for "
                                       + "the -journal SQLite makes beside it; this one has \(absolute)")
        }
        // 0600: it holds buyers' data, and SQLite gives the -wal and -shm it makes the
        // database's own mode. O_EXCL tells a file made here from one another process made
        // meanwhile, which is simply opened; it also refuses a dangling symbolic link, whose
        // target is then created without it (and is not known to be this process's).
        var descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        let madeHere = descriptor >= 0
        if !madeHere, errno == EEXIST { descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600) }
        guard descriptor >= 0 else {
            throw FlashSaleError.cantOpen("cannot create the database \(Quoted(path, keeping: .max)): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var made = stat()
        return madeHere && fstat(descriptor, &made) == 0 ? FileIdentity(made) : nil
    }

    /// Removes the file `prepare` made, with what SQLite left beside it, once it could not
    /// be given its schema (a full disk): found by probing, `init` said "nothing was
    /// written" and left an empty database at the name. Not if another process has opened
    /// it meanwhile (which may have made it a database), nor while one begins to.
    static func removeUnfinished(_ path: String, made: FileIdentity) {
        // Read and write: the lock below is a write lock.
        let descriptor = open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, FileIdentity(status) == made, DatabaseFileLocks.holdOpenersOff(descriptor) else { return }
        defer { DatabaseFileLocks.letOpenersIn(descriptor) }
        guard !DatabaseFileLocks.isOpenElsewhere(descriptor) else { return }
        for suffix in ["-wal", "-shm", "-journal", ""] { unlink(path + suffix) }
    }

    /// A file name's 255 bytes, less `-journal`.
    static let maximumNewNameBytes = 247
    /// SQLite's longest path (512 bytes), less `-journal`.
    static let maximumNewPathBytes = 504

    private static func workingDirectoryBytes() -> Int {
        guard let directory = getcwd(nil, 0) else { return 0 }
        defer { free(directory) }
        return strlen(directory)
    }
}
