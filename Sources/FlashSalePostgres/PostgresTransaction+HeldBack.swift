import FlashSaleCore
import FlashSaleEngine

/// The holds, counter changes and events a run of decisions writes, held back and sent
/// together (`WriteBatch`, rows as arrays by `ArrayRows`): a group of thousands of holds
/// costs a few round trips, not two per hold, and a single `book` writes everything in one
/// statement while it holds its sale's row lock. The holds and counter changes go just
/// before the transaction's next statement, whatever it is, so that every statement sees
/// them; at the latest with the commit's. The events, which no statement of the transaction
/// reads, go with the commit, straight into `event` with their seqs, unless a set-based
/// statement appends events of its own to `pending_event` after them: then they go there
/// first, to keep their order (`moveHeldEventsToTable`). A write the server refuses fails
/// the statement it went with, and with it the transaction, as it would have failed the write.
struct HeldBackWrites {
    var holds: [(hold: Booking, address: String?)] = []
    /// Each sale's changes, summed, with the latest instant one was made at: one UPDATE of
    /// the row comes to the same as one each (`high_water` only ever rises).
    var counters: [SaleID: (change: CounterChange, at: Instant)] = [:]
    var events: [NewEvent] = []

    mutating func adjust(_ sale: SaleID, by change: CounterChange, at now: Instant) {
        var (sum, at) = counters[sale] ?? (CounterChange(), now)
        sum.add(change)
        counters[sale] = (sum, max(at, now))
    }
}

extension PostgresTransaction {
    /// Before any other statement: the holds and counter changes, in one statement.
    func sendHeldBack() throws {
        var batch = WriteBatch()
        addHeldBackRows(to: &batch)
        guard !batch.isEmpty else { return }
        try store.session.execute(batch.statement(selecting: "NULL"), batch.values)
    }

    /// Moves the holds and counter changes held back into `batch`.
    func addHeldBackRows(to batch: inout WriteBatch) {
        if !heldBack.holds.isEmpty {
            let holds = heldBack.holds
            var rows = batch.rows()
            rows.text("id", holds.map(\.hold.id.text))
            rows.text("sale", holds.map(\.hold.sale.text))
            rows.text("user_id", holds.map(\.hold.user.text))
            rows.int("created_at", holds.map(\.hold.createdAt.milliseconds))
            rows.int("expires_at", holds.map(\.hold.expiresAt.milliseconds))
            rows.optionalText("ip", holds.map(\.hold.ip))
            rows.optionalText("ip_canonical", holds.map(\.address))
            rows.optionalText("user_agent", holds.map(\.hold.userAgent))
            rows.optionalText("key", holds.map(\.hold.key))
            batch.add("INSERT INTO booking (id, sale, user_id, created_at, expires_at, ip, ip_canonical, user_agent, key, status) "
                      + rows.select("'held'"), rows: rows)
            heldBack.holds.removeAll()
        }
        if !heldBack.counters.isEmpty {
            let changes = heldBack.counters.sorted { $0.key.text < $1.key.text }
            var rows = batch.rows()
            rows.text("id", changes.map(\.key.text))
            rows.int("available", changes.map(\.value.change.available))
            rows.int("held", changes.map(\.value.change.held))
            rows.int("booked", changes.map(\.value.change.booked))
            rows.int("cancelled", changes.map(\.value.change.cancelled))
            rows.int("expired", changes.map(\.value.change.expired))
            rows.int("at", changes.map(\.value.at.milliseconds))
            batch.add(
                """
                UPDATE sale SET available = sale.available + change.available, held = sale.held + change.held,
                    booked = sale.booked + change.booked, cancelled = sale.cancelled + change.cancelled,
                    expired = sale.expired + change.expired, high_water = greatest(sale.high_water, change.at)
                FROM (\(rows.select())) AS change WHERE sale.id = change.id
                """, rows: rows)
            heldBack.counters.removeAll()
        }
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
        var rows = ArrayRows()
        addEventColumns(to: &rows)
        try session.execute("INSERT INTO pending_event (at, sale, kind, booking, user_id, request, detail) " + rows.select(),
                            rows.values)
        pendingEvents += Int64(heldBack.events.count)
        heldBack.events.removeAll()
    }

    /// At the commit: the events with their seqs, taken from the counter whose row lock is
    /// held to the commit (see `commit`); from `pending_event` if it was used, else as held back.
    func addEvents(to batch: inout WriteBatch) {
        let count = pendingEvents > 0 ? pendingEvents : Int64(heldBack.events.count)
        guard count > 0 else { return }
        let taken = batch.bind(.int(count))
        batch.add("UPDATE event_counter SET last = last + \(taken) RETURNING last", as: "counter")
        let columns = "at, sale, kind, booking, user_id, request, detail"
        if pendingEvents > 0 {
            batch.add("DELETE FROM pending_event RETURNING *", as: "moved")
            batch.add("""
                INSERT INTO event (seq, \(columns))
                SELECT (SELECT last FROM counter) - \(taken) + row_number() OVER (ORDER BY ord), \(columns)
                FROM moved ORDER BY ord
                """)
        } else {
            var rows = batch.rows()
            addEventColumns(to: &rows)
            batch.add("INSERT INTO event (\(columns), seq) " + rows.select("(SELECT last FROM counter) - \(taken) + given.ord"),
                      rows: rows)
            heldBack.events.removeAll()
        }
    }

    private func addEventColumns(to rows: inout ArrayRows) {
        let events = heldBack.events
        rows.int("at", events.map(\.at.milliseconds))
        rows.text("sale", events.map(\.sale))
        rows.text("kind", events.map(\.kind.rawValue))
        rows.optionalText("booking", events.map { $0.booking?.text })
        rows.optionalText("user_id", events.map { $0.user?.text })
        rows.optionalInt("request", events.map { $0.request?.value })
        rows.optionalText("detail", events.map(\.detail))
    }
}
