/// Help texts, generated from the command and option tables so they cannot drift.
enum Help {
    static let version = "flashsale 0.1.0"

    static func general() -> String {
        var text = """
            flashsale: flash sales on a SQLite file or a PostgreSQL database, without overselling

            Usage: flashsale [GLOBAL OPTIONS] COMMAND [ARGUMENTS] [OPTIONS]

            Commands:

            """
        let width = (CommandTable.all.map(\.name.count).max() ?? 0) + 2
        for command in CommandTable.all {
            text += "  " + command.name.padding(to: width) + command.summary + "\n"
        }
        text += "\n" + optionList("Global options", GlobalOptions.all)
        text += """

            Environment: FLASHSALE_DB (the database, if no --db), FLASHSALE_NOW (a fixed clock: RFC 3339 or Unix seconds).
            Exit codes: 0 ok, 1 internal, 2 usage, 3 not found, 4 conflict, 5 hold expired, 6 sold out,
            7 user limit, 8 not open, 9 blocked, 10 invariant, 65 bad input, 73 cannot open, 74 I/O,
            75 busy, 130 interrupted. 'man flashsale' has the rest.
            Run 'flashsale help COMMAND' for a command's arguments and options.

            """
        return text
    }

    static func command(_ command: CommandSpec) -> String {
        // One line per usage, as git prints its commands': `book SALE USER ...` and
        // `book SALE --stream ...` each with only its own options.
        let usages = command.usages.map { usage in
            (["flashsale", command.name] + (usage.synopsis.isEmpty ? [] : [usage.synopsis])).joined(separator: " ")
        }
        var text = "Usage: " + usages.joined(separator: "\n       ") + "\n\n\(command.summary)\n"
        if !command.details.isEmpty { text += "\n\(command.details)\n" }
        if !command.options.isEmpty { text += "\n" + optionList("Options", command.options) }
        text += "\n" + optionList("Global options", command.globalOptions)
        return text
    }

    private static func optionList(_ title: String, _ options: [OptionSpec]) -> String {
        let width = (options.map(\.synopsis.count).max() ?? 0) + 2
        return "\(title):\n" + options.map { "  " + $0.synopsis.padding(to: width) + $0.help + "\n" }.joined()
    }
}
