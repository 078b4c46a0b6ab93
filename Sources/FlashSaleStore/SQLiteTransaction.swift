import FlashSaleCore
import FlashSaleEngine

/// The rows a decision reads and writes, on the store's one connection, inside the
/// transaction the store opened (`BEGIN IMMEDIATE` for writes, `BEGIN DEFERRED` for reads).
final class SQLiteTransaction: StoreTransaction {
    unowned let store: SQLiteStore
    var db: Connection { store.db }
    /// This transaction's changes to `hold_second` not written yet: a stream of holds all
    /// expiring within one second writes its row once per commit, not once per hold. The
    /// store reuses this object for every transaction, so a commit writes them and a
    /// rollback drops them.
    private var heldBySecond: [HoldSecond: Int64] = [:]
    /// The second counted last, kept out of `heldBySecond` until another comes: a stream's
    /// holds fall in one second after another, and hashing a key for each hold was 1% of it.
    private var lastCounted: (second: HoldSecond, holds: Int64)?
    /// The attempt tallies handed over in this transaction, written when it commits: with
    /// its decisions, or without a sync in a transaction of their own (see `commit`).
    var unwrittenAttempts: [(sale: SaleID, tally: AttemptTally)] = []
    /// The active bookings of the users and addresses of one sale that have many, read
    /// once in this transaction: counted by SQLite at each decision, one user's holds made
    /// `book --stream` quadratic (10,000 lines of one user took 5.8 s, of 10,000 users 0.2).
    private var manyBookings: KnownBookings?
    /// From this many, an owner counted a second time in a transaction has its bookings
    /// read and kept; below, a count is as quick, and an owner counted once (a single
    /// `book`, a serve group's one request of a user) would pay the read for nothing.
    static let manyBookingsFrom: Int64 = 32

    init(store: SQLiteStore) {
        self.store = store
    }

    /// At each transaction's start and end (what one knew may have changed before the
    /// next), and at any change to bookings but this transaction's holds.
    func forgetKnownBookings() {
        manyBookings = nil
    }

    /// Telemetry alone is committed in a transaction of its own, after this one (which
    /// wrote nothing, so costs no sync) has committed: the safety level of a commit can
    /// only be chosen outside a transaction.
    func commit(_ content: CommitContent) throws {
        forgetKnownBookings()
        do {
            try writeHeldBySecond()
            if content == .decisions { try writeAttempts() }
            try db.commit()
        } catch {
            rollback()
            throw error
        }
        guard !unwrittenAttempts.isEmpty else { return }
        defer { unwrittenAttempts.removeAll(keepingCapacity: true) }
        try db.writeTransactionWithoutSync { try writeAttempts() }
    }

    func rollback() {
        forgetKnownBookings()
        heldBySecond.removeAll(keepingCapacity: true)
        lastCounted = nil
        unwrittenAttempts.removeAll(keepingCapacity: true)
        db.rollback()
    }

    /// Counts `holds` more (fewer, if negative) held holds of `sale` expiring at `expiresAt`.
    func countHeld(_ holds: Int64, of sale: SaleID, expiringAt expiresAt: Int64) {
        let second = HoldSecond(sale: sale.text, second: expiresAt / 1000)
        if let last = lastCounted, last.second == second {
            lastCounted = (second, last.holds + holds)
        } else {
            settleLastCounted()
            lastCounted = (second, holds)
        }
    }

    private func settleLastCounted() {
        if let last = lastCounted {
            heldBySecond[last.second, default: 0] += last.holds
            lastCounted = nil
        }
    }

    /// One UPSERT per second changed; a second left with no held hold loses its row.
    private func writeHeldBySecond() throws {
        settleLastCounted()
        for (key, change) in heldBySecond where change != 0 {
            let held = try db.firstRow(
                """
                INSERT INTO hold_second (sale, second, held) VALUES (:sale, :second, :change)
                ON CONFLICT DO UPDATE SET held = held + excluded.held RETURNING held
                """,
                [":sale": .text(key.sale), ":second": .integer(key.second), ":change": .integer(change)]) { $0.int64(0) }
            if held == 0 {
                try db.execute("DELETE FROM hold_second WHERE sale = :sale AND second = :second",
                               [":sale": .text(key.sale), ":second": .integer(key.second)])
            }
        }
        heldBySecond.removeAll(keepingCapacity: true)
    }

    // MARK: - Sales

    func sale(_ id: SaleID) throws -> Sale? {
        try db.firstRow(selectSale, [":id": .text(id.text)], decodeSale)
    }

    func allSales() throws -> [Sale] {
        try db.rows("SELECT \(saleColumns) FROM sale ORDER BY id", [:], decodeSale)
    }

    func insertSale(_ definition: SaleDefinition, at now: Instant) throws -> Bool {
        try db.execute(
            """
            INSERT INTO sale (id, name, state, total, available, held, booked, hold_ms, per_user,
                              per_ip, waitlist, starts_at, ends_at, created_at, high_water)
            VALUES (:id, :name, 'open', :inventory, :inventory, 0, 0, :hold_ms, :per_user,
                    :per_ip, :waitlist, :starts_at, :ends_at, :now, :now)
            ON CONFLICT (id) DO NOTHING
            """,
            [":id": .text(definition.id.text), ":name": .text(definition.name),
             ":inventory": .integer(definition.inventory), ":hold_ms": .integer(definition.hold.milliseconds),
             ":per_user": .integer(definition.perUser), ":waitlist": .integer(definition.waitlist ? 1 : 0),
             ":per_ip": .integer(definition.perIP),
             ":starts_at": .integer(definition.startsAt.milliseconds),
             ":ends_at": .integer(definition.endsAt?.milliseconds), ":now": .integer(now.milliseconds)])
        return db.changes == 1
    }

    func setTotal(of sale: SaleID, to total: Int64, at now: Instant) throws {
        try db.execute(
            """
            UPDATE sale SET total = :total, available = :total - held - booked,
                            high_water = max(high_water, :now)
            WHERE id = :sale
            """,
            [":total": .integer(total), ":now": .integer(now.milliseconds), ":sale": .text(sale.text)])
    }

    func setOperatorState(of sale: SaleID, to state: OperatorState, at now: Instant) throws {
        try db.execute(
            "UPDATE sale SET state = :state, high_water = max(high_water, :now) WHERE id = :sale",
            [":state": .text(state.rawValue), ":now": .integer(now.milliseconds), ":sale": .text(sale.text)])
    }

    func adjustCounters(of sale: SaleID, by change: CounterChange, at now: Instant) throws {
        try db.execute(
            """
            UPDATE sale SET available = available + :available, held = held + :held,
                booked = booked + :booked, cancelled = cancelled + :cancelled,
                expired = expired + :expired, high_water = max(high_water, :now)
            WHERE id = :sale
            """,
            [":available": .integer(change.available), ":held": .integer(change.held), ":booked": .integer(change.booked),
             ":cancelled": .integer(change.cancelled), ":expired": .integer(change.expired),
             ":now": .integer(now.milliseconds), ":sale": .text(sale.text)])
    }

    /// The write lock, taken at the transaction's start, is the database's.
    func lockEverySale() throws {}

    func raiseHighWater(of sale: SaleID, to now: Instant) throws {
        try db.execute("UPDATE sale SET high_water = max(high_water, :now) WHERE id = :sale",
                       [":now": .integer(now.milliseconds), ":sale": .text(sale.text)])
    }

    // MARK: - Bookings

    func booking(_ id: BookingID, in sale: SaleID) throws -> Booking? {
        try db.firstRow("SELECT \(bookingColumns) FROM booking WHERE id = :id AND sale = :sale",
                        [":id": .text(id.text), ":sale": .text(sale.text)], decodeBooking)
    }

    func booking(withKey key: String, in sale: SaleID) throws -> Booking? {
        try db.firstRow(selectBookingByKey, [":sale": .text(sale.text), ":key": .text(key)], decodeBooking)
    }

    func activeBookings(of user: UserID, in sale: SaleID, at now: Instant) throws -> Int64 {
        try activeBookings(of: user.text, known: \.users, counting: store.rowStatements.countActiveBookings,
                           ends: activeBookingEndsOfUser, in: sale, at: now)
    }

    func activeBookings(fromAddress address: String, in sale: SaleID, at now: Instant) throws -> Int64 {
        try activeBookings(of: address, known: \.addresses, counting: store.rowStatements.countActiveFromAddress,
                           ends: activeBookingEndsFromAddress, in: sale, at: now)
    }

    /// Counted by `counting`, unless the owner's bookings are known; from
    /// `manyBookingsFrom` on, read by `ends` and kept at the owner's second count.
    private func activeBookings(of owner: String, known: WritableKeyPath<KnownBookings, ActiveBookingEnds>,
                                counting: RowStatement, ends: String, in sale: SaleID, at now: Instant) throws -> Int64 {
        if let count = manyBookings?[keyPath: known].count(of: owner, in: sale, at: now) { return count }
        let count = try counting.run(.text(sale.text), .text(owner), .integer(now.milliseconds)) ?? 0
        guard count >= Self.manyBookingsFrom else { return count }
        var kept = manyBookings.flatMap { $0.users.sale == sale ? $0 : nil } ?? KnownBookings(sale: sale, readAt: now)
        manyBookings = nil
        defer { manyBookings = kept }
        guard !kept.countedOnce.insert(ExactText((known == \.users ? "user " : "address ") + owner)).inserted else { return count }
        let read = try db.rows(ends, [":sale": .text(sale.text), ":owner": .text(owner), ":now": .integer(now.milliseconds)]) {
            $0.optionalInt64(0).map(Instant.init)
        }
        kept[keyPath: known].learn(owner, ends: read, at: now)
        return count
    }

    func earliestHoldExpiry(in sale: SaleID) throws -> Instant? {
        try db.firstRow(firstHoldExpiry, [":sale": .text(sale.text)]) { $0.optionalInt64(0).map(Instant.init) } ?? nil
    }

    func overdueHolds(in sale: SaleID, at now: Instant, limit: Int64?) throws -> [Booking] {
        try db.rows(selectOverdueHolds,
                    [":sale": .text(sale.text), ":now": .integer(now.milliseconds), ":limit": .integer(limit ?? -1)],
                    decodeBooking)
    }

    /// Every hold of the seconds before `now`'s is overdue, counted a row per second; of
    /// `now`'s own second, the holds up to `now`, through the index. (Instants are never
    /// before 1970, so `/` rounds down.)
    func overdueHoldCount(in sale: SaleID, at now: Instant) throws -> Int64 {
        try writeHeldBySecond()
        let second = now.milliseconds / 1000
        return try store.count(
            """
            SELECT coalesce((SELECT sum(held) FROM hold_second WHERE sale = :sale AND second < :second), 0)
                 + (SELECT count(*) FROM booking WHERE sale = :sale AND \(overdueHold) AND expires_at >= :second * 1000)
            """,
            [":sale": .text(sale.text), ":second": .integer(second), ":now": .integer(now.milliseconds)])
    }

    /// The address's one spelling goes in `ip_canonical` only when it is counted: an entry
    /// in the index `booking_by_ip` costs every hold of a sale without a per-IP limit.
    func insertHold(_ hold: Booking, countedByAddress: Bool) throws {
        let address = countedByAddress ? hold.ip.flatMap(IPAddress.init)?.perIPKey : nil
        try store.rowStatements.insertHold.run(
            .text(hold.id.text), .text(hold.sale.text), .text(hold.user.text), .integer(hold.createdAt.milliseconds),
            .integer(hold.expiresAt.milliseconds), .text(hold.ip), .text(address), .text(hold.userAgent), .text(hold.key))
        countHeld(1, of: hold.sale, expiringAt: hold.expiresAt.milliseconds)
        manyBookings?.users.add(hold, owner: hold.user.text)
        if let address { manyBookings?.addresses.add(hold, owner: address) }
    }

    func setStatus(of booking: Booking, to status: BookingStatus, at now: Instant) throws {
        forgetKnownBookings()
        try db.execute(
            """
            UPDATE booking SET status = :status,
                confirmed_at = CASE :status WHEN 'booked' THEN :now ELSE confirmed_at END,
                cancelled_at = CASE :status WHEN 'cancelled' THEN :now ELSE cancelled_at END,
                expired_at = CASE :status WHEN 'expired' THEN expires_at ELSE expired_at END
            WHERE id = :id AND status = :from
            """,
            [":status": .text(status.rawValue), ":now": .integer(now.milliseconds),
             ":id": .text(booking.id.text), ":from": .text(booking.status.rawValue)])
        // The row was read in this same write transaction; anything else is a bug.
        guard db.changes == 1 else {
            throw FlashSaleError.internalFailure("booking \(booking.id) changed under a write lock")
        }
        if booking.status == .held, status != .held {
            countHeld(-1, of: booking.sale, expiringAt: booking.expiresAt.milliseconds)
        }
    }

    // MARK: - Events

    func appendEvent(_ event: NewEvent) throws {
        try store.rowStatements.appendEvent.run(
            .integer(event.at.milliseconds), .text(event.sale), .text(event.kind.rawValue), .text(event.booking?.text),
            .text(event.user?.text), .integer(event.request?.value), .text(event.detail))
    }

    // MARK: - Blocks

    func blocks(applyingTo sale: SaleID?) throws -> [Block] {
        try db.rows(
            """
            SELECT kind, value, contains, sale, reason, created_at FROM block
            WHERE :sale IS NULL OR sale IS NULL OR sale = :sale ORDER BY id
            """, [":sale": .text(sale?.text)], decodeBlock)
    }

    func insertBlock(_ block: Block) throws -> Bool {
        try db.execute(
            """
            INSERT INTO block (kind, value, contains, sale, reason, created_at)
            VALUES (:kind, :value, :contains, :sale, :reason, :now)
            ON CONFLICT DO NOTHING
            """,
            [":kind": .text(block.kind.rawValue), ":value": .text(block.value), ":contains": .integer(block.contains ? 1 : 0),
             ":sale": .text(block.sale?.text), ":reason": .text(block.reason), ":now": .integer(block.createdAt.milliseconds)])
        return db.changes == 1
    }

    func deleteBlock(kind: BlockKind, value: String, contains: Bool, sale: SaleID?) throws -> Bool {
        try db.execute(
            """
            DELETE FROM block WHERE kind = :kind AND value = :value AND contains = :contains
                AND coalesce(sale, '') = coalesce(:sale, '')
            """,
            [":kind": .text(kind.rawValue), ":value": .text(value), ":contains": .integer(contains ? 1 : 0),
             ":sale": .text(sale?.text)])
        return db.changes == 1
    }
}

/// A sale's second in `hold_second`.
struct HoldSecond: Hashable {
    let sale: String
    let second: Int64
}

/// What a transaction knows of one sale's users' and addresses' active bookings.
struct KnownBookings {
    var users: ActiveBookingEnds
    var addresses: ActiveBookingEnds
    /// Owners counted with many, by kind and value: read at their next count.
    var countedOnce: Set<ExactText> = []

    init(sale: SaleID, readAt: Instant) {
        users = ActiveBookingEnds(sale: sale, readAt: readAt)
        addresses = ActiveBookingEnds(sale: sale, readAt: readAt)
    }
}
