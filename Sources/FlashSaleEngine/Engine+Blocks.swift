import FlashSaleCore

/// Bot defence: block lists (check 9 of a booking request, with the per-IP limit).
extension Engine {
    /// Events about blocks that apply to every sale are logged under this sale name.
    public static let everySale = "*"

    /// `block`: adds a block and returns it; the same block again is a no-op that returns
    /// the block as it stands (with its first reason).
    @discardableResult
    public func addBlock(_ block: Block, clock: Instant) throws -> Block {
        try store.write { transaction in
            if let sale = block.sale { _ = try transaction.requireSale(sale) }
            guard try transaction.insertBlock(block) else {
                return try transaction.blocks(applyingTo: block.sale).first {
                    $0.kind == block.kind && $0.value == block.value && $0.contains == block.contains && $0.sale == block.sale
                } ?? block
            }
            try transaction.appendEvent(NewEvent(at: clock, sale: block.sale?.text ?? Engine.everySale, kind: .blocked,
                                                 detail: block.eventDetail))
            return block
        }
    }

    /// `unblock`: removes the block with that kind, value, match and sale (not found if none).
    public func removeBlock(_ kind: BlockKind, value: String, contains: Bool, sale: SaleID?, clock: Instant) throws {
        try store.write { transaction in
            guard try transaction.deleteBlock(kind: kind, value: value, contains: contains, sale: sale) else {
                throw SaleError.blockNotFound
            }
            try transaction.appendEvent(NewEvent(at: clock, sale: sale?.text ?? Engine.everySale, kind: .unblocked,
                                                 detail: Block.name(kind: kind, value: value, contains: contains)))
        }
    }

    /// Every block in force; with a sale, those that apply to it (not found for no such sale).
    public func blocks(in sale: SaleID?) throws -> [Block] {
        try store.read { reading in
            if let sale { _ = try reading.requireSale(sale) }
            return try reading.blocks(applyingTo: sale)
        }
    }
}
