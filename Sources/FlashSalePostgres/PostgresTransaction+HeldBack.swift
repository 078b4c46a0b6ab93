import FlashSaleCore
import FlashSaleEngine

/// The holds, counter changes and events a run of decisions writes, held back and sent
/// together (`WriteBatch`, rows as arrays by `ArrayRows`; a group's many holds by COPY,
/// `copyHeldHolds`): a group of thousands of holds costs a few round trips, not two per
/// hold, and a single `book` writes everything in one statement while it holds its sale's
/// row lock. The holds and counter changes go just before the transaction's next
/// statement, so that every statement sees them (at the latest with the commit's), but for
/// the reads of a next run of decisions, which go before them: its line's heads, which
/// they do not change, and its read-ahead, which counts them itself. The events, which no
/// statement of the transaction reads, go with the commit, straight into `event` with
/// their seqs (many by COPY, `copyHeldEvents`), unless a set-based statement appends
/// events of its own after them: then they go just before it, numbered
/// (`sendHeldEventsNumbered`). A write the server refuses fails the statement it went
/// with, and with it the transaction, as it would have failed the write.
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
    /// Before any other statement: the holds and counter changes, in one statement, whose
    /// answer is checked with the next wait's.
    func sendHeldBack() throws {
        var batch = WriteBatch()
        try addHeldBackRows(to: &batch)
        guard !batch.isEmpty else { return }
        try store.session.send(batch.statement(selecting: "NULL"), batch.values)
    }

    /// Moves the holds and counter changes held back into `batch`; a group's many holds
    /// go on their own just before it (`copyHeldHolds`).
    func addHeldBackRows(to batch: inout WriteBatch) throws {
        if heldBack.holds.count >= Self.holdsCopiedFrom {
            try copyHeldHolds()
        } else if !heldBack.holds.isEmpty {
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

    /// From this many holds on, COPY (`sendCopy`), which waits for the server to take it
    /// before anything is sent after it: a round trip more, nothing to a group of thousands
    /// (W2's `book --stream` groups about 8,000 holds), but a single `book` holds its sale's
    /// row lock across it.
    static var holdsCopiedFrom: Int { 256 }

    private func copyHeldHolds() throws {
        var rows = CopyText(capacity: heldBack.holds.count * 200)
        for (hold, address) in heldBack.holds {
            rows.text(hold.id.text)
            rows.text(hold.sale.text)
            rows.text(hold.user.text)
            rows.int(hold.createdAt.milliseconds)
            rows.int(hold.expiresAt.milliseconds)
            rows.text(hold.ip)
            rows.text(address)
            rows.text(hold.userAgent)
            rows.text(hold.key)
            rows.text(BookingStatus.held.rawValue)
            rows.endRow()
        }
        heldBack.holds.removeAll()
        // Not `session`, which would send what is held back (this) first.
        try store.session.sendCopy(
            into: "booking", columns: ["id", "sale", "user_id", "created_at", "expires_at", "ip", "ip_canonical", "user_agent", "key", "status"],
            rows)
    }

    /// Before a statement that numbers events of its own (`rejectRun`): the events held
    /// back, numbered, so that they keep their place before its events.
    func sendHeldEventsNumbered() throws {
        try sendHeldBack()
        var batch = WriteBatch()
        try addEvents(to: &batch)
        guard !batch.isEmpty else { return }
        try store.session.execute(batch.statement(selecting: "NULL"), batch.values)
    }

    /// From this many events on, COPY (`copyHeldEvents`): W2's `process` spent 2.2 s of its
    /// 7.9 in the server's INSERTs of its events and attempt counts from arrays (10,000
    /// events a commit), 1.3 s with the events by COPY.
    static var eventsCopiedFrom: Int { 256 }

    /// At the commit, or before a set-based statement's events: the events held back, with
    /// their seqs from the counter, whose row lock is held to the commit (see `commit`).
    /// The counter is taken after every other row the batch writes, as it was when they all
    /// went in one statement: a transaction that takes it first and then waits for another's
    /// row (an attempt counter) could deadlock with one that holds that row and waits for it.
    func addEvents(to batch: inout WriteBatch) throws {
        guard !heldBack.events.isEmpty else { return }
        if heldBack.events.count >= Self.eventsCopiedFrom {
            if !batch.isEmpty {
                try store.session.send(batch.statement(selecting: "NULL"), batch.values)
                batch = WriteBatch()
            }
            return try copyHeldEvents()
        }
        let taken = batch.bind(.int(Int64(heldBack.events.count)))
        batch.add("UPDATE event_counter SET last = last + \(taken) RETURNING last", as: "counter")
        var rows = batch.rows()
        addEventColumns(to: &rows)
        batch.add("INSERT INTO event (\(Self.eventColumns), seq) " + rows.select("(SELECT last FROM counter) - \(taken) + given.ord"),
                  rows: rows)
        heldBack.events.removeAll()
    }

    /// The events held back, by COPY, which takes values, not expressions: numbered here,
    /// from the counter's answer (one wait more, for thousands of rows). Emptied before the
    /// wait: should it fail, the transaction is rolled back, events and all.
    private func copyHeldEvents() throws {
        let events = heldBack.events
        heldBack.events.removeAll()
        let last = try store.session.count("UPDATE event_counter SET last = last + $1 RETURNING last", [.int(Int64(events.count))])
        // A W2 event is about 60 bytes.
        var rows = CopyText(capacity: events.count * 96)
        for (offset, event) in events.enumerated() {
            rows.int(last - Int64(events.count) + 1 + Int64(offset))
            rows.int(event.at.milliseconds)
            rows.text(event.sale)
            rows.text(event.kind.rawValue)
            rows.text(event.booking?.text)
            rows.text(event.user?.text)
            rows.int(event.request?.value)
            rows.text(event.detail)
            rows.endRow()
        }
        try store.session.sendCopy(into: "event", columns: ["seq"] + Self.eventColumnNames, rows)
    }

    private static var eventColumnNames: [String] { ["at", "sale", "kind", "booking", "user_id", "request", "detail"] }
    private static var eventColumns: String { eventColumnNames.joined(separator: ", ") }

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
