import Testing
import FlashSaleCore
@testable import FlashSaleCLI

/// The parser is a pure function of the words: no process, no database.
@Suite struct ParserTests {
    func parse(_ words: [String]) throws(FlashSaleError) -> ParsedCommandLine {
        try ParsedCommandLine.parse(words, commands: CommandTable.all)
    }

    func invocation(_ words: [String]) throws -> Invocation {
        guard case .run(let invocation) = try parse(words).action else {
            Issue.record("\(words) did not parse to a command")
            throw FlashSaleError.internalFailure("not a command")
        }
        return invocation
    }

    func usageError(_ words: [String]) -> String? {
        do {
            _ = try parse(words)
            return nil
        } catch {
            return error.exitCode == 2 ? error.message : "exit \(error.exitCode)"
        }
    }

    @Test func globalOptionsMayStandBeforeOrAfterTheCommand() throws {
        let before = try parse(["--db", "a.db", "--json", "book", "s1", "u1"])
        let after = try parse(["book", "s1", "u1", "--db", "a.db", "--json"])
        for line in [before, after] {
            #expect(line.globals["--db"] == "a.db")
            #expect(line.globals.has("--json"))
        }
        #expect(try invocation(["book", "s1", "--json", "u1"]).arguments == ["SALE": "s1", "USER": "u1"])
    }

    @Test func commandOptionsTakeSpacedOrInlineValues() throws {
        let spaced = try invocation(["create-sale", "s1", "--inventory", "5", "--hold", "90s"])
        let inline = try invocation(["create-sale", "s1", "--inventory=5", "--hold=90s"])
        for parsed in [spaced, inline] {
            #expect(parsed.options["--inventory"] == "5")
            #expect(parsed.options["--hold"] == "90s")
        }
        #expect(try invocation(["create-sale", "s1", "--inventory", "1", "--name="]).options["--name"] == "")
    }

    /// Found by fuzzing: `=` and a combining mark after it make one Character, so the value
    /// was not split off and `--ip=\u{0740}...` was an unknown option.
    @Test func anInlineValueMayStartWithACombiningMark() throws {
        #expect(try invocation(["book", "s1", "u1", "--key=\u{301}k"]).options["--key"] == "\u{301}k")
        #expect(try invocation(["book", "s1", "u1", "--ip=\u{0740}8"]).options["--ip"] == "\u{0740}8")
    }

    @Test func aValueMayStartWithADash() throws {
        #expect(try invocation(["create-sale", "s1", "--inventory", "1", "--name", "-x-"]).options["--name"] == "-x-")
    }

    @Test func doubleDashEndsTheOptions() throws {
        #expect(try invocation(["book", "s1", "--", "-bob"]).arguments["USER"] == "-bob")
        #expect(try invocation(["book", "--", "s1", "--json"]).arguments["USER"] == "--json")
    }

    @Test func unknownOptionsAreUsageErrors() {
        #expect(usageError(["book", "s1", "u1", "--bogus"])?.contains("unknown option '--bogus'") == true)
        #expect(usageError(["book", "s1", "u1", "--force"])?.contains("unknown option") == true)
        #expect(usageError(["seed-inventory", "s1", "-5"])?.contains("after '--'") == true)
        #expect(usageError(["book", "s1", "-bob"])?.contains("after '--'") == true)
    }

    @Test func aCommandsOptionBeforeTheCommandSaysWhereItBelongs() {
        #expect(usageError(["--inventory", "5", "create-sale", "s1"])?.contains("belongs after the command name") == true)
        // Found by probing: the usage shown was the first command's that has the option
        // (serve's for --sale), not the one named after it.
        #expect(usageError(["--sale", "s1", "events"])?.hasPrefix("option --sale belongs after the command name: flashsale events ") == true)
        #expect(usageError(["--limit", "5", "suspects", "s1"])?.hasPrefix("option --limit belongs after the command name: flashsale suspects ") == true)
        // An option the named command does not take is unknown to it.
        #expect(usageError(["--inventory", "5", "status", "s1"])?.hasPrefix("unknown option '--inventory' for status") == true)
    }

    @Test func missingValuesAndArgumentsAreUsageErrors() {
        #expect(usageError(["create-sale", "s1", "--inventory"])?.contains("needs a value") == true)
        // Found by probing: '--' taken for the value (as getopt takes it), -1 was an unknown
        // option that the hint said to put after '--', where it was.
        #expect(usageError(["events", "--limit", "--", "-1"])?.contains("('--' after --limit is its value: write --limit=-1 for a value starting with '-')") == true)
        #expect(usageError(["confirm", "s1"])?.contains("needs BOOKING") == true)
        #expect(usageError(["book", "s1", "u1", "extra"])?.contains("unexpected argument 'extra'") == true)
        #expect(usageError([])?.contains("no command") == true)
        #expect(usageError(["create-sale", "s1", "--name", "x"])?.contains("needs --inventory N") == true)
    }

    @Test func flagsTakeNoValueAndNothingMayBeGivenTwice() {
        #expect(usageError(["cancel", "s1", "bk_x", "--force=yes"])?.contains("takes no value") == true)
        #expect(usageError(["book", "s1", "u1", "--ip", "1.2.3.4", "--ip", "1.2.3.5"])?.contains("given twice") == true)
        #expect(usageError(["--json", "sales", "--json"])?.contains("given twice") == true)
    }

    @Test func unknownCommandsAreUsageErrors() {
        // Commands are matched exactly: no abbreviations, no case folding.
        for command in ["bogus", "Book", "boo", "book-now", "help2"] {
            #expect(usageError([command])?.contains("unknown command") == true)
        }
    }

    @Test func helpAndVersionWinOverEverythingElse() throws {
        guard case .help(let command) = try parse(["book", "--help"]).action else {
            Issue.record("book --help is not help")
            return
        }
        #expect(command?.name == "book")
        guard case .help(nil) = try parse(["-h"]).action else {
            Issue.record("-h is not the general help")
            return
        }
        guard case .version = try parse(["--version"]).action else {
            Issue.record("--version is not the version")
            return
        }
    }

    @Test func shortQuietIsTheQuietOption() throws {
        #expect(try parse(["-q", "sales"]).globals.has("--quiet"))
    }
}
