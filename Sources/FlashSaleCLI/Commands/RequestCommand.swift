import FlashSaleCore

enum RequestCommand {
    static let spec = CommandSpec(
        "request", arguments: "ID",
        summary: "a queued request's state: queued (with its position), accepted (booking) or rejected (reason)"
    ) { invocation, context in
        let text = invocation.arguments["ID"] ?? ""
        guard let id = RequestID(parsing: text) else {
            // Found by probing: a number too large was said to be none.
            throw FlashSaleError.usage("a request id is a whole number from 1 to \(Int64.max), not '\(Quoted(text))'")
        }
        context.output.success(Render.request(try context.engine().request(id)))
    }
}
