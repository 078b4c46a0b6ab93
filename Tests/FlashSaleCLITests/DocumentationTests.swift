import Foundation
import Testing
@testable import FlashSaleCLI

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let manPage = packageRoot.appendingPathComponent("man/flashsale.1")
let mandocInstalled = FileManager.default.isExecutableFile(atPath: "/usr/bin/mandoc")

/// The help and the man page's reference come from the tables that the parser reads, so
/// neither can drift from what the binary accepts.
@Suite struct DocumentationTests {
    @Test func helpNamesEveryOptionOfEveryCommand() throws {
        let general = Help.general()
        for option in GlobalOptions.all {
            #expect(general.contains(option.synopsis), "flashsale --help lacks \(option.name)")
        }
        for command in CommandTable.all {
            #expect(general.contains("  \(command.name)  "), "flashsale --help lacks \(command.name)")
            let help = Help.command(command)
            for option in command.options {
                #expect(help.contains(option.synopsis), "flashsale \(command.name) --help lacks \(option.name)")
            }
        }
    }

    /// Like `cog --check`: the committed page must be what the generator makes of it. With
    /// FLASHSALE_UPDATE_MAN=1 the test writes that page first (snapshot testing's record mode).
    @Test func theManPageIsGeneratedFromTheOptionTable() throws {
        var page = try String(contentsOf: manPage, encoding: .utf8)
        let regenerated = ManReference.regenerate(page)
        if ProcessInfo.processInfo.environment["FLASHSALE_UPDATE_MAN"] == "1" && regenerated.page != page {
            // Atomically: the lint test may be reading the page at the same time.
            try regenerated.page.write(to: manPage, atomically: true, encoding: .utf8)
            page = regenerated.page
        }
        for problem in regenerated.problems {
            Issue.record("man/flashsale.1: \(problem)")
        }
        let committed = page.split(separator: "\n", omittingEmptySubsequences: false)
        let generated = regenerated.page.split(separator: "\n", omittingEmptySubsequences: false)
        if let line = (0..<max(committed.count, generated.count)).first(where: { line in
            committed.indices.contains(line) != generated.indices.contains(line) || committed[line] != generated[line]
        }) {
            let text = { (lines: [Substring]) in lines.indices.contains(line) ? "'\(lines[line])'" : "the end of the file" }
            Issue.record("""
                man/flashsale.1:\(line + 1) differs from the option table: it has \(text(committed)), the table \
                gives \(text(generated)); run FLASHSALE_UPDATE_MAN=1 swift test --filter ManPage
                """)
        }
    }

    /// Each usage's option list, and GLOBAL OPTIONS, is checked both ways against the table.
    @Test func anOptionTheTableLacksOrThePageLacksIsAProblem() throws {
        let page = try String(contentsOf: manPage, encoding: .utf8)
        let withoutKey = CommandTable.all.map { command in
            command.name != BookCommand.spec.name ? command
                : CommandSpec(command.name, usages: [UsageSpec("SALE USER", options: [BookCommand.ip, BookCommand.userAgent]),
                                                     UsageSpec("SALE", mode: BookCommand.stream, options: [BookCommand.format])],
                              summary: command.summary, run: command.run)
        }
        #expect(ManReference.regenerate(page, commands: withoutKey).problems == [
            "COMMANDS, book, documents --key, which it does not take: remove the entry, or add the option to the table",
        ])
        let salesWithSale = CommandTable.all.map { command in
            command.name != SalesCommand.spec.name ? command
                : CommandSpec(command.name, options: [BlockCommands.sale], summary: command.summary, run: command.run)
        }
        #expect(ManReference.regenerate(page, commands: salesWithSale).problems == [
            "COMMANDS, sales, has no entry for --sale: add '.It Fl -sale Ar sale' and its text",
        ])
    }

    @Test func aStaleHeadingOrOptionLineIsRewritten() throws {
        let page = try String(contentsOf: manPage, encoding: .utf8)
        let stale = page.replacingOccurrences(of: ".It Cm status Ar sale\n", with: ".It Cm status Ar SALE\n")
            .replacingOccurrences(of: ".It Fl -hold Ar duration\n", with: ".It Fl -hold Ar time\n")
        #expect(stale != page)
        #expect(ManReference.regenerate(stale) == ManReference.regenerate(page))
    }

    @Test func aCommandWithoutItsRegionIsAProblem() throws {
        let page = try String(contentsOf: manPage, encoding: .utf8)
        let withoutInit = page.replacingOccurrences(of: #".\" BEGIN GENERATED init"# + "\n", with: "")
            .replacingOccurrences(of: #".\" END GENERATED init"# + "\n", with: "")
        #expect(ManReference.regenerate(withoutInit).problems == [
            #"the page has no region 'init': add '.\" BEGIN GENERATED init' and '.\" END GENERATED init' where it belongs, with its text under them"#,
        ])
    }

    /// The man page gives each usage its own heading, so every usage must take the command's
    /// arguments in order, as the parser reads them by position.
    @Test func everyUsageTakesItsCommandsArgumentsInOrder() {
        for command in CommandTable.all {
            for usage in command.usages {
                #expect(usage.arguments.map(\.name) == command.arguments.prefix(usage.arguments.count).map(\.name),
                        "\(command.name): a usage takes \(usage.arguments.map(\.name))")
            }
        }
    }

    /// What the parser and `--help` read of a command with two usages: each usage's options,
    /// and an argument only one usage takes as optional.
    @Test func aCommandOfSeveralUsagesTakesWhatEachTakes() {
        #expect(BookCommand.spec.synopsis == "book SALE [USER] [--ip IP] [--user-agent UA] [--key KEY] [--stream] [--format FORMAT]")
        #expect(SubmitCommand.spec.synopsis
            == "submit SALE [USER] [--ip IP] [--user-agent UA] [--key KEY] [--file PATH] [--format FORMAT] [--skip-invalid]")
    }

    @Test(.enabled(if: mandocInstalled, "mandoc is not installed"))
    func theManPageLintsClean() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/mandoc")
        process.arguments = ["-T", "lint", "-W", "warning", manPage.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(report.isEmpty, "mandoc -T lint: \(report)")
        #expect(process.terminationStatus == 0)
    }
}
