import FlashSaleCore

enum SweepCommand {
    static let dryRun = OptionSpec("--dry-run", "count what would expire, change nothing")
    static let limit = OptionSpec("--limit", value: "N", "expire at most N holds, the longest overdue first")

    static let spec = CommandSpec(
        "sweep", arguments: "[SALE]", options: [dryRun, limit],
        summary: "expire holds past their expiry, items back to stock; prints how many",
        details: "Safe from cron every minute, beside everything else: * * * * * flashsale --db PATH -q sweep"
    ) { invocation, context in
        let report = try context.engine().sweep(
            invocation.saleID(), limit: invocation.wholeNumber(limit.name, in: 1...Int64.max / 2),
            dryRun: invocation.flag(dryRun), clock: context.now())
        let sales = JSON.object(report.expired.map { ($0.sale.text, .integer($0.count)) })
        context.output.success(Rendered(
            text: String(report.total),
            json: .object([("expired", .integer(report.total)), ("dry_run", .bool(invocation.flag(dryRun))), ("sales", sales)])))
    }
}
