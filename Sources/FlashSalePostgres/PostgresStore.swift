import Glibc
import FlashSaleCore
import FlashSaleEngine

/// The store on a PostgreSQL database, in the location's schema: the engine's protocols in
/// PostgreSQL's SQL, on postgres-nio. It holds no rule of the sale: `Engine` decides, this
/// reads and writes rows. One connection, one transaction at a time, as SQLiteStore.
public final class PostgresStore: Store {
    /// Replaced by a new connection when the last one was lost (see `connected`).
    private(set) var session: PostgresSession
    private let busyTimeout: Span
    /// The one transaction object of this connection. Not private: a copy (`takeCopy`)
    /// reads its rows through it inside the copy's own transaction, which it began itself.
    lazy var transaction = PostgresTransaction(store: self)
    /// Whether a transaction of this connection has committed a change.
    var committedChanges = false

    /// Connects and migrates the schema. With `createIfMissing`, a missing schema is made;
    /// without, a location with no flashsale schema is refused (StoreFailure.missingDatabase)
    /// by the first transaction: the version is asked for with its statements, and only a
    /// schema that is not this flashsale's version costs a check of its own, as on opening
    /// (`PostgresSession.askSchemaVersion`).
    public init(location: PostgresLocation, busyTimeout: Span, createIfMissing: Bool) throws {
        self.busyTimeout = busyTimeout
        session = try PostgresSession(location: location, busyTimeout: busyTimeout)
        if createIfMissing {
            try PostgresSchema.migrate(session, create: true)
        } else {
            try session.askSchemaVersion()
        }
    }

    /// Before a transaction: a connection lost (a server restart, a failover) is made anew,
    /// so that a process that goes on after a failed transaction (a follower, `serve`) goes
    /// on with the server once it is back; until then this throws `unreachable`. The
    /// transaction that was lost with the old connection was rolled back by the server. A
    /// schema whose version was not this flashsale's is checked (and brought up to date).
    private func connected() throws {
        if !session.isUsable {
            let identity = session.schemaIdentity
            session = try PostgresSession(location: session.location, busyTimeout: busyTimeout)
            session.schemaIdentity = identity
        }
        if session.schemaNeedsCheck {
            try PostgresSchema.migrate(session, create: false)
            session.schemaNeedsCheck = false
        }
    }

    public var hasChanged: Bool { committedChanges }

    public var readsWaitForWriters: Bool { true }

    /// Asks the server for the transaction's status by its id (`pg_xact_status`), on a new
    /// connection if the last one was lost. The lost connection's backend may still be
    /// finishing the COMMIT it was sent ("in progress"): asked again, a busy timeout at
    /// most, and 5 s at most, since no stop signal is heeded meanwhile (review: with a busy
    /// timeout of hours, `process --follow` could not be stopped for hours). Or the COMMIT
    /// never reached it, and it holds the transaction open, idle, until it sees its client
    /// gone, which over a failed network can take hours (found by probing: the stream gave
    /// up with 74, and every other writer waited). Still open past that wait, that backend
    /// is ended if it is idle and this role may (`terminateBackend`), rolling the
    /// transaction back; then asked again, as long again.
    /// nil for one the server no longer knows, or one still open after all that. False for
    /// one it has never seen: a standby promoted before the transaction reached it
    /// ("transaction ID … is in the future", found by review) never committed it. A
    /// standby still following its primary cannot tell: asked there, this fails as a server
    /// that takes no writes, to be asked again. Without the id (its answer lost with the
    /// COMMIT), the transaction's server process tells what it can (`committed(byProcess:)`).
    public func committed(unanswered error: any Error) throws -> Bool? {
        guard let transaction = (error as? PostgresError)?.unansweredTransaction else { return nil }
        guard let id = transaction.id else { return try committed(byProcess: transaction) }
        return try committed(id: id, of: transaction)
    }

    private func committed(id: String, of transaction: PostgresError.UnansweredTransaction) throws -> Bool? {
        var deadline = ContinuousClock.now + .milliseconds(unansweredWait)
        var endingTried = false
        while true {
            try connectedToThePrimary()
            let status: String?
            do {
                // Committed in the commit log, a transaction may still be running (waiting
                // for a synchronous standby), and older releases said "committed" then:
                // done only once a snapshot taken now sees it finished (review).
                status = try session.firstRow("""
                    SELECT CASE WHEN pg_visible_in_snapshot($1::xid8, pg_current_snapshot())
                                THEN coalesce(pg_xact_status($1::xid8), 'unknown') ELSE 'in progress' END AS status
                    """, [.text(id)]) { try $0.text("status") }
            } catch let refusal as PostgresError where refusal.sqlState == PostgresError.invalidParameterValue {
                return false
            }
            switch status {
            case "committed": return true
            case "aborted": return false
            case "in progress" where ContinuousClock.now < deadline: usleep(10_000)
            case "in progress" where !endingTried:
                // Asked again whatever came of it: the process may have ended meanwhile, or
                // taken a COMMIT that came late (review).
                endingTried = true
                _ = try terminateBackend(transaction, id: id)
                deadline = ContinuousClock.now + .milliseconds(unansweredWait)
            default: return nil
            }
        }
    }

    /// How long a transaction whose COMMIT went unanswered is waited for, each time, in
    /// milliseconds.
    private var unansweredWait: Int64 { min(max(1, busyTimeout.milliseconds), 5_000) }

    /// Whether the transaction of `transaction`'s server process committed, its id
    /// unknown (the answer that named it lost with the COMMIT, sent together, found by
    /// probing), found by that process and the transaction's start. Once it has an id
    /// (it wrote, or locked a row), asked about by it, as above. Without one, it has
    /// written nothing: still open past the wait, idle, it is ended, and nothing it did
    /// stands (but for a write and its COMMIT come late in the instant before the end).
    /// Gone, or still running a statement past the wait, nil: what it wrote may tell the
    /// caller.
    private func committed(byProcess transaction: PostgresError.UnansweredTransaction) throws -> Bool? {
        guard let started = transaction.started else { return nil }
        let deadline = ContinuousClock.now + .milliseconds(unansweredWait)
        while true {
            try connectedToThePrimary()
            let found = try session.firstRow("""
                SELECT coalesce(state, 'unknown') AS state, backend_xid::text AS xid,
                       pg_snapshot_xmax(pg_current_snapshot())::text AS horizon
                FROM pg_stat_activity
                WHERE pid = $1 AND (extract(epoch FROM xact_start) * 1000000)::bigint = $2 AND pg_has_role(usesysid, 'USAGE')
                """, [.int(Int64(transaction.backend)), .int(started)]) {
                (state: try $0.text("state"), xid: try $0.optionalText("xid"), horizon: try $0.text("horizon"))
            }
            guard let found else { return nil }
            if let xid = found.xid.flatMap(UInt64.init), let horizon = UInt64(found.horizon) {
                // The 32-bit id in the epoch of the ids handed out now, or the one before.
                let epoch = (horizon >> 32) - (xid > horizon & 0xFFFF_FFFF && horizon >> 32 > 0 ? 1 : 0)
                return try committed(id: String(epoch << 32 | xid), of: transaction)
            }
            if ContinuousClock.now < deadline {
                usleep(10_000)
            } else {
                guard found.state.hasPrefix("idle in transaction") else { return nil }
                return try terminateBackend(transaction, id: nil) ? false : nil
            }
        }
    }

    /// Connects, if the last connection was lost, to a server that takes writes: a standby
    /// cannot tell of the primary's transactions, and its processes are not the primary's.
    private func connectedToThePrimary() throws {
        try connected()
        let standby = try session.firstRow("SELECT pg_is_in_recovery() AS standby", []) { try $0.bool("standby") }
        if standby == true {
            throw StoreFailure.unreachable(detail: "PostgreSQL at \(session.location.server) takes no writes (a standby): "
                                           + "whether the last commit stands is asked of the primary")
        }
    }

    /// Ends the server process that holds `transaction` open, idle since its last write
    /// (the COMMIT never reached it), if this role may end it (`pg_terminate_backend`, its
    /// own role's or one it has the privileges of), and waits up to 5 s for it to be gone;
    /// whether it did, said on stderr, or why not. Matched by its transaction, when known,
    /// as well as its process id, which a process started since may have been given. Not
    /// one that runs a statement: a COMMIT that waits for a synchronous standby waits as
    /// the server's settings say, and ended it would stand without the standby's copy. A
    /// failure to end it is said and left: only a lost connection is thrown, for the
    /// caller to wait out.
    private func terminateBackend(_ transaction: PostgresError.UnansweredTransaction, id: String?) throws -> Bool {
        let still = "the transaction whose COMMIT went unanswered was still open on PostgreSQL at \(session.location.server) "
            + "after \(unansweredWait) ms"
        do {
            let ended: Bool?
            if let id {
                ended = try session.firstRow("""
                    SELECT pg_terminate_backend(pid, 5000) AS ended FROM pg_stat_activity
                    WHERE pid = $1 AND backend_xid::text = ($2::numeric % 4294967296)::text
                      AND state IN ('idle in transaction', 'idle in transaction (aborted)') AND pg_has_role(usesysid, 'USAGE')
                    """, [.int(Int64(transaction.backend)), .text(id)]) { try $0.bool("ended") }
            } else {
                ended = try session.firstRow("""
                    SELECT pg_terminate_backend(pid, 5000) AS ended FROM pg_stat_activity
                    WHERE pid = $1 AND (extract(epoch FROM xact_start) * 1000000)::bigint = $2 AND backend_xid IS NULL
                      AND state IN ('idle in transaction', 'idle in transaction (aborted)') AND pg_has_role(usesysid, 'USAGE')
                    """, [.int(Int64(transaction.backend)), .int(transaction.started ?? -1)]) { try $0.bool("ended") }
            }
            StoreNotices.say(ended == true
                ? "\(still), its COMMIT never received; ended its server process \(transaction.backend) (pg_terminate_backend) "
                    + "to tell whether it committed"
                : "\(still); its server process \(transaction.backend) runs a statement, or is not this role's to end")
            return ended == true
        } catch {
            switch StoreFailure.of(error) {
            case .connectionLost?, .unreachable?, .noConnectionFree?: throw error
            default:
                StoreNotices.say("\(still); could not end its server process \(transaction.backend): \(error)")
                return false
            }
        }
    }

    public func beginWrite() throws -> any StoreTransaction {
        try connected()
        try transaction.begin(write: true)
        return transaction
    }

    /// Run again, as a write is, when its first answer says the schema must be checked.
    public func read<T>(_ body: (any StoreReading) throws -> T) throws -> T {
        try retryingConflicts {
            try connected()
            try transaction.begin(write: false)
            let result: T
            do {
                result = try body(transaction)
            } catch {
                transaction.rollback()
                throw error
            }
            try transaction.endRead()
            return result
        }
    }

    /// A connection of its own that LISTENs for the schema's commits.
    public func changeWatcher() throws -> any ChangeWatcher {
        try NotificationWatcher(location: session.location, busyTimeout: busyTimeout)
    }

    /// A statement outside any transaction (a report's temporary table), run again, as a
    /// transaction is, when its first answer says the schema must be checked: so that a
    /// missing schema is said as such, not as a lock (found by probing: `suspects` on one
    /// exited 75, "locked by another process").
    func executeOutsideTransaction(_ sql: String) throws {
        try retryingConflicts {
            try connected()
            try session.execute(sql)
        }
    }

    /// A read of the reports' own, in one snapshot with no statement timeout: a recount of
    /// millions of rows may take longer than any lock wait should.
    func report<T>(_ body: (PostgresTransaction) throws -> T) throws -> T {
        try read { _ in try session.withoutStatementTimeout { try body(transaction) } }
    }
}
