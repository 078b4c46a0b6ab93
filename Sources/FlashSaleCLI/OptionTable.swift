/// One option, as data: the parser, `--help`, the man page check and (later) shell
/// completions all read the same table.
struct OptionSpec: Sendable {
    /// The long name with its dashes: `--hold`.
    let name: String
    /// A one-letter alias: `-q`.
    let short: String?
    /// What the value is called in help (`DURATION`); nil for a flag.
    let value: String?
    let help: String
    /// The command refuses to run without it (`create-sale --inventory`).
    let isRequired: Bool
    /// It may be given more than once, each value adding to the others (`serve --listen`).
    let isRepeatable: Bool

    init(_ name: String, short: String? = nil, value: String? = nil, required: Bool = false, repeatable: Bool = false,
         _ help: String) {
        self.name = name
        self.short = short
        self.value = value
        self.isRequired = required
        self.isRepeatable = repeatable
        self.help = help
    }

    var isFlag: Bool { value == nil }

    /// The same option, described as one command reads it.
    func described(as help: String) -> OptionSpec {
        OptionSpec(name, short: short, value: value, required: isRequired, repeatable: isRepeatable, help)
    }

    /// `--hold DURATION`, `-q, --quiet`.
    var synopsis: String {
        (short.map { "\($0), " } ?? "") + name + (value.map { " \($0)" } ?? "")
    }
}

/// A positional argument: `SALE`, or `[SALE]` when it may be left out.
struct ArgumentSpec: Sendable {
    let name: String
    let isOptional: Bool

    var synopsis: String { isOptional ? "[\(name)]" : name }

    /// `"SALE [USER]"` → `SALE`, optional `USER`.
    static func list(_ words: String) -> [ArgumentSpec] {
        words.split(separator: " ").map { word in
            word.hasPrefix("[")
                ? ArgumentSpec(name: String(word.dropFirst().dropLast()), isOptional: true)
                : ArgumentSpec(name: String(word), isOptional: false)
        }
    }
}

/// One of the ways to call a command that has several, as `book SALE USER [--ip IP] ...` and
/// `book SALE --stream [--format FORMAT]`: the man page gives each its own heading and option
/// list. The parser reads the command's arguments and options, made from its usages; the
/// command refuses an option of one usage given with another's mode.
struct UsageSpec: Sendable {
    let arguments: [ArgumentSpec]
    /// The option that selects this usage (`--stream`), required in it; nil for the plain one.
    let mode: OptionSpec?
    /// The options that go with it, `mode` aside.
    let options: [OptionSpec]

    init(_ arguments: String, mode: OptionSpec? = nil, options: [OptionSpec] = []) {
        self.arguments = ArgumentSpec.list(arguments)
        self.mode = mode
        self.options = options
    }

    /// `SALE --stream [--format FORMAT]`: its arguments, its mode (required) and its options.
    var synopsis: String {
        let words = arguments.map(\.synopsis) + (mode.map { [$0.synopsis] } ?? [])
            + options.map { $0.isRequired ? $0.synopsis : "[\($0.synopsis)]" }
        return words.joined(separator: " ")
    }

    /// The one usage of a command that declares none.
    init(arguments: [ArgumentSpec], options: [OptionSpec]) {
        self.arguments = arguments
        self.mode = nil
        self.options = options
    }
}

/// One command, as data: name, arguments, options, help text and what it does.
struct CommandSpec: Sendable {
    let name: String
    let arguments: [ArgumentSpec]
    let options: [OptionSpec]
    let summary: String
    /// More help, shown by `help COMMAND` under the summary.
    let details: String
    /// Whether the command may create a database that does not exist yet. Only the
    /// commands that start one do; for any other, a missing file is a mistyped path.
    let createsDatabase: Bool
    /// Whether the command takes a database server's URL of its own (`copy-to`'s target),
    /// in the schema --pg-schema names even when --db is a file.
    let namesDatabaseServer: Bool
    /// Whether the command reads or writes a database. `help` and `completions` print what
    /// the binary knows, so a --db or $FLASHSALE_DB they cannot use does not stop them.
    let usesDatabase: Bool
    /// What the command does, once its arguments have parsed.
    let run: @Sendable (Invocation, Context) throws -> Void
    /// Empty for a command with one usage: its arguments and options.
    private let declaredUsages: [UsageSpec]
    /// Global options this command reads otherwise than most (`rehearse`'s --db, which is
    /// no default file), by name: what its help says of them instead.
    private let globalOptionHelp: [String: String]

    /// The global options as this command reads them, for its help.
    var globalOptions: [OptionSpec] {
        GlobalOptions.all.map { option in globalOptionHelp[option.name].map(option.described(as:)) ?? option }
    }

    init(_ name: String, arguments: String = "", options: [OptionSpec] = [], summary: String, details: String = "",
         createsDatabase: Bool = false, namesDatabaseServer: Bool = false, usesDatabase: Bool = true,
         globalOptionHelp: [String: String] = [:], run: @escaping @Sendable (Invocation, Context) throws -> Void) {
        self.name = name
        self.globalOptionHelp = globalOptionHelp
        self.namesDatabaseServer = namesDatabaseServer
        self.usesDatabase = usesDatabase
        self.arguments = ArgumentSpec.list(arguments)
        self.options = options
        self.summary = summary
        self.details = details
        self.createsDatabase = createsDatabase
        self.run = run
        self.declaredUsages = []
    }

    /// A command with several usages takes each usage's options, and the arguments of the
    /// longest, each optional unless every usage requires it.
    init(_ name: String, usages: [UsageSpec], summary: String, details: String = "",
         createsDatabase: Bool = false, run: @escaping @Sendable (Invocation, Context) throws -> Void) {
        self.name = name
        let longest = usages.map(\.arguments).max { $0.count < $1.count } ?? []
        self.arguments = longest.indices.map { index in
            let isRequired = usages.allSatisfy { $0.arguments.indices.contains(index) && !$0.arguments[index].isOptional }
            return ArgumentSpec(name: longest[index].name, isOptional: !isRequired)
        }
        var options: [OptionSpec] = []
        for option in usages.flatMap({ ($0.mode.map { [$0] } ?? []) + $0.options })
        where !options.contains(where: { $0.name == option.name }) {
            options.append(option)
        }
        self.options = options
        self.summary = summary
        self.details = details
        self.createsDatabase = createsDatabase
        self.namesDatabaseServer = false
        self.usesDatabase = true
        self.globalOptionHelp = [:]
        self.run = run
        self.declaredUsages = usages
    }

    var usages: [UsageSpec] {
        declaredUsages.isEmpty ? [UsageSpec(arguments: arguments, options: options)] : declaredUsages
    }

    var synopsis: String {
        let words = [name] + arguments.map(\.synopsis) + options.map { $0.isRequired ? $0.synopsis : "[\($0.synopsis)]" }
        return words.joined(separator: " ")
    }

    /// The synopsis of the usage that requires `argument` (`book SALE USER ...`, not the
    /// merged `book SALE [USER] ... [--stream]`, which called USER optional in the message
    /// that said it was missing: found by a new user's walk-through).
    func synopsis(requiring argument: String) -> String {
        guard let usage = declaredUsages.first(where: { $0.arguments.contains { $0.name == argument && !$0.isOptional } }) else {
            return synopsis
        }
        return "\(name) \(usage.synopsis)"
    }
}

/// Options every command takes, before or after the command name.
enum GlobalOptions {
    static let database = OptionSpec("--db", value: "PATH|URL",
                                     "the database file, or a postgresql:// URL (else $FLASHSALE_DB, else ./flashsale.db)")
    static let pgSchema = OptionSpec("--pg-schema", value: "NAME",
                                     "with a postgresql:// database: the schema of flashsale's tables (default flashsale)")
    static let json = OptionSpec("--json", "machine-readable output on stdout")
    static let quiet = OptionSpec("--quiet", short: "-q", "print nothing on success; the exit code speaks")
    static let busyTimeout = OptionSpec("--busy-timeout", value: "DURATION",
                                        "wait this long for another process's write lock (default 5s), then exit 75; "
                                        + "on PostgreSQL, also sets the statement timeout (a second longer)")
    static let help = OptionSpec("--help", short: "-h", "show help and exit")
    static let version = OptionSpec("--version", "print the version and exit")

    static let all = [database, pgSchema, json, quiet, busyTimeout, help, version]
    /// The ones that stand for the whole command line (`flashsale --version`), which the
    /// man page's SYNOPSIS gives a line each.
    static let standalone = [help, version]
}
