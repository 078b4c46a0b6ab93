import FlashSaleCore
import FlashSaleEngine

/// The holds and events a run of decisions writes, held back and sent as one statement each
/// (`ArrayRows`): a group of thousands of holds costs a few round trips, not two per hold.
/// The holds go just before the transaction's next statement, whatever it is, so that every
/// statement sees them. The events, which no statement of the transaction reads, go at the
/// commit, straight into `event` with their seqs (`writeHeldEvents`), unless a set-based
/// statement appends events of its own to `pending_event` after them: then they go there
/// first, to keep their order (`moveHeldEventsToTable`). A write the server refuses fails the
/// statement it went with, and with it the transaction, as it would have failed the write.
struct HeldBackWrites {
    var holds: [(hold: Booking, address: String?)] = []
    var events: [NewEvent] = []
}

extension PostgresTransaction {
    func sendHeldBack() throws {
        guard !heldBack.holds.isEmpty else { return }
        let holds = heldBack.holds
        heldBack.holds.removeAll()
        var rows = ArrayRows()
        rows.text("id", holds.map(\.hold.id.text))
        rows.text("sale", holds.map(\.hold.sale.text))
        rows.text("user_id", holds.map(\.hold.user.text))
        rows.int("created_at", holds.map(\.hold.createdAt.milliseconds))
        rows.int("expires_at", holds.map(\.hold.expiresAt.milliseconds))
        rows.optionalText("ip", holds.map(\.hold.ip))
        rows.optionalText("ip_canonical", holds.map(\.address))
        rows.optionalText("user_agent", holds.map(\.hold.userAgent))
        rows.optionalText("key", holds.map(\.hold.key))
        try store.session.execute(
            "INSERT INTO booking (id, sale, user_id, created_at, expires_at, ip, ip_canonical, user_agent, key, status) "
                + rows.select("'held'"), rows.values)
    }

    /// Before a statement that appends events to `pending_event`: the table (this
    /// connection's, made on first use), with the events held back before it.
    func moveHeldEventsToTable() throws {
        try session.execute(
            """
            CREATE TEMPORARY TABLE IF NOT EXISTS pending_event (
                ord bigint GENERATED ALWAYS AS IDENTITY, at bigint NOT NULL, sale text NOT NULL, kind text NOT NULL,
                booking text, user_id text, request bigint, detail text)
            """)
        guard !heldBack.events.isEmpty else { return }
        let rows = eventRows()
        try session.execute("INSERT INTO pending_event (at, sale, kind, booking, user_id, request, detail) " + rows.select(),
                            rows.values)
        pendingEvents += Int64(heldBack.events.count)
        heldBack.events.removeAll()
    }

    /// At the commit, when `pending_event` was not used: the events with their seqs, taken
    /// from the counter whose row lock is held to the commit (see `commit`).
    func writeHeldEvents() throws {
        guard !heldBack.events.isEmpty else { return }
        let rows = eventRows(leading: [.int(Int64(heldBack.events.count))])
        try session.execute(
            "WITH counter AS (UPDATE event_counter SET last = last + $1 RETURNING last) "
                + "INSERT INTO event (at, sale, kind, booking, user_id, request, detail, seq) "
                + rows.select("(SELECT last FROM counter) - $1 + given.ord"), rows.values)
        heldBack.events.removeAll()
    }

    private func eventRows(leading: [SQLValue] = []) -> ArrayRows {
        let events = heldBack.events
        var rows = ArrayRows(leading: leading)
        rows.int("at", events.map(\.at.milliseconds))
        rows.text("sale", events.map(\.sale))
        rows.text("kind", events.map(\.kind.rawValue))
        rows.optionalText("booking", events.map { $0.booking?.text })
        rows.optionalText("user_id", events.map { $0.user?.text })
        rows.optionalInt("request", events.map { $0.request?.value })
        rows.optionalText("detail", events.map(\.detail))
        return rows
    }
}
