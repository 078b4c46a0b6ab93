import FlashSaleCore
import FlashSaleEngine
import NIOConcurrencyHelpers
import PostgresNIO

/// Says whether a commit was notified on the schema's channel since the last look: every
/// commit that writes more than attempt counts sends one (`PostgresTransaction.commit`).
/// Its own connection LISTENs, from when it is made, so a commit after the follower's
/// first query still counts as new; looking costs no round trip.
final class NotificationWatcher: ChangeWatcher {
    private let location: PostgresLocation
    private let busyTimeout: Span
    private var session: PostgresSession
    private var context: PostgresListenContext
    private let notified = NIOLockedValueBox(Int64(0))
    private var seen: Int64 = 0

    init(location: PostgresLocation, busyTimeout: Span) throws {
        self.location = location
        self.busyTimeout = busyTimeout
        (session, context) = try Self.listen(location, busyTimeout, notified)
    }

    deinit {
        context.stop()
    }

    /// A lost connection heard nothing while it was gone: it is made anew, and says that
    /// something may have changed. Until the server is back, this throws `unreachable`.
    func hasChanged() throws -> Bool {
        guard session.isUsable else {
            context.stop()
            (session, context) = try Self.listen(location, busyTimeout, notified)
            return true
        }
        let count = notified.withLockedValue { $0 }
        defer { seen = count }
        return count != seen
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
