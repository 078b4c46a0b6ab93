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

    init(_ name: String, short: String? = nil, value: String? = nil, required: Bool = false, _ help: String) {
        self.name = name
        self.short = short
        self.value = value
        self.isRequired = required
        self.help = help
    }

    var isFlag: Bool { value == nil }

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
    /// What the command does, once its arguments have parsed.
    let run: @Sendable (Invocation, Context) throws -> Void

    init(_ name: String, arguments: String = "", options: [OptionSpec] = [], summary: String, details: String = "",
         createsDatabase: Bool = false, run: @escaping @Sendable (Invocation, Context) throws -> Void) {
        self.name = name
        self.arguments = arguments.split(separator: " ").map { word in
            word.hasPrefix("[")
                ? ArgumentSpec(name: String(word.dropFirst().dropLast()), isOptional: true)
                : ArgumentSpec(name: String(word), isOptional: false)
        }
        self.options = options
        self.summary = summary
        self.details = details
        self.createsDatabase = createsDatabase
        self.run = run
    }

    var synopsis: String {
        let words = [name] + arguments.map(\.synopsis) + options.map { $0.isRequired ? $0.synopsis : "[\($0.synopsis)]" }
        return words.joined(separator: " ")
    }
}

/// Options every command takes, before or after the command name.
enum GlobalOptions {
    static let database = OptionSpec("--db", value: "PATH", "the database file (else $FLASHSALE_DB, else ./flashsale.db)")
    static let json = OptionSpec("--json", "machine-readable output on stdout")
    static let quiet = OptionSpec("--quiet", short: "-q", "print nothing on success; the exit code speaks")
    static let busyTimeout = OptionSpec("--busy-timeout", value: "DURATION",
                                        "wait this long for another process's write lock (default 5s), then exit 75")
    static let help = OptionSpec("--help", short: "-h", "show help and exit")
    static let version = OptionSpec("--version", "print the version and exit")

    static let all = [database, json, quiet, busyTimeout, help, version]
}
