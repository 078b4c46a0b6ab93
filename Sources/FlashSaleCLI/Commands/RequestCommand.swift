import FlashSaleCore

enum RequestCommand {
    static let spec = CommandSpec(
        "request", arguments: "ID",
        summary: "a queued request's state: queued (with its position), accepted (booking) or rejected (reason)"
    ) { invocation, context in
        let text = invocation.arguments["ID"] ?? ""
        guard let id = RequestID(parsing: text) else {
            throw FlashSaleError.usage("a request id is a whole number from 1, not '\(Quoted(text))'")
        }
        context.output.success(Render.request(try context.engine().request(id)))
    }
}
