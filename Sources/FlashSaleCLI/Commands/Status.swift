enum StatusCommand {
    static let spec = CommandSpec(
        "status", arguments: "SALE",
        summary: "a sale's state and counters, with overdue holds and queued requests"
    ) { invocation, context in
        let sale = try invocation.requiredSaleID()
        context.output.success(Render.sale(try context.engine().status(sale, clock: context.now())))
    }
}

enum SalesCommand {
    static let spec = CommandSpec("sales", summary: "every sale, one line each") { _, context in
        context.output.success(Render.sales(try context.engine().sales(clock: context.now())))
    }
}
