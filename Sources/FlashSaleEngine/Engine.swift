import FlashSaleCore

/// Every state change of a flash sale, written once. Each public method is one transaction
/// of the store: it loads what `Rules` needs, asks them, and writes the booking, the sale's
/// counters and an event together, so `total = available + held + booked` holds after
/// every commit. Front ends (the command line, HTTP) parse, call these, and render.
public struct Engine {
    public let store: any Store
    /// Whether the store's bulk fast paths are used (set-based rejection, many key-less
    /// requests enqueued at once). Off, the engine decides and enqueues one request at a
    /// time: the slow path the fast ones are tested against.
    let bulkPaths: Bool
    /// Where new bookings get their ids, given the time they are made: a
    /// `BookingIDGenerator`, except in a test that plays the same requests on two stores and
    /// compares everything that comes out.
    let newBookingID: (Instant) -> BookingID
    /// How many holds `sweep` expires per transaction.
    let sweepBatch: Int64

    /// Enough holds that a sweep's commits cost little, few enough that the write lock is
    /// held for a few tens of milliseconds at a time (see bench/sweep.sh).
    public static let defaultSweepBatch: Int64 = 5_000

    public init(store: any Store, bulkPaths: Bool = true, bookingIDs: ((Instant) -> BookingID)? = nil,
                sweepBatch: Int64 = defaultSweepBatch) {
        self.store = store
        self.bulkPaths = bulkPaths
        newBookingID = bookingIDs ?? BookingIDGenerator().make
        self.sweepBatch = sweepBatch
    }

    // MARK: - Sales

    public func createSale(_ definition: SaleDefinition, clock: Instant) throws -> SaleStatus {
        try store.write { transaction in
            // Asked of the insert, not of a look before it: on PostgreSQL another process's
            // create may commit between the two (found by review: of two rehearsals at once,
            // the second exited 1 with the server's duplicate key error).
            guard try transaction.insertSale(definition, at: clock) else { throw SaleError.saleExists(definition.id) }
            try transaction.appendEvent(NewEvent(at: clock, sale: definition.id.text, kind: .saleCreated,
                                                 detail: "inventory \(definition.inventory)"))
            return try status(of: transaction.requireSale(definition.id), in: transaction, clock: clock)
        }
    }

    /// `seed-inventory`: add `count` items, or with `exactly` make the total `count`.
    public func seedInventory(_ id: SaleID, count: Int64, exactly: Bool, clock: Instant) throws -> SaleStatus {
        try write(inSale: id) { transaction in
            var sale = try transaction.requireSale(id)
            let now = sale.decisionTime(clock: clock)
            // Overdue holds are expired: they must not keep a lower total from being set.
            if exactly, try expireOverdueHolds(of: sale, in: transaction, at: now, limit: nil, by: .seedInventory) > 0 {
                sale = try transaction.requireSale(id)
            }
            let total = try Rules.seededTotal(of: sale, count: count, exactly: exactly)
            // Adding none, or setting the total it has, is a no-op, as a repeated `pause` is:
            // no change, no event (found by probing: an "add 0" event recorded nothing).
            guard total != sale.counters.total else { return try status(of: sale, in: transaction, clock: now) }
            try transaction.setTotal(of: id, to: total, at: now)
            try transaction.appendEvent(NewEvent(at: now, sale: id.text, kind: .inventorySeeded,
                                                 detail: exactly ? "set \(count)" : "add \(count)"))
            return try status(of: transaction.requireSale(id), in: transaction, clock: now)
        }
    }

    /// `pause`, `resume`, `close`.
    public func change(_ id: SaleID, by command: OperatorCommand, clock: Instant) throws -> SaleStatus {
        try write(inSale: id) { transaction in
            let sale = try transaction.requireSale(id)
            let now = sale.decisionTime(clock: clock)
            guard let next = try Rules.change(sale, by: command, at: now) else {
                return try status(of: sale, in: transaction, clock: now)
            }
            try transaction.setOperatorState(of: id, to: next, at: now)
            try transaction.appendEvent(NewEvent(at: now, sale: id.text, kind: EventKind(command)))
            return try status(of: transaction.requireSale(id), in: transaction, clock: now)
        }
    }

    /// `store.write` in sale `id`, naming the sale when it does not exist (`namingMissingSale`).
    func write<T>(inSale id: SaleID?, _ body: (any StoreTransaction) throws -> T) throws -> T {
        try namingMissingSale(id) { try store.write(body) }
    }

    /// `write`, a write in sale `id`, or not found when it waited out another process's
    /// write lock in a sale that does not exist: busy says retry, which could never succeed,
    /// and a sale's existence is the first check (exit 3 before any other). Read only after
    /// the wait, so that a write that gets the lock pays nothing for it, and only where
    /// reads do not wait for writers: on PostgreSQL a missing sale's row keeps no write
    /// waiting, and the lock that did (a table's) would keep the read waiting as long
    /// again (found by probing: 75 after twice the busy timeout).
    func namingMissingSale<T>(_ id: SaleID?, _ write: () throws -> T) throws -> T {
        do {
            return try write()
        } catch where StoreFailure.of(error) == .busy {
            if let id, !missingAfterBusyWait([id]).isEmpty { throw SaleError.saleNotFound(id) }
            throw error
        }
    }

    /// Which of `sales` do not exist, asked once a write in them waited out another
    /// process's write lock and failed busy (`namingMissingSale`; serve's group, each of
    /// whose requests in such a sale is not found). None where reads wait for writers, and
    /// none when the read fails too: the wait's failure says it.
    public func missingAfterBusyWait(_ sales: Set<SaleID>) -> Set<SaleID> {
        guard !store.readsWaitForWriters, !sales.isEmpty else { return [] }
        return (try? store.read { reading in try sales.filter { try reading.sale($0) == nil } }) ?? []
    }

    /// The sale's row (not found if there is none), without the counts `status` adds.
    public func sale(_ id: SaleID) throws -> Sale {
        try store.read { try $0.requireSale(id) }
    }

    public func status(_ id: SaleID, clock: Instant) throws -> SaleStatus {
        try store.read { reading in try status(of: reading.requireSale(id), in: reading, clock: clock) }
    }

    public func sales(clock: Instant) throws -> [SaleStatus] {
        try store.read { reading in try reading.allSales().map { try status(of: $0, in: reading, clock: clock) } }
    }

    func status(of sale: Sale, in reading: any StoreReading, clock: Instant) throws -> SaleStatus {
        let now = sale.decisionTime(clock: clock)
        return SaleStatus(sale: sale, at: now, overdue: try reading.overdueHoldCount(in: sale.id, at: now),
                          queued: try reading.queuedRequests(in: sale.id))
    }
}

extension StoreReading {
    /// The sale, or not found.
    public func requireSale(_ id: SaleID) throws -> Sale {
        guard let sale = try sale(id) else {
            throw SaleError.saleNotFound(id)
        }
        return sale
    }
}
