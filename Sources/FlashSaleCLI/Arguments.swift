import FlashSaleCore

/// A command line, parsed: what to do and with which values. Produced by `parse`,
/// a pure function of the words, so it is tested without a process.
struct ParsedCommandLine: Sendable {
    enum Action: Sendable {
        /// `--help`, `-h`, `help [COMMAND]`: the general help, or one command's.
        case help(CommandSpec?)
        case version
        case run(Invocation)
    }

    let action: Action
    let globals: Invocation.Values

    /// The words after the program name. Global options may stand anywhere; a command's own
    /// options after its name; `--` ends the options (so a user may be called `-x`);
    /// `--name=value` and `--name value` are the same.
    static func parse(_ words: [String], commands: [CommandSpec]) throws(FlashSaleError) -> ParsedCommandLine {
        var command: CommandSpec?
        var positionals: [String] = []
        var values = Invocation.Values()
        var wantsHelp = false
        var index = 0
        var optionsEnded = false
        /// The option that took a `--` for its value, which then ended no options.
        var dashesTakenBy: String?

        while index < words.count {
            let word = words[index]
            index += 1
            if optionsEnded || word == "-" || !word.hasPrefix("-") {
                if command != nil {
                    positionals.append(word)
                } else if let found = commandName(word, commands) {
                    command = found
                } else {
                    throw .usage("unknown command '\(Quoted(word))'; 'flashsale help' lists the commands")
                }
                continue
            }
            if word == "--" {
                optionsEnded = true
                continue
            }
            let (name, inline) = split(word)
            guard let spec = lookup(name, in: GlobalOptions.all + (command?.options ?? [])) else {
                throw unknownOption(name, command: command, commands: commands, dashesTakenBy: dashesTakenBy, later: words[index...])
            }
            if spec.name == GlobalOptions.help.name { wantsHelp = true }
            if spec.isFlag {
                guard inline == nil else { throw .usage("option \(spec.name) takes no value") }
                try values.set(spec, "")
                continue
            }
            if let inline {
                try values.set(spec, inline)
            } else {
                guard index < words.count else { throw .usage("option \(spec.name) needs a value: \(spec.synopsis)") }
                // A value, even `--`, as getopt takes one (`--key --` is the key "--").
                if words[index] == "--" { dashesTakenBy = spec.name }
                try values.set(spec, words[index])
                index += 1
            }
        }

        let globalNames = Set(GlobalOptions.all.map(\.name))
        let globals = values.filter { globalNames.contains($0.key) }
        if wantsHelp { return ParsedCommandLine(action: .help(command), globals: globals) }
        if values.has(GlobalOptions.version.name) { return ParsedCommandLine(action: .version, globals: globals) }
        guard let command else {
            throw .usage("no command given; 'flashsale help' lists the commands")
        }
        let required = command.arguments.filter { !$0.isOptional }
        if positionals.count < required.count {
            let missing = required[positionals.count].name
            throw .usage("\(command.name) needs \(missing): flashsale \(command.synopsis)")
        }
        if positionals.count > command.arguments.count {
            throw .usage("unexpected argument '\(Quoted(positionals[command.arguments.count]))': flashsale \(command.synopsis)")
        }
        if let missing = command.options.first(where: { $0.isRequired && !values.has($0.name) }) {
            throw .usage("\(command.name) needs \(missing.synopsis): flashsale \(command.synopsis)")
        }
        var arguments: [String: String] = [:]
        for (spec, value) in zip(command.arguments, positionals) {
            arguments[spec.name] = value
        }
        let invocation = Invocation(command: command, arguments: arguments,
                                    options: values.filter { !globalNames.contains($0.key) })
        return ParsedCommandLine(action: .run(invocation), globals: globals)
    }

    private static func commandName(_ word: String, _ commands: [CommandSpec]) -> CommandSpec? {
        commands.first { $0.name == word }
    }

    /// `--name=value` → (`--name`, `value`); short options never carry a value inline.
    /// Split at the byte: `=` and a combining mark after it are one Character, not an `=`.
    private static func split(_ word: String) -> (String, String?) {
        guard word.hasPrefix("--"), let equals = word.utf8.firstIndex(of: UInt8(ascii: "=")) else { return (word, nil) }
        return (String(decoding: word.utf8[..<equals], as: UTF8.self),
                String(decoding: word.utf8[word.utf8.index(after: equals)...], as: UTF8.self))
    }

    private static func lookup(_ name: String, in options: [OptionSpec]) -> OptionSpec? {
        options.first { $0.name == name || $0.short == name }
    }

    /// `later`: the words after the option, where a command's name may come (`--sale s1
    /// events`), whose usage the hint shows rather than the first command's that has the
    /// option (found by probing: `--sale s1 events` was shown serve's).
    private static func unknownOption(_ name: String, command: CommandSpec?, commands: [CommandSpec],
                                      dashesTakenBy: String?, later: ArraySlice<String>) -> FlashSaleError {
        let named = command ?? later.lazy.compactMap { commandName($0, commands) }.first
        if command == nil, let owner = named ?? commands.first(where: { lookup(name, in: $0.options) != nil }),
           lookup(name, in: owner.options) != nil {
            return .usage("option \(name) belongs after the command name: flashsale \(owner.synopsis)")
        }
        let context = named.map { " for \($0.name); 'flashsale \($0.name) --help' lists its options" } ?? ""
        // `--limit -- -1` is --limit "--" and an option -1 (found by probing: the hint said
        // to put -1 after '--', where it was).
        let dashHint = name.hasPrefix("--") ? ""
            : dashesTakenBy.map { " ('--' after \($0) is its value: write \($0)=\(name) for a value starting with '-')" }
            ?? " (a value starting with '-' goes after '--')"
        return .usage("unknown option '\(Quoted(name))'\(context)\(dashHint)")
    }
}

/// A command with its arguments and options, as typed; each command turns these into
/// typed values (and usage errors) itself.
struct Invocation: Sendable {
    /// Option values by long name; a flag's value is empty.
    struct Values: Sendable {
        /// Every value given, in order: one, unless the option is repeatable.
        private var storage: [String: [String]] = [:]

        mutating func set(_ option: OptionSpec, _ value: String) throws(FlashSaleError) {
            guard option.isRepeatable || storage[option.name] == nil else {
                throw .usage("option \(option.name) is given twice")
            }
            storage[option.name, default: []].append(value)
        }

        func has(_ name: String) -> Bool { storage[name] != nil }
        subscript(_ name: String) -> String? { storage[name]?.first }
        /// A repeatable option's values, in the order given.
        func all(_ name: String) -> [String] { storage[name] ?? [] }

        func filter(_ isIncluded: ((key: String, value: [String])) -> Bool) -> Values {
            Values(storage: storage.filter(isIncluded))
        }
    }

    let command: CommandSpec
    let arguments: [String: String]
    let options: Values
}
