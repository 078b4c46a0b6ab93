import FlashSaleCore

enum InitCommand {
    static let spec = CommandSpec(
        "init",
        summary: "create or migrate the database; safe to run again",
        details: "Only init, create-sale and rehearse --db create a missing database (mode 0600); other commands exit 73 on a path with no flashsale database. Every command migrates the database on first use; init only does that.",
        createsDatabase: true
    ) { _, context in
        _ = try context.store()
        context.doneElsewhere = "the database is ready"
        context.output.success(Rendered(
            text: "\(context.database.controlCharactersEscaped): flashsale database ready",
            json: .object([("database", .string(context.database))])))
    }
}
