import FlashSaleCore

enum SeedInventoryCommand {
    static let set = OptionSpec("--set", "make the total COUNT instead of adding (refused below held + booked)")

    static let spec = CommandSpec(
        "seed-inventory", arguments: "SALE COUNT", options: [set],
        summary: "add COUNT items to a sale's stock, or set its total"
    ) { invocation, context in
        let sale = try invocation.requiredSaleID()
        let count = try invocation.wholeNumber("COUNT", in: SaleDefinition.inventoryRange) ?? 0
        let status = try context.engine().seedInventory(sale, count: count, exactly: invocation.flag(set), clock: context.now())
        context.output.success(Render.sale(status))
    }
}
