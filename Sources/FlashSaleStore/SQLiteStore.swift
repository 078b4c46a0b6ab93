import Glibc
import FlashSaleCore
import FlashSaleEngine

/// The store on one SQLite file. A connection runs one transaction at a time, and SQLite
/// one writer at a time per file: `BEGIN IMMEDIATE` takes the write lock up front. It
/// holds no rule of the sale: `Engine` decides, this reads and writes rows.
public final class SQLiteStore: Store {
    let db: Connection
    /// The statements run once per request, each prepared on first use.
    let rowStatements: RowStatements
    /// The one transaction object of this connection, made on first use.
    private lazy var transaction = SQLiteTransaction(store: self)

    /// Opens and migrates the database at `path`. With `createIfMissing`, a missing file is
    /// created (mode 0600) and given the schema; without, a path with no flashsale database
    /// is refused (StoreFailure.missingDatabase) and nothing is created.
    public init(path: String, busyTimeout: Span, createIfMissing: Bool = false) throws {
        try DatabaseFile.prepare(path, create: createIfMissing)
        do {
            db = try SQLiteStore.migrated(path, busyTimeout: busyTimeout, create: createIfMissing)
        } catch {
            // A file that is not a flashsale database is named, as a file that cannot be
            // opened is: SQLite's "file is not a database" does not say which.
            guard case .unusable(let detail)? = (error as? StoreFailure) ?? (error as? SQLiteError)?.failure else { throw error }
            throw StoreFailure.unusable(detail: "\(path): \(detail)")
        }
        rowStatements = RowStatements(db)
    }

    /// A connection to the database at `path`, its schema made or brought up to date, its
    /// WAL and index noted.
    private static func migrated(_ path: String, busyTimeout: Span, create: Bool) throws -> Connection {
        let db = try Connection(path: path, busyTimeout: busyTimeout)
        try Schema.migrate(db, create: create)
        db.noteJournalFiles()
        return db
    }

    /// Whether this connection has inserted, updated or deleted a row: once a command has
    /// succeeded, committed changes (every failure rolls its transaction back).
    public var hasChanged: Bool { db.totalChanges > 0 }

    public var readsWaitForWriters: Bool { false }

    /// Never asked: a file's COMMIT is answered, whatever becomes of the process after.
    public func committed(unanswered error: any Error) throws -> Bool? { nil }

    public func beginWrite() throws -> any StoreTransaction {
        try db.beginWrite()
        transaction.forgetKnownBookings()
        return transaction
    }

    public func read<T>(_ body: (any StoreReading) throws -> T) throws -> T {
        try db.readTransaction {
            transaction.forgetKnownBookings()
            return try body(transaction)
        }
    }

    public func changeWatcher() throws -> any ChangeWatcher {
        try DataVersionWatcher(db)
    }

    func count(_ sql: String, _ parameters: KeyValuePairs<String, SQLValue>) throws -> Int64 {
        try db.firstRow(sql, parameters) { $0.int64(0) } ?? 0
    }

    /// The sale, or not found; for the read-only reports of this store.
    func requireSale(_ id: SaleID) throws -> Sale {
        try transaction.requireSale(id)
    }

    func allSales() throws -> [Sale] {
        try transaction.allSales()
    }
}

/// `PRAGMA data_version` changes whenever another connection commits to the file: a look
/// at shared memory, so a follower may ask often.
///
/// A follower of a file removed or replaced under it (`rm`, `mv` of another onto its name)
/// would wait for ever on a database nobody else can reach: the name is checked too, a
/// `stat` each look, and no longer naming the file opened is exit 73.
struct DataVersionWatcher: ChangeWatcher {
    private let db: Connection
    private var seen: Int64
    private let file: FileIdentity?
    private let journal: JournalFiles?

    /// Reads the version now: make it before the first query, so that a commit landing
    /// after that query still counts as new.
    init(_ db: Connection) throws {
        self.db = db
        seen = try db.dataVersion()
        file = FileIdentity(of: db.path)
        journal = JournalFiles(database: db.openedFile)
    }

    mutating func hasChanged() throws -> Bool {
        if let file, FileIdentity(of: db.path) != file {
            throw movedFailure(db.settleMovedFile() ?? .removed)
        }
        if let journal, !journal.areInPlace() {
            let what = "the -wal or -shm of \(db.path) was removed or replaced while this process had it open"
            let never = "(never remove them while a process has the database open)"
            switch journal.settle(through: db) {
            case .copied:
                throw StoreFailure.logRemoved(detail: "\(what); stopped, its log copied into the file first: no commit is lost \(never)")
            case .leftToClose:
                throw StoreFailure.logRemoved(detail: "\(what); stopped: its log goes into the file as the last process that "
                                                  + "has it closes the database, unless another process opens it first \(never)")
            case .split:
                throw StoreFailure.split(detail: "\(what), and another process has made new ones; stopped, keeping what is in "
                                             + "them: the commits in the removed log since SQLite last copied it into the file "
                                             + "(this process's and any other's) are lost \(never)")
            }
        }
        let version = try db.dataVersion()
        defer { seen = version }
        return version != seen
    }
}

extension DataVersionWatcher {
    /// The file followed is no longer at its path: what became of it, and of this
    /// process's log (`Connection.settleMovedFile`).
    private func movedFailure(_ settling: MovedFileSettling) -> StoreFailure {
        let never = "(never move a database while a process has it open)"
        return switch settling {
        case .copied(let path):
            .moved(detail: "\(db.path) was moved\(path.map { " to \($0)" } ?? "") while it was followed; stopped, its log "
                   + "copied into it first: no commit is lost; start again on it where it is now")
        case .movedWithItsLog(let path):
            .moved(detail: "\(db.path) was moved to \(path) with its log while it was followed; stopped: no commit is lost; "
                   + "start again on it where it is now")
        case .split:
            .split(detail: "\(db.path) was moved while it was followed, and another process has opened it where it is now "
                   + "with a log of its own (or where it is cannot be told); stopped: this process's log does not go into it, "
                   + "and the commits in that log since SQLite last copied it into the file are lost \(never)")
        case .left:
            .moved(detail: "\(db.path) was moved while it was followed; stopped: its log goes into it as the last process that "
                   + "has the log closes the database \(never)")
        // The commits not yet copied into the file went with it: not said to stay (found by
        // probing: a move to another file system, which removes the file, said so).
        case .removed:
            .split(detail: "\(db.path) was removed or replaced while it was followed (a move to another file system removes "
                   + "it): the commits in its log since SQLite last copied it into the file went with it; start again on the "
                   + "one now there")
        }
    }
}

/// Which file a name leads to: its device and inode.
struct FileIdentity: Equatable, Sendable {
    let device: UInt
    let inode: UInt

    init?(of path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        self.init(status)
    }

    init(_ status: stat) {
        self.init(device: UInt(status.st_dev), inode: UInt(status.st_ino))
    }

    init(device: UInt, inode: UInt) {
        self.device = device
        self.inode = inode
    }
}
