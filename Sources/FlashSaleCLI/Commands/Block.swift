import FlashSaleCore

/// `block`, `unblock` and `blocks`: the operator's bot defence.
enum BlockCommands {
    static let sale = OptionSpec("--sale", value: "SALE", "only in this sale (default: every sale)")
    static let blockedSale = OptionSpec("--sale", value: "SALE", "the block made with --sale SALE (default: the one made without)")
    static let appliesToSale = OptionSpec("--sale", value: "SALE", "only those that apply to this sale: its own and every sale's")
    static let reason = OptionSpec("--reason", value: "TEXT", "why, shown to the operator and in the decline message")
    static let contains = OptionSpec("--contains", "agent blocks: match agents containing VALUE (case matters), not only the whole text")
    /// `unblock`'s: which block it names, not how to match.
    static let containsBlock = OptionSpec("--contains", "agent blocks: the one made with --contains, not the whole-text one")

    static let block = CommandSpec(
        "block", arguments: "KIND VALUE", options: [sale, reason, contains],
        summary: "decline a requester (exit 9): KIND is ip (an address or CIDR range), user or agent",
        details: """
            IP ranges take IPv4 and IPv6 CIDR (203.0.113.0/24, 2001:db8:1:2::/64); an IPv4-mapped IPv6 address \
            matches its IPv4 block. The same block again is a no-op. Every path honours blocks: book, --stream, process.
            """
    ) { invocation, context in
        let now = try context.now()
        let new = try Block(kind: kind(invocation), value: invocation.arguments["VALUE"] ?? "",
                            contains: invocation.flag(contains), sale: invocation.saleOption(sale),
                            reason: invocation.text(.reason, option: reason), createdAt: now)
        // A range with bits past its prefix is a usage error before the database is opened,
        // as any malformed argument is (found by probing: a missing database said first).
        try new.refuseHostBits()
        context.output.success(Render.block(try context.engine().addBlock(new, clock: now)))
    }

    static let unblock = CommandSpec(
        "unblock", arguments: "KIND VALUE", options: [blockedSale, containsBlock],
        summary: "remove a block (exit 3 if there is no such block)"
    ) { invocation, context in
        let now = try context.now()
        let named = try Block(kind: kind(invocation), value: invocation.arguments["VALUE"] ?? "", contains: invocation.flag(containsBlock),
                              sale: invocation.saleOption(blockedSale), reason: nil, createdAt: now)
        try context.engine().removeBlock(named, clock: now)
        context.output.success(Rendered(text: "unblocked", json: .object([("unblocked", .bool(true))])))
    }

    static let blocks = CommandSpec(
        "blocks", options: [appliesToSale],
        summary: "the blocks in force (with --sale, those that apply to that sale)"
    ) { invocation, context in
        let sale = try invocation.saleOption(appliesToSale)
        context.output.success(Render.blocks(try context.engine().blocks(in: sale)))
    }

    private static func kind(_ invocation: Invocation) throws(FlashSaleError) -> BlockKind {
        let text = invocation.arguments["KIND"] ?? ""
        guard let kind = BlockKind(rawValue: text) else {
            throw .usage("KIND must be ip, user or agent, not '\(Quoted(text))'")
        }
        return kind
    }
}
