import FlashSaleCore

/// Bot defence: block lists (check 9 of a booking request, with the per-IP limit).
extension Engine {
    /// Events about blocks that apply to every sale are logged under this sale name.
    public static let everySale = "*"

    /// `block`: adds a block and returns it; the same block again is a no-op that returns
    /// the block as it stands (with its first reason). An `ip` block is the same block in
    /// any spelling (`Block.asStored`), one stored as typed by an earlier flashsale too.
    @discardableResult
    public func addBlock(_ given: Block, clock: Instant) throws -> Block {
        try write(inSale: given.sale) { transaction in
            let sale = try Self.lockOutDeciders(of: given.sale, in: transaction)
            // A sale's block is made at the sale's decision time, as its event is: the
            // block said 10:00 and its event 12:00 after a pause at 12:00 (found by probing).
            let at = sale?.decisionTime(clock: clock) ?? clock
            let block = try given.asStored(at: at)
            if let existing = try Self.stored(like: block, in: transaction).first { return existing }
            guard try transaction.insertBlock(block) else {
                return try Self.stored(like: block, in: transaction).first ?? block
            }
            try appendBlockEvent(.blocked, of: block.sale, detail: block.eventDetail, in: transaction, clock: clock)
            return block
        }
    }

    /// `unblock`: removes the block with `named`'s kind, value, match and sale (not found if
    /// none); an `ip` value names its range in any spelling, and every spelling of it is
    /// removed. Named by a `Block`, checked by whoever makes it before the store is opened.
    public func removeBlock(_ named: Block, clock: Instant) throws {
        try write(inSale: named.sale) { transaction in
            _ = try Self.lockOutDeciders(of: named.sale, in: transaction)
            var removed = false
            for block in try Self.stored(like: named, in: transaction) {
                guard try transaction.deleteBlock(kind: named.kind, value: block.value, contains: named.contains, sale: named.sale) else {
                    continue
                }
                removed = true
                try appendBlockEvent(.unblocked, of: named.sale,
                                     detail: Block.name(kind: named.kind, value: block.value, contains: named.contains),
                                     in: transaction, clock: clock)
            }
            // Read, but deleted first by another unblock that committed meanwhile (PostgreSQL
            // reads before it waits for the row: found by probing, each logged its event).
            guard removed else { throw SaleError.blockNotFound }
        }
    }

    /// Waits for the deciders of the sales a change to blocks applies to, `sale` (which it
    /// returns) or every one, and keeps them waiting until it commits, before it reads a
    /// block: a decider reads the blocks once per transaction (`TransactionFacts`), under its
    /// sale's lock. On PostgreSQL a block of every sale took no sale's lock, and a `book
    /// --stream` group went on under the blocks it had read, granting the blocked user
    /// thousands of holds after `block` had exited 0 (found by probing); and an unblock of
    /// a sale deleted its block before it locked the sale, the other order to a block's,
    /// so that the two deadlocked (review).
    private static func lockOutDeciders(of sale: SaleID?, in transaction: any StoreTransaction) throws -> Sale? {
        guard let sale else {
            try transaction.lockEverySale()
            return nil
        }
        return try transaction.requireSale(sale)
    }

    /// The stored blocks that are `block`: of its kind, match and sale, with its value, or
    /// for `ip`, its range, in whatever spelling it was stored (an earlier flashsale stored
    /// ranges as typed, and unblocking one spelling left the others: found by probing).
    private static func stored(like block: Block, in transaction: any StoreTransaction) throws -> [Block] {
        try transaction.blocks(applyingTo: block.sale).filter { stored in
            stored.kind == block.kind && stored.contains == block.contains && stored.sale == block.sale
                && (block.kind == .ip ? stored.ipRange == block.ipRange : stored.value == block.value)
        }
    }

    /// A block's event. One of a sale's is at the sale's decision time, which the sale then
    /// keeps, as a pause's is: time never runs backwards for a sale, whatever the clock
    /// says. One of every sale's is none of theirs: at the clock's time.
    private func appendBlockEvent(_ kind: EventKind, of sale: SaleID?, detail: String, in transaction: any StoreTransaction,
                                  clock: Instant) throws {
        var now = clock
        if let sale {
            now = try transaction.requireSale(sale).decisionTime(clock: clock)
            try transaction.raiseHighWater(of: sale, to: now)
        }
        try transaction.appendEvent(NewEvent(at: now, sale: sale?.text ?? Engine.everySale, kind: kind, detail: detail))
    }

    /// Every block in force; with a sale, those that apply to it (not found for no such sale).
    public func blocks(in sale: SaleID?) throws -> [Block] {
        try store.read { reading in
            if let sale { _ = try reading.requireSale(sale) }
            return try reading.blocks(applyingTo: sale)
        }
    }
}
