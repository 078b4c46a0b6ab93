import FlashSaleCore

enum RequestCommand {
    static let spec = CommandSpec(
        "request", arguments: "ID",
        summary: "a queued request's state: queued (with its position), accepted (booking) or rejected (reason)"
    ) { invocation, context in
        let text = invocation.arguments["ID"] ?? ""
        guard let id = Int64(text), id > 0, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw FlashSaleError.usage("a request id is a whole number, not '\(Quoted(text))'")
        }
        context.output.success(Render.request(try context.engine().request(RequestID(id))))
    }
}
