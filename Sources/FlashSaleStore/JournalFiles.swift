import Glibc
import FlashSaleCore
import Synchronization

/// The WAL and its index (`FILE-wal`, `FILE-shm`) this process has open for a database,
/// watched by a long-running process for being removed or replaced under it. SQLite cannot
/// see that: with them removed (an operator's `rm`, a clean-up script), the next process
/// to open the file makes new ones and commits there, while this one goes on in its own,
/// which no other process reads; and when this one closes, it copies its log into the
/// file and removes the new one by name, with every commit the others made (found by
/// probing: `book`s a `serve` or `process --follow` outlived were gone).
struct JournalFiles {
    private let database: String
    private let log: Int32
    private let index: Int32

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
    }

    /// Whether the names still lead to the files this process has open. Once they do not,
    /// the database is marked split (`SplitDatabases`) for every connection of the process,
    /// with the files it had.
    func areInPlace() -> Bool {
        let had = [log, index].map { descriptor in
            var open = stat()
            return fstat(descriptor, &open) == 0 ? FileIdentity(open) : nil
        }
        let inPlace = zip(["-wal", "-shm"], had).allSatisfy { suffix, file in file != nil && FileIdentity(of: database + suffix) == file }
        if !inPlace { SplitDatabases.mark(database, had: had.compactMap { $0 }) }
        return inPlace
    }

    /// What became of this process's log once its names were found free or taken
    /// (`settle(through:)`).
    enum Settling {
        /// Copied into the file: nothing is lost, whoever opens the database next.
        case copied
        /// Left for the close to copy in, if the names are still free then: another
        /// process had the database open (one from before, which shares this log, or one
        /// that began to open it in that instant) past the busy timeout.
        case leftToClose
        /// Another process has made new ones: this process's log must not go into the file.
        case split
    }

    /// Copies this process's log into the file at once, while no other process can begin
    /// to open the database (`DatabaseFileLocks`), once every other has closed it, if
    /// nobody has made new files at the names yet. Left to the close, it was lost when
    /// another process opened the database before that: the close must then keep the new
    /// files, which the other's commits are in (found by a CI run).
    func settle(through db: Connection) -> Settling {
        guard !Self.namesAreTaken(database: database) else { return .split }
        var file = stat()
        guard stat(database, &file) == 0, let descriptor = WALIndex.descriptor(of: file),
              DatabaseFileLocks.holdOpenersOff(descriptor) else {
            return .leftToClose
        }
        defer { DatabaseFileLocks.letOpenersIn(descriptor) }
        let deadline = MonotonicClock.nanoseconds() + UInt64(max(0, db.busyTimeout.milliseconds)) * 1_000_000
        while DatabaseFileLocks.isOpenElsewhere(descriptor) {
            guard MonotonicClock.nanoseconds() < deadline else { return .leftToClose }
            usleep(1_000)
        }
        // One that opened it before the hold has made its files by now, and closed it.
        guard !Self.namesAreTaken(database: database) else { return .split }
        return db.copyLogIntoFile() ? .copied : .leftToClose
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
