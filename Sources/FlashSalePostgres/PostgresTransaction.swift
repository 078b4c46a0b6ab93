import FlashSaleCore
import FlashSaleEngine

/// The rows a decision reads and writes, on the store's one connection, inside the
/// transaction the store opened: READ COMMITTED for writes, where the first read of a sale
/// locks its row (`FOR UPDATE`) to the commit, so one sale's decisions take turns and
/// different sales' run side by side; REPEATABLE READ, READ ONLY for one snapshot of reads.
final class PostgresTransaction: StoreTransaction {
    unowned let store: PostgresStore
    /// The connection, once the writes held back are sent (`HeldBackWrites`): every
    /// statement of the transaction, its commit included, sees them. (`store.session` is
    /// the connection as it is, for the few reads that may go before them.)
    var session: PostgresSession {
        get throws {
            try sendHeldBack()
            return store.session
        }
    }
    private(set) var isWrite = false
    /// The sales whose rows this transaction has locked.
    private var locked: Set<SaleID> = []
    /// A sale's row as `readAhead` locked and read it, for the `sale` read that follows.
    var lockedAhead: Sale?
    /// Whether anything but attempt counts was written: a commit of only those may skip
    /// the flush to disk; one with more notifies the schema's followers.
    var wrote = false
    /// The attempt tallies handed over in this transaction, written when it commits.
    var unwrittenAttempts: [(sale: SaleID, tally: AttemptTally)] = []
    /// Active bookings and keys' bookings and requests, and the sale's blocks, read ahead
    /// for a run of decisions (see `readAhead`).
    var bookingsReadAhead: BookingsReadAhead?
    var readAheadBlocks: (sale: SaleID, blocks: [Block])?
    /// Holds and events not sent yet.
    var heldBack = HeldBackWrites()
    /// The next request id, once this transaction has taken one: the counter's row lock is
    /// held to the commit, so the ids after are this transaction's (`enqueue(new:)`).
    var nextRequestID: Int64?
    /// Ids taken since the counter last moved, which it moves by before the commit (or the
    /// next run of ids): the same row updated once a keyed request made a chain of row
    /// versions that each update walked, and 20,000 keyed requests took 22 s.
    var idsOwedToCounter: Int64 = 0

    init(store: PostgresStore) {
        self.store = store
    }

    /// The BEGIN's answer comes with the transaction's first statement's (`PostgresSession.send`).
    func begin(write: Bool) throws {
        try session.send(write ? "BEGIN ISOLATION LEVEL READ COMMITTED" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try store.session.askSchemaIdentity()
        isWrite = write
    }

    /// Everything held back goes in one statement (`WriteBatch`), then COMMIT, both sent
    /// before either is waited for: a single `book` holds its sale's row lock across three
    /// answers from the server (the lock's, the read-ahead's, the writes'), not eight. The
    /// events get their seq here, at the end (or at the first set-based statement that
    /// numbers events, `rejectRun`): the counter's row lock, taken by the UPDATE,
    /// is held to the COMMIT, so a transaction that takes seqs after another one commits
    /// after it, and seq order is commit order (`events(after:)`'s promise).
    func commit(_ content: CommitContent) throws {
        do {
            // Not `session`, which would send the held-back writes on their own.
            try store.session.settleAskedAhead()
            try settleRequestCounter()
            let counted = !unwrittenAttempts.isEmpty
            var batch = WriteBatch()
            try addHeldBackRows(to: &batch)
            try sendIfLarge(&batch)
            addAttemptCounts(to: &batch)
            try sendIfLarge(&batch)
            try addEvents(to: &batch)
            // Sent with the COMMIT, which waits for both (`PostgresSession.send`). A change
            // asks for its transaction's id and server process there too: should the COMMIT
            // go unanswered, a follower asks the server later whether it stands
            // (`committed(unanswered:)`).
            // And its writes done, the transaction is ended by the server if left idle
            // (`idleTimeout`).
            var transactionAsked: PostgresSession.Asked?
            if wrote {
                let channel = batch.bind(.text(store.session.location.changeChannel))
                transactionAsked = try store.session.ask(
                    batch.statement(selecting: "\(Self.idleTimeout), pg_notify(\(channel), ''), pg_current_xact_id()::text, pg_backend_pid()"),
                    batch.values)
            } else if !batch.isEmpty {
                // Telemetry alone: a crash may lose it (CommitContent).
                let result = content == .telemetryOnly ? "set_config('synchronous_commit', 'off', true)" : "NULL"
                try store.session.send(batch.statement(selecting: result), batch.values)
            }
            // Everything above was sent with it: lost now, the transaction may stand.
            do {
                try store.session.execute("COMMIT")
            } catch {
                // The server refused the last write, or ended the session as it ran (found by
                // probing: pg_terminate_backend then, and the group was said to be perhaps
                // committed): the COMMIT never ran.
                if let asked = transactionAsked, store.session.refused(asked) { throw error }
                throw PostgresError.awaitingCommit(error, transaction: transactionAsked.flatMap(store.session.transaction(ifAnswered:)))
            }
            if wrote || counted { store.committedChanges = true }
        } catch {
            rollback()
            throw error
        }
        reset()
    }

    /// A write transaction left idle for a minute is ended by the server (unless the role
    /// or the database sets a shorter time, kept: review): one whose COMMIT was lost on the
    /// way held its sales' rows, every other writer waiting, until the server saw the
    /// connection gone, hours later, or until it was ended
    /// (`PostgresStore.committed(unanswered:)`), which a role not allowed
    /// `pg_terminate_backend` cannot do (found by probing). Set by the last write, not in a
    /// statement of its own: that one cost a single `book` 2–4% (bench/pg.sh, alternating
    /// runs).
    static let idleTimeout = """
        CASE WHEN current_setting('idle_in_transaction_session_timeout')::interval NOT BETWEEN '1 millisecond' AND '1 minute'
             THEN set_config('idle_in_transaction_session_timeout', '1min', true) END
        """

    /// A group's thousands of rows go a table at a time, each statement answered before the
    /// next is encoded: all of a large group's writes encoded at once came to 32.2 MiB of
    /// peak RSS on W2's `book --stream` (bench/pg.sh), over its 32 MiB. A round trip more
    /// is nothing to such a group; a single decision's writes still go as one statement.
    private func sendIfLarge(_ batch: inout WriteBatch) throws {
        guard batch.rowCount > 1024 else { return }
        try store.session.execute(batch.statement(selecting: "NULL"), batch.values)
        batch = WriteBatch()
    }

    func rollback() {
        heldBack = HeldBackWrites()
        _ = try? store.session.execute("ROLLBACK")
        reset()
    }

    func endRead() throws {
        defer { reset() }
        try session.execute("COMMIT")
    }

    private func reset() {
        isWrite = false
        locked.removeAll(keepingCapacity: true)
        wrote = false
        unwrittenAttempts.removeAll(keepingCapacity: true)
        bookingsReadAhead = nil
        readAheadBlocks = nil
        lockedAhead = nil
        heldBack = HeldBackWrites()
        nextRequestID = nil
        idsOwedToCounter = 0
    }

    /// Runs a statement that writes.
    @discardableResult
    func write(_ sql: String, _ values: [SQLValue]) throws -> Int64 {
        wrote = true
        return try session.execute(sql, values)
    }

    func hasLocked(_ sale: SaleID) -> Bool {
        locked.contains(sale)
    }

    // MARK: - Sales

    func sale(_ id: SaleID) throws -> Sale? {
        if let sale = lockedAhead, sale.id == id {
            lockedAhead = nil
            return sale
        }
        let lock = isWrite && !locked.contains(id)
        let sale = try session.firstRow(lock ? Self.lockingSaleRead : "SELECT \(saleColumns) FROM sale WHERE id = $1",
                                        [.text(id.text)], decodeSale)
        if lock, sale != nil { locked.insert(id) }
        return sale
    }

    /// The first read of a sale in a write transaction, which locks its row to the commit.
    static let lockingSaleRead = "SELECT \(saleColumns) FROM sale WHERE id = $1 FOR UPDATE"

    func didLock(_ sale: SaleID) {
        locked.insert(sale)
    }

    /// In a write transaction, every sale's row is locked, in id order.
    func allSales() throws -> [Sale] {
        let sales = try session.rows("SELECT \(saleColumns) FROM sale ORDER BY id" + (isWrite ? " FOR UPDATE" : ""), [], decodeSale)
        if isWrite { locked.formUnion(sales.map(\.id)) }
        return sales
    }

    func insertSale(_ definition: SaleDefinition, at now: Instant) throws -> Bool {
        let inserted = try write(
            """
            INSERT INTO sale (id, name, state, total, available, held, booked, hold_ms, per_user,
                              per_ip, waitlist, starts_at, ends_at, created_at, high_water)
            VALUES ($1, $2, 'open', $3, $3, 0, 0, $4, $5, $6, $7, $8, $9, $10, $10)
            ON CONFLICT (id) DO NOTHING
            """,
            [.text(definition.id.text), .text(definition.name), .int(definition.inventory), .int(definition.hold.milliseconds),
             .int(definition.perUser), .int(definition.perIP), .bool(definition.waitlist),
             .int(definition.startsAt.milliseconds), .int(definition.endsAt?.milliseconds), .int(now.milliseconds)])
        if inserted == 1 { locked.insert(definition.id) }
        return inserted == 1
    }

    func setTotal(of sale: SaleID, to total: Int64, at now: Instant) throws {
        try write(
            """
            UPDATE sale SET total = $1, available = $1 - held - booked, high_water = greatest(high_water, $2)
            WHERE id = $3
            """, [.int(total), .int(now.milliseconds), .text(sale.text)])
    }

    func setOperatorState(of sale: SaleID, to state: OperatorState, at now: Instant) throws {
        try write("UPDATE sale SET state = $1, high_water = greatest(high_water, $2) WHERE id = $3",
                  [.text(state.rawValue), .int(now.milliseconds), .text(sale.text)])
    }

    /// Held back (`HeldBackWrites`).
    func adjustCounters(of sale: SaleID, by change: CounterChange, at now: Instant) throws {
        heldBack.adjust(sale, by: change, at: now)
        wrote = true
    }

    /// One lock for the whole table, waited for once, up to the busy timeout: it conflicts
    /// with every decider's row lock and with a new sale's insert. Each row in turn
    /// (`allSales`) held the sales before while it waited for the next, each wait up to
    /// the busy timeout, and missed a sale created meanwhile (review). Reads go on; while
    /// it waits, every sale's new deciders wait behind it (PostgreSQL queues a lock behind
    /// a conflicting one waiting), at most the busy timeout.
    func lockEverySale() throws {
        try session.execute("LOCK TABLE sale IN EXCLUSIVE MODE")
    }

    func raiseHighWater(of sale: SaleID, to now: Instant) throws {
        try write("UPDATE sale SET high_water = greatest(high_water, $1) WHERE id = $2", [.int(now.milliseconds), .text(sale.text)])
    }

    // MARK: - Bookings

    func booking(_ id: BookingID, in sale: SaleID) throws -> Booking? {
        try session.firstRow("SELECT \(bookingColumns) FROM booking WHERE id = $1 AND sale = $2",
                             [.text(id.text), .text(sale.text)], decodeBooking)
    }

    func booking(withKey key: String, in sale: SaleID) throws -> Booking? {
        if let known = bookingsReadAhead, known.knows(key: key, in: sale) { return known.booking(withKey: key) }
        return try session.firstRow(PostgresKeys.lookup(bookingColumns, in: "booking", key: "$2", sale: "$1"),
                                    [.text(sale.text), .text(key)], decodeBooking)
    }

    func activeBookings(of user: UserID, in sale: SaleID, at now: Instant) throws -> Int64 {
        if let known = bookingsReadAhead?.count(ofUser: user.text, in: sale, at: now) { return known }
        return try session.count("SELECT count(*) FROM booking WHERE sale = $1 AND user_id = $2 AND \(activeBooking(now: "$3"))",
                                 [.text(sale.text), .text(user.text), .int(now.milliseconds)])
    }

    func activeBookings(fromAddress address: String, in sale: SaleID, at now: Instant) throws -> Int64 {
        if let known = bookingsReadAhead?.count(ofAddress: address, in: sale, at: now) { return known }
        return try session.count("SELECT count(*) FROM booking WHERE sale = $1 AND ip_canonical = $2 AND \(activeBooking(now: "$3"))",
                                 [.text(sale.text), .text(address), .int(now.milliseconds)])
    }

    /// Held back (`HeldBackWrites`). The address's one spelling goes in `ip_canonical` only
    /// when it is counted, as in SQLite.
    func insertHold(_ hold: Booking, countedByAddress: Bool) throws {
        let address = countedByAddress ? hold.ip.flatMap(IPAddress.init)?.perIPKey : nil
        bookingsReadAhead?.add(hold, address: address)
        heldBack.holds.append((hold, address))
        wrote = true
    }

    func setStatus(of booking: Booking, to status: BookingStatus, at now: Instant) throws {
        bookingsReadAhead = nil
        let changed = try write(
            """
            UPDATE booking SET status = $1::text,
                confirmed_at = CASE WHEN $1::text = 'booked' THEN $2 ELSE confirmed_at END,
                cancelled_at = CASE WHEN $1::text = 'cancelled' THEN $2 ELSE cancelled_at END,
                expired_at = CASE WHEN $1::text = 'expired' THEN expires_at ELSE expired_at END
            WHERE id = $3 AND status = $4
            """,
            [.text(status.rawValue), .int(now.milliseconds), .text(booking.id.text), .text(booking.status.rawValue)])
        // The row was read under its sale's lock; anything else is a bug.
        guard changed == 1 else {
            throw FlashSaleError.internalFailure("booking \(booking.id) changed under its sale's lock")
        }
    }

    // MARK: - Events

    /// Held back (`HeldBackWrites`).
    func appendEvent(_ event: NewEvent) throws {
        heldBack.events.append(event)
        wrote = true
    }

    // MARK: - Blocks

    func blocks(applyingTo sale: SaleID?) throws -> [Block] {
        if let sale, let known = readAheadBlocks, known.sale == sale { return known.blocks }
        return try session.rows(
            """
            SELECT kind, value, contains, sale, reason, created_at FROM block
            WHERE $1::text IS NULL OR sale IS NULL OR sale = $1::text ORDER BY id
            """, [.text(sale?.text)], decodeBlock)
    }

    func insertBlock(_ block: Block) throws -> Bool {
        readAheadBlocks = nil
        return try write(
            """
            INSERT INTO block (kind, value, contains, sale, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT DO NOTHING
            """,
            [.text(block.kind.rawValue), .text(block.value), .bool(block.contains), .text(block.sale?.text),
             .text(block.reason), .int(block.createdAt.milliseconds)]) == 1
    }

    func deleteBlock(kind: BlockKind, value: String, contains: Bool, sale: SaleID?) throws -> Bool {
        readAheadBlocks = nil
        return try write(
            """
            DELETE FROM block WHERE kind = $1 AND value = $2 AND contains = $3
                AND coalesce(sale, '') = coalesce($4::text, '')
            """, [.text(kind.rawValue), .text(value), .bool(contains), .text(sale?.text)]) == 1
    }
}
