import FlashSaleCore

/// Bot defence: block lists (check 9 of a booking request, with the per-IP limit).
extension Engine {
    /// Events about blocks that apply to every sale are logged under this sale name.
    public static let everySale = "*"

    /// `block`: adds a block and returns it; the same block again is a no-op that returns
    /// the block as it stands (with its first reason).
    @discardableResult
    public func addBlock(_ given: Block, clock: Instant) throws -> Block {
        try store.write { transaction in
            // A sale's block is made at the sale's decision time, as its event is: the
            // block said 10:00 and its event 12:00 after a pause at 12:00 (found by probing).
            let at = try given.sale.map { try transaction.requireSale($0).decisionTime(clock: clock) } ?? clock
            let block = try given.asStored(at: at)
            guard try transaction.insertBlock(block) else {
                return try transaction.blocks(applyingTo: block.sale).first {
                    $0.kind == block.kind && $0.value == block.value && $0.contains == block.contains && $0.sale == block.sale
                } ?? block
            }
            try appendBlockEvent(.blocked, of: block.sale, detail: block.eventDetail, in: transaction, clock: clock)
            return block
        }
    }

    /// `unblock`: removes the block with that kind, value, match and sale (not found if none).
    /// An `ip` value names its range in any spelling, or, for a block stored before ranges
    /// were stored in one (`Block.asStored`), as it was typed.
    public func removeBlock(_ kind: BlockKind, value given: String, contains: Bool, sale: SaleID?, clock: Instant) throws {
        let value = kind == .ip ? try Block.storedIPValue(of: given) : given
        try store.write { transaction in
            var removed: String?
            for candidate in value == given ? [value] : [value, given] where removed == nil {
                if try transaction.deleteBlock(kind: kind, value: candidate, contains: contains, sale: sale) { removed = candidate }
            }
            guard let removed else { throw SaleError.blockNotFound }
            try appendBlockEvent(.unblocked, of: sale, detail: Block.name(kind: kind, value: removed, contains: contains),
                                 in: transaction, clock: clock)
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
