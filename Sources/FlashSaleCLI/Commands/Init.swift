import FlashSaleCore

enum InitCommand {
    static let spec = CommandSpec(
        "init",
        summary: "create or migrate the database; safe to run again",
        details: "Every command creates and migrates the database on first use; init only does that."
    ) { _, context in
        _ = try context.store()
        context.output.success(Rendered(
            text: "\(context.database.controlCharactersEscaped): flashsale database ready",
            json: .object([("database", .string(context.database))])))
    }
}
