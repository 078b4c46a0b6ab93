import FlashSaleCore
import FlashSaleEngine
import FlashSaleStore

/// What a command runs with: where the database is, what time it is, where input comes
/// from and output goes.
/// The store is opened on first use, so `help` never touches a file.
final class Context {
    let output: Output
    private let standardInput: Int32
    /// What `--db` names, and how to open it.
    private let opening: StoreOpening
    /// A database server's rather than a file's.
    let isDatabaseServer: Bool
    private let busyTimeout: Span
    private let createsDatabase: Bool
    /// `FLASHSALE_NOW`, empty meaning unset (as FLASHSALE_DB and the PG* variables): read
    /// when the time is first asked for, so that one that is not UTF-8 is refused by a
    /// command that asks, not by `init`.
    private var fixedNow: String? {
        get throws(FlashSaleError) { try environment.value("FLASHSALE_NOW").flatMap { $0.isEmpty ? nil : $0 } }
    }
    private var fixedInstant: Instant?
    private var openStore: (any Store)?
    /// What this executable hands to `flashsale-serve`, or does itself.
    let linked: Linked
    /// The database as --db or $FLASHSALE_DB named it (a URL with its password, if it has
    /// one), for the children a command starts; nil for the default. Never printed.
    let givenDatabase: String?
    var databaseGiven: Bool { givenDatabase != nil }
    /// Whether $FLASHSALE_DB named it, not --db: advice names the one the user gave.
    let databaseFromEnvironment: Bool
    /// Whether $FLASHSALE_DB names a database, whatever named this one: a command line
    /// printed to paste must then name its database, even the default one. Asked only by
    /// what prints one; a malformed value, read to open nothing, names none.
    var variableNamesADatabase: Bool {
        !(((try? environment.value("FLASHSALE_DB")) ?? nil) ?? "").isEmpty
    }
    /// `--pg-schema`, for a command that names a database server of its own (`copy-to`).
    let serverSchema: String?
    /// The variables flashsale reads: the `PG*` ones fill in what a server's URL leaves out.
    let environment: Environment

    static let defaultDatabase = "flashsale.db"
    static let defaultBusyTimeout = Span.seconds(5)

    /// `createsDatabase`: the command's own say (CommandSpec) on whether a missing database
    /// is created or refused. A database server's URL goes to `linked` here, before the
    /// command reads or writes anything: `flashsale` hands the whole command over.
    /// `namesDatabaseServer`: the command takes a server's URL of its own, which
    /// --pg-schema may describe whatever --db names. `usesDatabase` false: what --db or
    /// $FLASHSALE_DB names is neither checked nor opened (`help`, `completions`).
    init(globals: Invocation.Values, environment: Environment, standardInput: Int32,
         output: Output, createsDatabase: Bool, namesDatabaseServer: Bool = false, usesDatabase: Bool = true,
         linked: Linked) throws {
        self.output = output
        self.environment = environment
        self.linked = linked
        self.standardInput = standardInput
        self.createsDatabase = createsDatabase
        let database: String
        if let option = globals[GlobalOptions.database.name] {
            guard !option.isEmpty || !usesDatabase else {
                throw FlashSaleError.usage("\(GlobalOptions.database.name) needs a file name or a URL")
            }
            database = option
            givenDatabase = option
            databaseFromEnvironment = false
        } else if usesDatabase, let variable = try environment.value("FLASHSALE_DB"), !variable.isEmpty {
            database = variable
            givenDatabase = variable
            databaseFromEnvironment = true
        } else {
            database = Context.defaultDatabase
            givenDatabase = nil
            databaseFromEnvironment = false
        }
        if let text = globals[GlobalOptions.busyTimeout.name] {
            guard let span = Span.parse(text) else {
                throw FlashSaleError.usage("--busy-timeout '\(Quoted(text))' is not a duration: use 90s, 5m, 1h30m, 250ms or seconds, up to \(Span.maximumText)")
            }
            busyTimeout = span
        } else {
            busyTimeout = Context.defaultBusyTimeout
        }
        let schema = globals[GlobalOptions.pgSchema.name]
        serverSchema = schema
        if usesDatabase, let refusal = DatabaseURL.refusal(of: database) {
            // Named as given: a value from the environment, with no --db typed, was said as
            // --db's (found by probing).
            let source = databaseFromEnvironment ? "FLASHSALE_DB" : GlobalOptions.database.name
            throw FlashSaleError.usage("\(source) is neither a file path nor a postgresql:// URL: \(refusal)")
        }
        isDatabaseServer = usesDatabase && DatabaseURL.scheme(of: database) != nil
        if !usesDatabase {
            opening = StoreOpening(description: database) { _ in
                preconditionFailure("a command that declares it uses no database opened one")
            }
        } else if isDatabaseServer {
            opening = try linked.databaseServer(database, schema, environment.databaseServerVariables(), busyTimeout)
        } else if schema != nil, !namesDatabaseServer {
            throw FlashSaleError.usage("\(GlobalOptions.pgSchema.name) goes with a postgresql:// database, not a file")
        } else {
            opening = StoreOpening(description: database) { [busyTimeout] createIfMissing in
                try SQLiteStore(path: database, busyTimeout: busyTimeout, createIfMissing: createIfMissing)
            }
        }
    }

    /// The file's path, or the server's URL without its password.
    var database: String { opening.description }

    /// The file at `path`, or standard input for `-`.
    func input(_ path: String) throws(FlashSaleError) -> InputChunks {
        try InputChunks(path: path, standardInput: standardInput)
    }

    /// The store, for what only it can do (verify, suspects, backup).
    func store() throws -> any Store {
        try store(createIfMissing: createsDatabase)
    }

    /// The store, made if missing when `createIfMissing`, whatever the command's spec says:
    /// for `rehearse`, which makes the database it is given as `create-sale` would.
    func store(createIfMissing: Bool) throws -> any Store {
        if let openStore { return openStore }
        let store = try opening.open(createIfMissing)
        openStore = store
        return store
    }

    /// Opens a new connection each time it is called, for a server's threads.
    func storeOpener() -> @Sendable () throws -> any Store {
        { [opening] in try opening.open(false) }
    }

    var busyTimeoutSpan: Span { busyTimeout }

    /// The engine on the store: every state change and every read of a sale.
    func engine() throws -> Engine {
        Engine(store: try store())
    }

    /// What this process has done that a failed write of its output does not undo: what the
    /// command said it did (`workDone`), or else a change its store committed.
    var lastingWork: LastingWork? {
        workDone ?? ((openStore?.hasChanged ?? false) ? .committed : nil)
    }
    /// Said by a command whose work its store does not count as a change: copy-to's commit
    /// to its target, a backup's file, a database made or migrated by init.
    var workDone: LastingWork?

    /// `Output.checkWritten`, for a command that stops at the first failed write.
    func checkOutput() throws(FlashSaleError) {
        try output.checkWritten(lastingWork: lastingWork)
    }

    /// `FLASHSALE_NOW`'s time; nil when the system clock decides.
    func fixedTime() throws(FlashSaleError) -> Instant? {
        try fixedNow != nil ? now() : nil
    }

    /// `now()` as a function any thread may call: for a server, which decides on many.
    func clock() throws(FlashSaleError) -> @Sendable () -> Instant {
        guard let fixed = try fixedTime() else { return { SystemClock().now() } }
        return { fixed }
    }

    /// The time for a decision: `FLASHSALE_NOW` (RFC 3339 or Unix seconds) when set, else
    /// the system clock. A stream asks once per request, so the variable is parsed once.
    func now() throws(FlashSaleError) -> Instant {
        if let fixedInstant { return fixedInstant }
        guard let fixedNow = try fixedNow else { return SystemClock().now() }
        guard !fixedNow.hasPrefix("+"), let instant = Instant.parse(fixedNow, now: .earliest) else {
            throw .usage("FLASHSALE_NOW '\(Quoted(fixedNow))' is not a time: use RFC 3339 or Unix seconds, from 1970 to 9999-11-30")
        }
        fixedInstant = instant
        return instant
    }
}
