import Foundation
import Testing
@testable import FlashSaleCLI

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let manPage = packageRoot.appendingPathComponent("man/flashsale.1")
let mandocInstalled = FileManager.default.isExecutableFile(atPath: "/usr/bin/mandoc")

/// The help and the man page must name every command and option of the tables that the
/// parser reads, so neither can drift from what the binary accepts.
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

    @Test func theManPageNamesEveryCommandAndOption() throws {
        let source = try String(contentsOf: manPage, encoding: .utf8)
        for command in CommandTable.all {
            #expect(source.contains("Cm \(command.name)"), "man page lacks the command \(command.name)")
            for option in command.options {
                // mdoc writes --per-user as `Fl -per-user`.
                #expect(source.contains("Fl \(option.name.dropFirst())"), "man page lacks \(command.name) \(option.name)")
            }
        }
        for option in GlobalOptions.all {
            #expect(source.contains("Fl \(option.name.dropFirst())"), "man page lacks \(option.name)")
            if let short = option.short {
                #expect(source.contains("Fl \(short.dropFirst())"), "man page lacks \(short)")
            }
        }
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
