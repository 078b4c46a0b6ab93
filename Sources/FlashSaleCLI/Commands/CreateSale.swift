import FlashSaleCore

enum CreateSaleCommand {
    static let inventory = OptionSpec("--inventory", value: "N", required: true, "items for sale (0 allowed, seed later)")
    static let name = OptionSpec("--name", value: "TEXT", "a display name (default: the sale id)")
    static let hold = OptionSpec("--hold", value: "DURATION", "how long a hold lasts before it expires (default 5m)")
    static let perUser = OptionSpec("--per-user", value: "N", "active bookings one user may have (default 1)")
    static let starts = OptionSpec("--starts", value: "TIME", "when the sale opens (default: now)")
    static let ends = OptionSpec("--ends", value: "TIME", "when it ends (default: never)")
    static let perIP = OptionSpec("--per-ip", value: "N", "active bookings one IP address may have (default: no limit)")
    static let waitlist = OptionSpec("--waitlist", "sold out while items are held: queued requests wait for them instead of being rejected")

    static let spec = CommandSpec(
        "create-sale", arguments: "SALE", options: [inventory, name, hold, perUser, perIP, waitlist, starts, ends],
        summary: "create a sale with a fixed stock",
        details: "SALE is 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit. TIME is RFC 3339, Unix seconds or +DURATION from now.",
        createsDatabase: true
    ) { invocation, context in
        let now = try context.now()
        // The parser has already refused a missing --inventory.
        guard let stock = try invocation.wholeNumber(inventory.name, in: SaleDefinition.inventoryRange) else {
            throw FlashSaleError.usage("missing --inventory")
        }
        let definition = try SaleDefinition(
            id: invocation.requiredSaleID(),
            name: invocation.text(.name, option: name),
            inventory: stock,
            hold: invocation.span(hold, limit: SaleDefinition.maximumHold) ?? SaleDefinition.defaultHold,
            perUser: invocation.wholeNumber(perUser.name, in: SaleDefinition.limitRange) ?? SaleDefinition.defaultPerUser,
            perIP: invocation.wholeNumber(perIP.name, in: SaleDefinition.limitRange),
            waitlist: invocation.flag(waitlist),
            startsAt: invocation.instant(starts, now: now) ?? now,
            endsAt: invocation.instant(ends, now: now))
        context.output.success(Render.sale(try context.engine().createSale(definition, clock: now)))
    }
}
