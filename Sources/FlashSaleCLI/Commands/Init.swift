import FlashSaleCore
import FlashSaleEngine

enum InitCommand {
    static let spec = CommandSpec(
        "init",
        summary: "create or migrate the database; safe to run again",
        details: "Only init, create-sale and rehearse --db create a missing database (mode 0600); other commands exit 73 on a path with no flashsale database. Every command migrates the database on first use; init only does that.",
        createsDatabase: true
    ) { _, context in
        // Found by probing: a table dropped by hand was called ready, and `book` then
        // exited 73 on it. Migrations make nothing of an up-to-date schema again.
        let missing = try context.store().missingSchemaObjects()
        guard missing.isEmpty else {
            throw StoreFailure.unusable(detail: "missing \(missing.joined(separator: ", ")), which init does not make again")
        }
        context.workDone = .databaseReady
        context.output.success(Rendered(
            text: "\(context.database.controlCharactersEscaped): flashsale database ready",
            json: .object([("database", .string(context.database))])))
    }
}
