import FlashSaleCore

/// Bot defence: block lists and the per-IP limit (check 9 of a booking request).
extension SaleStore {
    /// `block`: adds a block and returns it; the same block again is a no-op that returns
    /// the block as it stands (with its first reason).
    @discardableResult
    public func addBlock(_ block: Block, clock: Instant) throws -> Block {
        try db.writeTransaction {
            if let sale = block.sale { _ = try requireSale(sale) }
            try db.execute(
                """
                INSERT INTO block (kind, value, contains, sale, reason, created_at)
                VALUES (:kind, :value, :contains, :sale, :reason, :now)
                ON CONFLICT DO NOTHING
                """,
                [":kind": .text(block.kind.rawValue), ":value": .text(block.value), ":contains": .integer(block.contains ? 1 : 0),
                 ":sale": .text(block.sale?.text), ":reason": .text(block.reason), ":now": .integer(clock.milliseconds)])
            guard db.changes == 1 else {
                return try blocks(in: block.sale).first {
                    $0.kind == block.kind && $0.value == block.value && $0.contains == block.contains && $0.sale == block.sale
                } ?? block
            }
            try appendEvent(at: clock, sale: block.sale ?? everySale, kind: "blocked", detail: block.explanation)
            return block
        }
    }

    /// `unblock`: removes the block with that kind, value, match and sale (exit 3 if none).
    public func removeBlock(_ kind: BlockKind, value: String, contains: Bool, sale: SaleID?, clock: Instant) throws {
        try db.writeTransaction {
            try db.execute(
                """
                DELETE FROM block WHERE kind = :kind AND value = :value AND contains = :contains
                    AND coalesce(sale, '') = coalesce(:sale, '')
                """,
                [":kind": .text(kind.rawValue), ":value": .text(value), ":contains": .integer(contains ? 1 : 0),
                 ":sale": .text(sale?.text)])
            guard db.changes == 1 else {
                throw FlashSaleError.notFound("no such block; 'flashsale blocks' lists them")
            }
            try appendEvent(at: clock, sale: sale ?? everySale, kind: "unblocked", detail: "\(kind.rawValue) \(value)")
        }
    }

    /// Every block in force; with a sale, those that apply to it (its own and global ones).
    public func blocks(in sale: SaleID?) throws -> [Block] {
        if let sale { _ = try requireSale(sale) }
        return try db.rows(
            """
            SELECT kind, value, contains, sale, reason, created_at FROM block
            WHERE :sale IS NULL OR sale IS NULL OR sale = :sale ORDER BY id
            """, [":sale": .text(sale?.text)]
        ) { row in
            guard let kind = BlockKind(rawValue: row.text(0)) else {
                throw FlashSaleError.cantOpen("a block has the unknown kind '\(Quoted(row.text(0)))'")
            }
            return try Block(kind: kind, value: row.text(1), contains: row.int64(2) != 0,
                      sale: row.optionalText(3).map(SaleID.init(trusted:)), reason: row.optionalText(4),
                      createdAt: Instant(milliseconds: row.int64(5)))
        }
    }

    /// Why `request` may not hold in `sale` (check 9), or nil: a matching block, or its
    /// address at the sale's per-IP limit.
    func blockedBecause(_ request: BookingRequest, in sale: Sale, at now: Instant, facts: TransactionFacts) throws -> String? {
        let blocks = try facts.blocks { try self.blocks(in: sale.id) }
        if let block = blocks.first(where: { $0.matches(request) }) {
            return block.explanation
        }
        guard sale.perIP != nil, let address = request.ip.flatMap(IPAddress.init)?.canonical else { return nil }
        let active = try rowStatements.countActiveFromAddress.run(.text(sale.id.text), .text(address), .integer(now.milliseconds)) ?? 0
        guard Rules.exceedsIPLimit(sale, activeFromAddress: active) else { return nil }
        return "address \(address) already has \(active) active booking\(active == 1 ? "" : "s") in sale \(sale.id), the per-IP limit"
    }
}

/// Events about blocks that apply to every sale are logged under this sale name.
let everySale = SaleID(trusted: "*")
