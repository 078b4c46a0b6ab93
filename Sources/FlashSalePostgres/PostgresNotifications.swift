import FlashSaleCore
import FlashSaleEngine
import NIOConcurrencyHelpers
import PostgresNIO

/// Says whether a commit was notified on the schema's channel since the last look: every
/// commit that writes more than attempt counts sends one (`PostgresTransaction.commit`).
/// Its own connection LISTENs, from when it is made, so a commit after the follower's
/// first query still counts as new; looking costs no round trip.
///
/// A schema dropped, or dropped and made again, under a follower would leave it waiting
/// for ever on tables nobody writes: as a SQLite follower looks at its file's name, this
/// one looks at the schema's identity (its oid) once a second and before each step it
/// wakes for, and its going is `StoreFailure.moved`, exit 73.
final class NotificationWatcher: ChangeWatcher {
    private let location: PostgresLocation
    private let busyTimeout: Span
    private var session: PostgresSession
    private var context: PostgresListenContext
    private let notified = NIOLockedValueBox(Int64(0))
    private var seen: Int64 = 0
    private let schema: Int64
    private var schemaCheckDue: ContinuousClock.Instant
    static let schemaCheckInterval = Duration.seconds(1)

    init(location: PostgresLocation, busyTimeout: Span) throws {
        self.location = location
        self.busyTimeout = busyTimeout
        (session, context) = try Self.listen(location, busyTimeout, notified)
        guard let schema = try Self.schemaID(location, on: session) else {
            context.stop()
            throw StoreFailure.missingDatabase(path: location.description)
        }
        self.schema = schema
        schemaCheckDue = .now + Self.schemaCheckInterval
    }

    deinit {
        context.stop()
    }

    /// A lost connection heard nothing while it was gone: it is made anew, and says that
    /// something may have changed. Until the server is back, this throws `unreachable`.
    func hasChanged() throws -> Bool {
        let changed: Bool
        if session.isUsable {
            let count = notified.withLockedValue { $0 }
            changed = count != seen
            seen = count
        } else {
            context.stop()
            (session, context) = try Self.listen(location, busyTimeout, notified)
            changed = true
        }
        // Before any step it wakes for, too: a schema made again since would otherwise be
        // taken for the one followed, its commits' notifications waking the follower first.
        if changed || ContinuousClock.now >= schemaCheckDue {
            schemaCheckDue = .now + Self.schemaCheckInterval
            guard try Self.schemaID(location, on: session) == schema else {
                throw StoreFailure.moved(detail: "schema \(location.schema) of \(location) was dropped or replaced while it was "
                                         + "followed; start again on the one now there")
            }
        }
        return changed
    }

    /// The schema's oid; nil when there is none by its name.
    private static func schemaID(_ location: PostgresLocation, on session: PostgresSession) throws -> Int64? {
        try session.firstRow(PostgresSchema.identityQuery, [.text(location.schema)]) { try $0.optionalInt64("id") } ?? nil
    }

    private static func listen(_ location: PostgresLocation, _ busyTimeout: Span,
                               _ notified: NIOLockedValueBox<Int64>) throws -> (PostgresSession, PostgresListenContext) {
        let session = try PostgresSession(location: location, busyTimeout: busyTimeout)
        let context = session.listen(on: location.changeChannel) { notified.withLockedValue { $0 += 1 } }
        // The LISTEN is sent before this statement on the same connection: once it has
        // been answered, the server is listening.
        try session.execute("SELECT 1")
        return (session, context)
    }
}
