import FlashSaleCore
import FlashSaleStore

/// What a command runs with: where the database is, what time it is, where output goes.
/// The store is opened on first use, so `help` never touches a file.
final class Context {
    let output: Output
    private let databasePath: String
    private let busyTimeout: Span
    private let createsDatabase: Bool
    private let fixedNow: String?
    private var fixedInstant: Instant?
    private var openStore: SaleStore?

    static let defaultDatabase = "flashsale.db"
    static let defaultBusyTimeout = Span.seconds(5)

    /// `createsDatabase`: the command's own say (CommandSpec) on whether a missing database
    /// is created or refused.
    init(globals: Invocation.Values, environment: [String: String], output: Output,
         createsDatabase: Bool) throws(FlashSaleError) {
        self.output = output
        self.createsDatabase = createsDatabase
        if let option = globals[GlobalOptions.database.name] {
            guard !option.isEmpty else { throw .usage("--db needs a file name") }
            databasePath = option
        } else if let variable = environment["FLASHSALE_DB"], !variable.isEmpty {
            databasePath = variable
        } else {
            databasePath = Context.defaultDatabase
        }
        if let text = globals[GlobalOptions.busyTimeout.name] {
            guard let span = Span.parse(text) else {
                throw .usage("--busy-timeout '\(Quoted(text))' is not a duration: use 90s, 5m, 1h30m, 250ms or seconds")
            }
            busyTimeout = span
        } else {
            busyTimeout = Context.defaultBusyTimeout
        }
        fixedNow = environment["FLASHSALE_NOW"]
    }

    var database: String { databasePath }

    func store() throws -> SaleStore {
        if let openStore { return openStore }
        let store = try SaleStore(path: databasePath, busyTimeout: busyTimeout, createIfMissing: createsDatabase)
        openStore = store
        return store
    }

    /// The time for a decision: `FLASHSALE_NOW` (RFC 3339 or Unix seconds) when set, else
    /// the system clock. A stream asks once per request, so the variable is parsed once.
    func now() throws(FlashSaleError) -> Instant {
        guard let fixedNow else { return SystemClock().now() }
        if let fixedInstant { return fixedInstant }
        guard !fixedNow.hasPrefix("+"), let instant = Instant.parse(fixedNow, now: .earliest) else {
            throw .usage("FLASHSALE_NOW '\(Quoted(fixedNow))' is not a time: use RFC 3339 or Unix seconds, from 1970 to 9999-11-30")
        }
        fixedInstant = instant
        return instant
    }
}
