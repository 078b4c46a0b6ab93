@testable import FlashSaleCLI

/// The reference parts of man/flashsale.1, rendered from the tables the parser, `--help` and the
/// completions read, so the page cannot drift from what the binary accepts: the SYNOPSIS, the
/// heading of each command usage in COMMANDS, and the `.It` line of each option. The text under
/// them is written by hand. Placeholders are in lower case, as mdoc writes them
/// (`Ar duration` for DURATION).
///
/// Nothing in the binary calls this; DocumentationTests does, and rewrites the page with it
/// when FLASHSALE_UPDATE_MAN=1 is set.
enum ManReference {
    /// A page with every generated part rendered afresh, and what rendering cannot fix because
    /// it needs a writer: a missing region, an option without its entry, an entry for an option
    /// the table lacks.
    struct Regenerated: Equatable {
        var page: String
        var problems: [String]
    }

    static let beginMarker = #".\" BEGIN GENERATED "#
    static let endMarker = #".\" END GENERATED "#

    /// The page with its regions (between `BEGIN GENERATED name` and `END GENERATED name`) and its
    /// option `.It` lines rendered from the tables. A usage's option lines are the `.It Fl` lines
    /// from its region to the next region or section: exactly its options, once each, in the
    /// table's order. The GLOBAL OPTIONS section's are the global options.
    static func regenerate(_ page: String, commands: [CommandSpec] = CommandTable.all,
                           globals: [OptionSpec] = GlobalOptions.all) -> Regenerated {
        var lines = page.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let usages = commands.flatMap { command in command.usages.map { (command, $0) } }
        var rendered = ["synopsis": synopsis(commands: commands, globals: globals)]
        var optionsByRegion: [String: [OptionSpec]] = [:]
        for (command, usage) in usages {
            rendered[name(command, usage)] = heading(command, usage)
            optionsByRegion[name(command, usage)] = usage.options
        }
        var problems = fill(&lines, with: rendered, order: ["synopsis"] + usages.map { name($0, $1) })

        let regionEnds = lines.indices.filter { lines[$0].hasPrefix(endMarker) }
        for end in regionEnds {
            let region = String(lines[end].dropFirst(endMarker.count))
            guard let options = optionsByRegion[region] else { continue }
            let next = lines[(end + 1)...].firstIndex { $0.hasPrefix(beginMarker) || $0.hasPrefix(".Sh ") }
            problems += reconcileItems(&lines, in: (end + 1)..<(next ?? lines.endIndex), with: options,
                                       owner: "COMMANDS, \(region),")
        }
        if let section = lines.firstIndex(of: ".Sh GLOBAL OPTIONS") {
            let next = lines[(section + 1)...].firstIndex { $0.hasPrefix(".Sh ") }
            problems += reconcileItems(&lines, in: (section + 1)..<(next ?? lines.endIndex), with: globals,
                                       owner: "GLOBAL OPTIONS")
        } else {
            problems.append("the page has no GLOBAL OPTIONS section")
        }
        return Regenerated(page: lines.joined(separator: "\n"), problems: problems)
    }

    // MARK: - Rendering

    /// `book`, or `book --stream` for the usage that `--stream` selects.
    static func name(_ command: CommandSpec, _ usage: UsageSpec) -> String {
        command.name + (usage.mode.map { " \($0.name)" } ?? "")
    }

    static func synopsis(commands: [CommandSpec], globals: [OptionSpec]) -> [String] {
        let standalone = globals.filter { option in GlobalOptions.standalone.contains { $0.name == option.name } }
        var lines = [".Nm"] + globals.filter { option in !standalone.contains { $0.name == option.name } }
            .map { ".Op \(flag($0))" }
        lines += [".Ar command", ".Op Ar argument ...", ".Op Ar option ..."]
        if let help = commands.first(where: { $0.name == HelpCommand.spec.name }) {
            lines += [".Nm"] + help.usages.flatMap { macros(help, $0) }.map { "." + $0 }
        }
        for option in standalone {
            lines += [".Nm", ".\(flag(option))"]
        }
        return lines
    }

    /// `.It Cm confirm Ar sale booking Op Fl -user Ar user` on one line; with more than one
    /// option, one macro a line between `.It Xo` and `.Xc`, as mdoc pages write long headings.
    static func heading(_ command: CommandSpec, _ usage: UsageSpec) -> [String] {
        let words = macros(command, usage)
        if usage.options.count + (usage.mode == nil ? 0 : 1) <= 1 {
            return [".It " + words.joined(separator: " ")]
        }
        return [".It Xo"] + words.map { "." + $0 } + [".Xc"]
    }

    /// The `.It` line of an option's entry: `.It Fl -hold Ar duration`, `.It Fl q , Fl -quiet`.
    static func item(_ option: OptionSpec) -> String {
        ".It " + (option.short.map { "Fl \($0.dropFirst()) , " } ?? "") + "Fl \(option.name.dropFirst())"
            + (option.value.map { " Ar \($0.lowercased())" } ?? "")
    }

    /// `Cm book`, `Ar sale user`, `Op Fl -ip Ar ip`: the usage as mdoc macros, without their dots.
    private static func macros(_ command: CommandSpec, _ usage: UsageSpec) -> [String] {
        var words = ["Cm \(command.name)"]
        var required: [String] = []
        for argument in usage.arguments {
            if argument.isOptional {
                if !required.isEmpty { words.append("Ar " + required.joined(separator: " ")) }
                required = []
                words.append("Op Ar \(argument.name.lowercased())")
            } else {
                required.append(argument.name.lowercased())
            }
        }
        if !required.isEmpty { words.append("Ar " + required.joined(separator: " ")) }
        if let mode = usage.mode { words.append(flag(mode)) }
        words += usage.options.map { $0.isRequired ? flag($0) : "Op \(flag($0))" }
        return words
    }

    /// `Fl -hold Ar duration`, `Fl q | -quiet`: an option as a synopsis writes it.
    private static func flag(_ option: OptionSpec) -> String {
        "Fl " + (option.short.map { "\($0.dropFirst()) | " } ?? "") + option.name.dropFirst()
            + (option.value.map { " Ar \($0.lowercased())" } ?? "")
    }

    // MARK: - Merging into the page

    /// Replaces each region's lines with its rendering; a region the page lacks, one no table
    /// names, or regions out of the table's order are problems.
    private static func fill(_ lines: inout [String], with rendered: [String: [String]], order: [String]) -> [String] {
        var problems: [String] = []
        var output: [String] = []
        var found: [String] = []
        var index = lines.startIndex
        while index < lines.endIndex {
            let line = lines[index]
            output.append(line)
            index += 1
            guard line.hasPrefix(beginMarker) else { continue }
            let region = String(line.dropFirst(beginMarker.count))
            guard let end = lines[index...].firstIndex(where: { $0.hasPrefix(beginMarker) || $0.hasPrefix(endMarker) }),
                  lines[end] == endMarker + region else {
                problems.append("'\(line)' has no '\(endMarker + region)' after it")
                continue
            }
            found.append(region)
            if let fresh = rendered[region] {
                output += fresh
            } else {
                problems.append("the region '\(region)' is of no command usage in the table: remove it with its text")
                output += lines[index..<end]
            }
            output.append(lines[end])
            index = end + 1
        }
        for region in order where !found.contains(region) {
            problems.append("the page has no region '\(region)': add '\(beginMarker + region)' and "
                + "'\(endMarker + region)' where it belongs, with its text under them")
        }
        let known = found.filter { order.contains($0) }
        if Set(known) == Set(order) && known != order {
            problems.append("the regions are not in the table's order: \(order.joined(separator: ", "))")
        }
        lines = output
        return problems
    }

    /// Rewrites the `.It Fl` lines in `range` from `options`, which must each have one, in order.
    private static func reconcileItems(_ lines: inout [String], in range: Range<Int>, with options: [OptionSpec],
                                       owner: String) -> [String] {
        let items = range.filter { lines[$0].hasPrefix(".It Fl ") }
        let documented = items.map { longName(lines[$0]) }
        var problems: [String] = []
        for option in options {
            switch documented.filter({ $0 == option.name }).count {
            case 0: problems.append("\(owner) has no entry for \(option.name): add '\(item(option))' and its text")
            case 1: break
            default: problems.append("\(owner) has more than one entry for \(option.name)")
            }
        }
        for name in documented where !options.contains(where: { $0.name == name }) {
            problems.append("\(owner) documents \(name), which it does not take: remove the entry, or add the option to the table")
        }
        if problems.isEmpty && documented != options.map(\.name) {
            problems.append("\(owner) lists its options out of the table's order: \(options.map(\.name).joined(separator: ", "))")
        }
        for index in items {
            if let option = options.first(where: { $0.name == longName(lines[index]) }) {
                lines[index] = item(option)
            }
        }
        return problems
    }

    /// `--quiet` from `.It Fl q , Fl -quiet`.
    private static func longName(_ item: String) -> String {
        item.split(separator: " ").first { $0.hasPrefix("-") }.map { "-" + $0 } ?? item
    }
}
