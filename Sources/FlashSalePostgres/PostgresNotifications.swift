import FlashSaleCore
import FlashSaleEngine
import NIOConcurrencyHelpers
import PostgresNIO

/// Says whether a commit was notified on the schema's channel since the last look: every
/// commit that writes more than attempt counts sends one (`PostgresTransaction.commit`).
/// Its own connection LISTENs, from when it is made, so a commit after the follower's
/// first query still counts as new; looking costs no round trip.
final class NotificationWatcher: ChangeWatcher {
    private let session: PostgresSession
    private let context: PostgresListenContext
    private let notified = NIOLockedValueBox(Int64(0))
    private var seen: Int64 = 0

    init(location: PostgresLocation, busyTimeout: Span) throws {
        session = try PostgresSession(location: location, busyTimeout: busyTimeout)
        let notified = notified
        context = session.listen(on: location.changeChannel) { notified.withLockedValue { $0 += 1 } }
        // The LISTEN is sent before this statement on the same connection: once it has
        // been answered, the server is listening.
        try session.execute("SELECT 1")
    }

    deinit {
        context.stop()
    }

    func hasChanged() throws -> Bool {
        let count = notified.withLockedValue { $0 }
        defer { seen = count }
        return count != seen
    }
}
