import FlashSaleEngine
import PostgresNIO

/// A failure of the PostgreSQL server or of the way to it, as the store reports it: one of
/// the contract's failures (`failure`), a conflict the write paths retry (`isTransient`),
/// or nil, a bug (an SQL mistake). Its words name the server, never the password.
struct PostgresError: StoreError, CustomStringConvertible {
    let failure: StoreFailure?
    let isTransient: Bool
    let description: String
    /// The server's SQLSTATE, for an error the store expects and handles itself.
    let sqlState: String?
    /// For a COMMIT left unanswered, its transaction, when the server told it before the
    /// connection was lost: what `PostgresStore.committed(unanswered:)` asks about.
    let unansweredTransaction: UnansweredTransaction?

    init(failure: StoreFailure?, isTransient: Bool = false, sqlState: String? = nil,
         unansweredTransaction: UnansweredTransaction? = nil, _ description: String) {
        self.failure = failure
        self.isTransient = isTransient
        self.sqlState = sqlState
        self.unansweredTransaction = unansweredTransaction
        self.description = description
    }

    /// A transaction whose COMMIT went unanswered: its id (`pg_current_xact_id`), unless
    /// its answer was lost too, the server process that ran it (`pg_backend_pid`), which
    /// may still hold it open, and when it began, in microseconds (`xact_start`), if known.
    struct UnansweredTransaction {
        let id: String?
        let backend: Int32
        let started: Int64?
    }

    static let undefinedTable = "42P01"
    static let invalidParameterValue = "22023"

    /// The connection to `server` is gone, and the transaction with it, for `reason`: said
    /// always, as a follower's wait line says why it waits (found by probing: some lines
    /// said nothing more than the loss).
    static func lostConnection(to server: String, _ reason: String) -> PostgresError {
        let detail = "lost the connection to PostgreSQL at \(server): \(reason)"
        return PostgresError(failure: .connectionLost(detail: detail), detail)
    }

    /// `error` met while a COMMIT sent was unanswered: a lost connection leaves the fate of
    /// the transaction (`transaction`, if known) unknown (`StoreFailure.commitUnanswered`);
    /// anything else is itself.
    static func awaitingCommit(_ error: any Error, transaction: UnansweredTransaction?) -> any Error {
        guard case .connectionLost(let detail)? = StoreFailure.of(error) else { return error }
        return PostgresError(failure: .commitUnanswered(detail: detail), unansweredTransaction: transaction,
                             "\(detail), after COMMIT was sent")
    }

    /// What `error`, thrown by postgres-nio for a statement on the server `server`, means.
    static func from(_ error: any Error, server: String) -> any Error {
        if error is PostgresError || error is StoreFailure { return error }
        // postgres-nio's older error, which its COPY throws once the connection is gone.
        if case .connectionClosed? = error as? PostgresNIO.PostgresError {
            return lostConnection(to: server, "the connection closed")
        }
        guard let psql = error as? PSQLError else {
            return PostgresError(failure: .io(detail: "PostgreSQL at \(server): \(error)"), "\(error)")
        }
        guard let state = psql.serverInfo?[.sqlState] else {
            // No answer from the server: the connection is gone.
            return lostConnection(to: server, ConnectionFailureWords.reason(psql))
        }
        return from(state: state, message: psql.serverInfo?[.message] ?? "error", server: server)
    }

    /// What the server's error `state` (its SQLSTATE) with `message` means.
    static func from(state: String, message: String, server: String) -> PostgresError {
        let detail = "PostgreSQL at \(server): \(message) (SQLSTATE \(state))"
        switch state {
        case "55P03":  // lock_not_available (lock_timeout)
            return PostgresError(failure: .busy, detail)
        case "57014":  // query_canceled: statement_timeout, or an operator's pg_cancel_backend
            return PostgresError(failure: .canceled(detail: message), detail)
        case "40001", "40P01":  // serialization_failure, deadlock_detected
            return PostgresError(failure: .busy, isTransient: true, detail)
        case "53100":  // disk_full
            return PostgresError(failure: .full(detail: detail), detail)
        case "54000":  // program_limit_exceeded
            return PostgresError(failure: .io(detail: detail), detail)
        case "25006":  // read_only_sql_transaction: a standby (after a failover, the old primary), or a read-only database
            let detail = "PostgreSQL at \(server) takes no writes (a standby, or a read-only database): \(message)"
            return PostgresError(failure: .unreachable(detail: detail), detail)
        case "3D000", "28000", "28P01", "42501":  // no database, no access, wrong password, no privilege
            return PostgresError(failure: .cantOpen(detail: detail), detail)
        // admin_shutdown, crash_shutdown, cannot_connect_now: the server goes away. The idle
        // session and idle-in-transaction timeouts (57P05, 25P03) end the session as surely:
        // a follower whose next statement met one gave up with 74 (found by probing). Said
        // as any lost connection is, the server's words after.
        case "57P01", "57P02", "57P03", "57P05", "25P03":
            return lostConnection(to: server, "\(message) (SQLSTATE \(state))")
        case undefinedTable, "3F000":  // invalid_schema_name
            // Once the schema is open, its tables are the only ones flashsale names: gone,
            // the schema was dropped under the command (as a file removed under it), or a
            // table of it by hand (the probe's case, which "the schema was dropped" misnamed).
            // The state is kept for the opening's own look (`PostgresSchema.quickVersion`).
            return PostgresError(failure: .moved(detail: "\(detail): a table of the schema is gone (the schema dropped while this "
                                                 + "command ran, or the table dropped by hand)"),
                                 sqlState: state, detail)
        case "42703":  // undefined_column: one of flashsale's tables changed by hand (probe: exit 1, a bug)
            return PostgresError(failure: .unusable(detail: "\(detail): a table of the schema was changed by hand"), detail)
        default:
            if state.hasPrefix("08") || state.hasPrefix("57") || state.hasPrefix("58") || state.hasPrefix("53") || state.hasPrefix("XX") {
                // Connection, operator intervention (a shutdown), system, resources, internal.
                return PostgresError(failure: .io(detail: detail), detail)
            }
            return PostgresError(failure: nil, sqlState: state, detail)
        }
    }
}
