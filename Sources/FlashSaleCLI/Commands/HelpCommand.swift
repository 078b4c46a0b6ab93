import FlashSaleCore

enum HelpCommand {
    static let spec = CommandSpec(
        "help", arguments: "[COMMAND]",
        summary: "show the commands, or one command's arguments and options",
        usesDatabase: false
    ) { invocation, context in
        guard let name = invocation.arguments["COMMAND"] else {
            context.output.help(Help.general())
            return
        }
        guard let command = CommandTable.all.first(where: { $0.name == name }) else {
            throw FlashSaleError.usage("unknown command '\(Quoted(name))'; 'flashsale help' lists the commands")
        }
        context.output.help(Help.command(command))
    }
}
