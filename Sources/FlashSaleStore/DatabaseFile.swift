import CSQLite
import Glibc
import FlashSaleCore
import FlashSaleEngine
import Synchronization

/// The file at the database path, checked (and, if asked, created) before SQLite opens it.
/// SQLite never creates it (Connection opens without SQLITE_OPEN_CREATE), so a command that
/// may not create a database cannot turn a mistyped path into an empty one.
enum DatabaseFile {
    static func prepare(_ path: String, create: Bool) throws {
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
                                              + "different databases; remove the other names (a .NAME.partial-XXXXXX beside it "
                                              + "is one a flashsale killed as it named a new database left), or use a symbolic link")
            }
            return
        }
        let code = errno
        guard code == ENOENT else {
            throw FlashSaleError.cantOpen("cannot open the database \(path): \(String(cString: strerror(code)))")
        }
        guard create else { throw StoreFailure.missingDatabase(path: path) }
        // Checked where it is made: a dangling link's target (found by probing: a long
        // target's name was not).
        let target = creationTarget(of: path)
        // SQLite makes the schema with NAME-journal beside the file.
        try PartialFile.refuseTooLong(target, "a new database", nameBytes: PartialFile.maximumNameBytes,
                                      nameRoom: "room for the -journal SQLite makes beside it",
                                      pathRoom: "room for the -journal SQLite makes beside it")
        try make(target)
    }

    /// Makes a new database at `path` whole before it has the name: its schema made under a
    /// temporary name beside it (`PartialFile`, mode 0600: it holds buyers' data, and
    /// SQLite gives the -wal and -shm it makes the database's own mode), copied into the
    /// file from its log, synced, then given the name. Found by probing: `init` on a
    /// full disk said "nothing was written" and left an empty file at the name, which later
    /// commands called no flashsale database; and removing it again afterwards raced other
    /// processes making the same database. One that another process named first is theirs,
    /// made the same way, and this one goes.
    private static func make(_ path: String) throws {
        // A stop signal waits for these milliseconds: it left the temporary files behind
        // (found by probing). It comes once the name is taken or the files are gone.
        var stops = sigset_t(), previous = sigset_t()
        sigemptyset(&stops)
        for signal in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&stops, signal) }
        pthread_sigmask(SIG_BLOCK, &stops, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        try DatabaseCreations.underWay {
            let partial = try PartialFile(for: path, what: "database")
            do {
                try makeSchema(in: partial.path)
                try partial.sync()
                if try !partial.publish(othersMayOpenIt: true) { partial.discard() }
            } catch {
                partial.discard()
                throw error
            }
        }
    }

    /// The schema, made in the empty file at `path`, whole in the file (not in a log left
    /// behind under that name), the connection closed again.
    private static func makeSchema(in path: String) throws {
        let db = try Connection(path: path, busyTimeout: .seconds(5))
        try Schema.migrate(db, create: true)
        let copied = db.copyLogIntoFile()
        guard copied == SQLITE_OK else { throw SQLiteError(code: copied, connection: db.handle) }
    }

    /// The name a new database takes: `path`, or, for a symbolic link to nothing, the file
    /// it leads to (made there, as opening it would; SQLite keeps the log beside that file).
    private static func creationTarget(of path: String) -> String {
        var target = path
        // As the kernel, up to 40 links in a row.
        for _ in 0..<40 {
            var link = stat()
            guard lstat(target, &link) == 0, link.st_mode & S_IFMT == S_IFLNK else { return target }
            guard let leadsTo = linkTarget(target) else { return target }
            target = leadsTo.hasPrefix("/") ? leadsTo : PartialFile.directoryPrefix(of: target) + leadsTo
        }
        return target
    }

    /// What the symbolic link at `path` holds, as written; nil when it cannot be read.
    static func linkTarget(_ path: String) -> String? {
        var bytes = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &bytes, bytes.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: bytes.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The new databases this process is making (`DatabaseFile.make`). Their own thread's stop
/// signals wait for them, blocked; a command whose signals another thread waits for
/// (`rehearse`) ended the process meanwhile, and left the temporary files (found by
/// probing): that thread waits for them too before the process exits.
public enum DatabaseCreations {
    private static let lock = Mutex(())

    static func underWay(_ body: () throws -> Void) throws {
        try lock.withLock { _ in try body() }
    }

    /// Returns once no new database is being made (each takes milliseconds).
    public static func waitForThoseUnderWay() {
        lock.withLock { _ in }
    }
}
