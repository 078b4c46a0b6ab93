import CSQLite
import FlashSaleCore
import FlashSaleEngine
import Glibc

/// One SQLite connection, set up the way every flashsale process needs it:
/// `synchronous=FULL` (a reported success is on disk; the file's WAL mode is its schema's),
/// a busy timeout, and prepared statements cached for the life of the connection.
public final class Connection {
    let handle: OpaquePointer
    let path: String
    /// The file SQLite opened, symbolic links followed: its WAL and index are beside it
    /// (found by probing: watched through a link's name, their removal went unseen).
    let openedFile: String
    let busyTimeout: Span
    private var statements: [String: Statement] = [:]
    /// The busy handler's state, which SQLite holds a pointer to while the handle lives.
    private let busyWait: BusyWait
    private var turns = WriteTurns()
    /// `totalChanges` when the open write transaction began.
    private var changesAtBegin: Int64 = 0
    /// Whether this connection has committed a durable transaction that changed a row.
    private var committedChanges = false
    /// How many times the SQL function `counted(value)` ran (it returns its value): a way
    /// to count the rows an INSERT ... SELECT gives one value of a CASE, as SQLite writes
    /// them, without reading them back.
    let counted = Tally()
    /// The frames in the WAL after this connection's last commit without a disk sync, as
    /// SQLite's WAL hook tells it (`writeTransactionWithoutSync`).
    private let walFrames = Tally()
    /// The WAL and index at the database's names once this connection had opened them
    /// (`noteJournalFiles`): what the names must still lead to at each commit and as it
    /// closes.
    private(set) var journalFiles: [FileIdentity]?
    /// The database file, noted with them: what is settled once its name leads elsewhere
    /// (`settleMovedFile`).
    private(set) var fileIdentity: FileIdentity?

    final class Tally {
        var count: Int64 = 0
    }

    /// `path` as a name SQLite takes for a file and nothing else: it reads `:memory:` as a
    /// database in memory, and (Debian builds it with SQLITE_USE_URI) `file:x.db?mode=memory`
    /// as a URI, so a command on either would report success and keep nothing, or write to
    /// another file than the one flashsale checked and created.
    static func fileName(_ path: String) -> String {
        path.hasPrefix("/") ? path : "./" + path
    }

    /// SQLite's memory statistics take a global mutex twice per allocation, about a hundred
    /// times per hold, and nothing here reads them. Settable only before SQLite starts,
    /// which its first connection does: every connection is opened after this has run.
    private static let withoutMemoryStatistics: Void = {
        _ = csqlite_config_memstatus(0)
    }()

    /// Opens the database file at `path`, which must exist: SQLite is never asked to create
    /// it (DatabaseFile does, for the commands that may). A failure closes the handle.
    public convenience init(path: String, busyTimeout: Span) throws(SQLiteError) {
        do {
            try self.init(opening: Connection.fileName(path), path: path, busyTimeout: busyTimeout)
        } catch where error.primaryCode == SQLITE_CANTOPEN && PartialFile.pathBytes(of: path) > PartialFile.maximumPathBytes {
            // SQLite says only "unable to open database file" (found by probing: a database
            // copied to a deeper directory could no longer be opened, and nothing said why).
            throw SQLiteError(code: SQLITE_CANTOPEN, message: "its path takes \(PartialFile.pathBytes(of: path)) bytes from the "
                                  + "root, more than the \(PartialFile.maximumPathBytes) SQLite opens; move it nearer the root")
        }
    }

    /// A database of its own in memory, gone when it is closed: for the schema that a file
    /// is compared with (`Schema.objects`).
    static func inMemory() throws(SQLiteError) -> Connection {
        try Connection(opening: ":memory:", path: ":memory:", busyTimeout: .seconds(0))
    }

    private init(opening name: String, path: String, busyTimeout: Span) throws(SQLiteError) {
        Connection.withoutMemoryStatistics
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(name, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let error = SQLiteError(code: code, connection: handle)
            sqlite3_close_v2(handle)
            throw error
        }
        self.handle = handle
        self.path = path
        // SQLite keeps the WAL and its index beside the file a symbolic link leads to.
        openedFile = sqlite3_db_filename(handle, "main").map { String(cString: $0) } ?? path
        self.busyTimeout = busyTimeout
        busyWait = BusyWait(timeout: busyTimeout)
        sqlite3_extended_result_codes(handle, 1)
        // Looks every millisecond, where SQLite's own busy timeout backs off to 100 ms (see WriteTurns).
        sqlite3_busy_handler(handle, { context, previous in
            guard let context else { return 0 }
            return Unmanaged<BusyWait>.fromOpaque(context).takeUnretainedValue().lookAgain(previous: previous) ? 1 : 0
        }, Unmanaged.passUnretained(busyWait).toOpaque())
        // Not deterministic, so that SQLite runs it for each row it is asked for; direct
        // only, so that no schema object can. Made before any statement is prepared, since
        // making a function expires every prepared statement.
        let counting = sqlite3_create_function_v2(
            handle, "counted", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, Unmanaged.passUnretained(counted).toOpaque(),
            { context, _, arguments in
                sqlite3_user_data(context).map { Unmanaged<Tally>.fromOpaque($0).takeUnretainedValue().count += 1 }
                sqlite3_result_value(context, arguments?[0])
            }, nil, nil, nil)
        let adding = counting == SQLITE_OK ? UsersAdded.register(on: handle) : counting
        // Every stored property is set by now, so a throw from here on runs `deinit`,
        // which closes the handle.
        guard adding == SQLITE_OK else { throw SQLiteError(code: adding, connection: handle) }
        try refuseAnotherFilesLog()
        // Per connection, not stored in the file: every process must ask for FULL itself.
        try execute("PRAGMA synchronous = FULL")
        // The statement journal of a multi-row INSERT inside a long transaction (bulk
        // submit) in memory, not in a temporary file written page by page.
        try execute("PRAGMA temp_store = MEMORY")
    }

    deinit {
        statements.removeAll()
        settleMovedFile()
        lookAtTheJournalNames()
        keepTheLogOfASplitDatabase()
        sqlite3_close_v2(handle)
    }

    /// A database whose WAL or index was removed or replaced while open (`SplitDatabases`)
    /// is not checkpointed on close when new ones have its names: SQLite would copy this
    /// connection's log, of another history, over the pages the new log's commits rest on,
    /// and remove the new log by name. The others' commits are kept, this process's since
    /// its last checkpoint lost: the names are the database. With the names free (nobody
    /// opened it since), the log is copied in as ever, and nothing is lost.
    private func keepTheLogOfASplitDatabase() {
        guard SplitDatabases.containsAfterLooking(openedFile), JournalFiles.namesAreTaken(database: openedFile) else { return }
        csqlite_checkpoint_on_close(handle, 0)
    }

    /// Notes the WAL and index this connection has opened (by their names, just after its
    /// first read opened them). A command that is not watched (`JournalFiles`) looks at
    /// the names again before each commit and as it closes: found by probing, a `book`
    /// that waited for the lock while the -wal and -shm were removed committed into the
    /// removed log, exit 0, its booking lost; and a command closing last copied that log
    /// into the file and removed by name the new log of a command that had committed
    /// since. The database file is noted too (`settleMovedFile`). Seven `stat`s a `book`,
    /// against its milliseconds.
    func noteJournalFiles() {
        journalFiles = JournalFiles.atNames(of: openedFile)
        fileIdentity = FileIdentity(of: openedFile)
    }

    /// Marks the database split once the names no longer lead to the noted files.
    private func lookAtTheJournalNames() {
        guard let journalFiles, !SplitDatabases.contains(openedFile) else { return }
        _ = JournalFiles.areInPlace(journalFiles, of: openedFile)
    }

    /// How long the database file is once every commit in the WAL is copied into it.
    func bytesOnceCopied() throws -> Int64 {
        let pages = try firstRow("PRAGMA page_count") { $0.int64(0) } ?? 0
        let pageSize = try firstRow("PRAGMA page_size") { $0.int64(0) } ?? 0
        return pages * pageSize
    }

    /// Copies every commit in the WAL into the database file, waiting (as for the busy
    /// timeout) for the transactions of those who share it: SQLite's result code, OK once
    /// everything is copied.
    func copyLogIntoFile() -> Int32 {
        errno = 0 // so that a failure's errno is its own (see SQLiteError.systemErrno)
        var logged: Int32 = 0, copied: Int32 = 0
        let code = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_FULL, &logged, &copied)
        return code == SQLITE_OK && logged != copied ? SQLITE_BUSY : code
    }

    /// A cached prepared statement for `sql` (which never contains input: values are bound).
    func statement(_ sql: String) throws(SQLiteError) -> Statement {
        if let cached = statements[sql] { return cached }
        let statement = try Statement(connection: handle, sql: sql)
        statements[sql] = statement
        return statement
    }

    /// Runs a statement that returns no rows.
    public func execute(_ sql: String, _ parameters: KeyValuePairs<String, SQLValue> = [:]) throws(SQLiteError) {
        let statement = try statement(sql)
        try statement.bind(parameters)
        defer { statement.reset() }
        while try statement.step() {}
    }

    /// Calls `body` for each row, as SQLite produces it (constant memory).
    public func forEachRow(_ sql: String, _ parameters: KeyValuePairs<String, SQLValue> = [:], _ body: (Row) throws -> Void) throws {
        let statement = try statement(sql)
        try statement.bind(parameters)
        defer { statement.reset() }
        while try statement.step() {
            try body(Row(statement: statement))
        }
    }

    public func rows<T>(_ sql: String, _ parameters: KeyValuePairs<String, SQLValue> = [:], _ decode: (Row) throws -> T) throws -> [T] {
        var result: [T] = []
        try forEachRow(sql, parameters) { result.append(try decode($0)) }
        return result
    }

    public func firstRow<T>(_ sql: String, _ parameters: KeyValuePairs<String, SQLValue> = [:], _ decode: (Row) throws -> T) throws -> T? {
        let statement = try statement(sql)
        try statement.bind(parameters)
        defer { statement.reset() }
        return try statement.step() ? try decode(Row(statement: statement)) : nil
    }

    /// The rowid the last INSERT made.
    public var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Whether a transaction is open on this connection.
    var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Changes whenever another connection commits to the database: a cheap way for a
    /// waiting process to know whether there is anything new to look at.
    public func dataVersion() throws -> Int64 {
        try firstRow("PRAGMA data_version") { $0.int64(0) } ?? 0
    }

    /// The number of rows every INSERT, UPDATE and DELETE on this connection has changed.
    public var totalChanges: Int64 { Int64(sqlite3_total_changes64(handle)) }

    /// The number of rows the last INSERT, UPDATE or DELETE changed.
    public var changes: Int64 { Int64(sqlite3_changes64(handle)) }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock up front (waiting up to
    /// the busy timeout), so two writers never both read and then collide on upgrade.
    /// Anything thrown rolls back everything `body` did.
    public func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        try beginWrite()
        do {
            let result = try body()
            try commit()
            return result
        } catch {
            rollback()
            throw error
        }
    }

    /// `BEGIN IMMEDIATE`, once other writers have had their turn (see WriteTurns).
    func beginWrite() throws {
        try turns.waitForTurn(dataVersion: dataVersion)
        try execute("BEGIN IMMEDIATE")
        turns.took()
        changesAtBegin = totalChanges
    }

    func commit() throws(SQLiteError) {
        try commit(durable: true)
    }

    private func commit(durable: Bool) throws(SQLiteError) {
        defer { turns.letGo() }
        try checkFileIsInPlace()
        let changed = totalChanges != changesAtBegin
        try execute("COMMIT")
        if durable, changed, !committedChanges {
            committedChanges = true
            csqlite_checkpoint_on_close(handle, 1)
        }
    }

    /// A database file removed or renamed while open takes commits as ever, into the file
    /// it was, where nothing will find them (a long-running `serve` answered 201 to
    /// bookings that went nowhere): refused before the commit, which SQLite does not do.
    private func checkFileIsInPlace() throws(SQLiteError) {
        if fileHasMoved { throw SQLiteError(code: SQLITE_IOERR, message: "the database file was removed or renamed while open") }
        // Looked at before each commit, not only at the watcher's looks: with the -shm alone
        // removed, a command that made a new one shared the WAL through it, and a commit
        // made here before the next look wrote over the command's (found by probing). This
        // connection's own look, then the watcher's, which also sees a connection opened
        // after the removal (it noted the new files as its own).
        lookAtTheJournalNames()
        if SplitDatabases.containsAfterLooking(openedFile) {
            throw SQLiteError(code: SQLITE_IOERR, message: "the database's -wal or -shm was removed or replaced while open")
        }
    }

    /// SQLite's default: a commit that leaves the WAL this long (in pages) checkpoints it.
    private static let autocheckpointPages: Int32 = 1000

    /// A write transaction committed without a disk sync, for telemetry: it decides
    /// nothing, and a crash may lose it. In WAL mode SQLite then loses the transaction
    /// whole (the frames that did not reach the disk fail their checksums), never a part
    /// of it, nor anything committed before it.
    ///
    /// The safety level cannot change inside a transaction (SQLite refuses), so it changes
    /// around this one, and is FULL again before this returns. No checkpoint runs without
    /// syncs: it would copy pages into the database file, and let the WAL be reused, before
    /// they were on disk. So SQLite's own checkpoint, which would run inside the commit, is
    /// replaced by one after it, with the syncs back, once the WAL has reached SQLite's
    /// threshold: a process that only ever commits telemetry (`serve` or `book --stream` on
    /// a sold-out sale) grew the WAL by about 5 KB a decline without end, 1.1 GB for
    /// 216,000 declines in 15 s of `serve`. And a connection that committed nothing else
    /// leaves the checkpoint that closing it would make, with its syncs, to the next
    /// connection that closes, as long as the WAL is shorter than that threshold: a lone
    /// declined `book`, which wrote nothing before it was counted, costs no sync at all.
    func writeTransactionWithoutSync(_ body: () throws -> Void) throws {
        try execute("PRAGMA synchronous = OFF")
        walFrames.count = 0
        sqlite3_wal_hook(handle, { context, _, _, frames in
            context.map { Unmanaged<Tally>.fromOpaque($0).takeUnretainedValue().count = Int64(frames) }
            return SQLITE_OK
        }, Unmanaged.passUnretained(walFrames).toOpaque())
        let outcome = Result {
            try beginWrite()
            do {
                try body()
                try commit(durable: false)
            } catch {
                rollback()
                throw error
            }
        }
        // Puts SQLite's own hook back.
        sqlite3_wal_autocheckpoint(handle, Self.autocheckpointPages)
        try execute("PRAGMA synchronous = FULL")
        try outcome.get()
        let walIsLong = walFrames.count >= Self.autocheckpointPages
        if walIsLong {
            // As SQLite's own: it does not wait for readers, and what it leaves undone (it
            // failed, or another connection was checkpointing) the next commit tries again.
            sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
        }
        csqlite_checkpoint_on_close(handle, committedChanges || walIsLong ? 1 : 0)
    }

    /// A read transaction: one consistent snapshot for several queries.
    public func readTransaction<T>(_ body: () throws -> T) throws -> T {
        // Refused as commits are, once this process has found the database's log removed and
        // is stopping: `serve`'s /healthz read well while every booking was refused (found
        // by probing), and a read may miss what others have committed to new files. Said as
        // what it is, not as an I/O error that wrote nothing (the follow-up probe).
        if SplitDatabases.contains(openedFile) {
            throw StoreFailure.logRemoved(detail: "the -wal or -shm of \(Quoted(path, keeping: .max)) was removed or replaced "
                                              + "while this process had it open")
        }
        try execute("BEGIN DEFERRED")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            rollback()
            throw error
        }
    }

    /// Runs `body` again while it fails with SQLITE_BUSY, until the busy timeout has passed:
    /// for the locks SQLite reports busy at once instead of waiting for them itself.
    func retryingWhileBusy<T>(_ body: () throws -> T) throws -> T {
        let deadline = MonotonicClock.nanoseconds() + busyTimeout.nanoseconds
        var pause: UInt32 = 1_000
        while true {
            do {
                return try body()
            } catch let error as SQLiteError where error.primaryCode == SQLITE_BUSY && MonotonicClock.nanoseconds() < deadline {
                usleep(pause)
                pause = min(pause * 2, 50_000)
            }
        }
    }

    /// Rolls back an open transaction, if any. After a failed COMMIT or an I/O error
    /// SQLite may already have rolled back by itself.
    func rollback() {
        if isInTransaction {
            try? execute("ROLLBACK")
        }
        turns.letGo()
    }
}
