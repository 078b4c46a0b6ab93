import FlashSaleCore

enum VerifyCommand {
    static let spec = CommandSpec(
        "verify", arguments: "[SALE]",
        summary: "recount bookings against the counters and check every invariant (exit 10 on a violation)",
        details: "Checks total = available + held + booked, each counter against the bookings, the per-user limit, booking timestamps, events, and (for the whole database) SQLite's quick_check, or on PostgreSQL that every request belongs to a sale and that the request and event counters are not behind the last of each."
    ) { invocation, context in
        let sale = try invocation.saleID()
        let violations = try context.store().verify(sale, clock: context.now())
        guard violations.isEmpty else {
            let shown = violations.prefix(5).joined(separator: "; ")
            let more = violations.count > 5 ? "; and \(violations.count - 5) more" : ""
            throw FlashSaleError.invariant("verify found \(String.counted(violations.count, "violation")): \(shown)\(more)")
        }
        context.output.success(Rendered(
            text: "ok",
            json: .object([("ok", .bool(true)), ("sale", .string(sale?.text))])))
    }
}
