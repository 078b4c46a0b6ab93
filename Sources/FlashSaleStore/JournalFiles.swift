import Glibc
import Synchronization

/// The WAL and its index (`FILE-wal`, `FILE-shm`) this process has open for a database,
/// watched by a long-running process for being removed or replaced under it. SQLite cannot
/// see that: with them removed (an operator's `rm`, a clean-up script), the next process
/// to open the file makes new ones and commits there, while this one goes on in its own,
/// which no other process reads; and when this one closes, it copies its log into the
/// file and removes the new one by name, with every commit the others made (found by
/// probing: `book`s a `serve` or `process --follow` outlived were gone).
struct JournalFiles: Sendable {
    let database: String
    private let log: Int32
    let index: Int32
    /// The files `log` and `index` are: what the names must lead to.
    let files: [FileIdentity]

    /// nil when this process has not both open (the database not read yet, or not in WAL
    /// mode): nothing to watch.
    init?(database path: String) {
        var log = stat(), index = stat()
        guard stat(path + "-wal", &log) == 0, stat(path + "-shm", &index) == 0,
              let logDescriptor = WALIndex.descriptor(of: log), let indexDescriptor = WALIndex.descriptor(of: index) else {
            return nil
        }
        database = path
        self.log = logDescriptor
        self.index = indexDescriptor
        files = [FileIdentity(log), FileIdentity(index)]
        SplitDatabases.watch(self)
    }

    /// Whether the names still lead to the files this process has open. Once they do not,
    /// the database is marked split (`SplitDatabases`) for every connection of the process,
    /// with the files it had.
    func areInPlace() -> Bool {
        JournalFiles.areInPlace(files, of: database)
    }

    /// Whether the names of `path`'s WAL and index still lead to `files` (its WAL's and its
    /// index's, in that order). Once they do not, `path` is marked split.
    static func areInPlace(_ files: [FileIdentity], of path: String) -> Bool {
        let inPlace = zip(["-wal", "-shm"], files).allSatisfy { suffix, file in FileIdentity(of: path + suffix) == file }
        if !inPlace { SplitDatabases.mark(path, had: files) }
        return inPlace
    }

    /// The WAL and index at `path`'s names now, in that order; nil unless both are there.
    static func atNames(of path: String) -> [FileIdentity]? {
        let found = ["-wal", "-shm"].compactMap { FileIdentity(of: path + $0) }
        return found.count == 2 ? found : nil
    }

    /// `areInPlace`, before a commit or as the database is closed: asked only while the
    /// descriptors still lead to the files (a connection closed before may have taken its
    /// WAL's with it, and the number gone to another file, or the WAL made anew).
    fileprivate func look() {
        let stillOpen = zip([log, index], files).allSatisfy { descriptor, file in
            var open = stat()
            return fstat(descriptor, &open) == 0 && FileIdentity(open) == file
        }
        if stillOpen { _ = areInPlace() }
    }

    /// Whether a WAL or an index other than the ones this process had has the names of a
    /// split database's: another process opened it since, and this process's log must not
    /// go into the file. This process's own, left at its name (only the other removed),
    /// takes nothing (found by the follow-up probe: with only the -wal removed, the -shm
    /// left counted, and every commit since the last checkpoint was lost, nobody else
    /// having opened the database).
    static func namesAreTaken(database path: String) -> Bool {
        let had = SplitDatabases.files(of: path)
        return ["-wal", "-shm"].contains { suffix in FileIdentity(of: path + suffix).map { !had.contains($0) } ?? false }
    }
}

/// The databases of this process whose WAL or index was found removed or replaced
/// (`JournalFiles`): their connections commit nothing more, and do not copy their log into
/// the file when they close if others have made new ones (which would mix two histories,
/// and remove the others' log by name).
enum SplitDatabases {
    /// Each database marked, with the WAL and index this process had open for it.
    private static let marked = Mutex<[String: [FileIdentity]]>([:])
    /// Whether any is marked: a commit asks without taking the lock.
    private static let any = Atomic(false)

    /// The journal files being watched, by database: looked at before each commit and as
    /// the database is closed (`Connection`), so that a process that has not looked since
    /// they were removed neither writes over another's log nor, closing (a stream waiting
    /// for input), copies its log over another's and removes the other's by name.
    private static let watched = Mutex<[String: JournalFiles]>([:])
    private static let anyWatched = Atomic(false)

    static func watch(_ files: JournalFiles) {
        watched.withLock { $0[files.database] = files }
        anyWatched.store(true, ordering: .releasing)
    }

    /// Whether `path` is marked, after a look at its watched files (marking it if they are
    /// not in place).
    static func containsAfterLooking(_ path: String) -> Bool {
        if anyWatched.load(ordering: .acquiring), !contains(path) { watched.withLock { $0[path] }?.look() }
        return contains(path)
    }

    static func mark(_ path: String, had files: [FileIdentity]) {
        marked.withLock { $0[path] = files }
        any.store(true, ordering: .releasing)
    }

    static func contains(_ path: String) -> Bool {
        any.load(ordering: .acquiring) && marked.withLock { $0[path] != nil }
    }

    /// The WAL and index this process had for `path` when it was marked.
    static func files(of path: String) -> [FileIdentity] {
        marked.withLock { $0[path] ?? [] }
    }
}
