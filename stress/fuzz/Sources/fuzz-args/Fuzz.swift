import FuzzSupport
import FlashSaleCore
@testable import FlashSaleCLI

/// The command line: the input split into words at NUL or LF (argv's separators as a file
/// can hold them), parsed as `CLI.run` parses, then every value put through every typed
/// reading a command may apply. Properties: a refusal is a usage error of one line; a parsed
/// command line, written out again in long form (`--name value`, or `--name=value`),
/// parses to the same command.
@main enum FuzzArguments {
    static func main() { runFuzzer(fuzzArguments) }
}

func fuzzArguments(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var words: [String] = []
    for raw in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).flatMap({ $0.split(separator: 0, omittingEmptySubsequences: false) }) {
        // CLI.run refuses a word that is not UTF-8 before parsing.
        guard let word = String(validating: raw, as: UTF8.self) else { return 0 }
        words.append(word)
    }
    let parsed: ParsedCommandLine
    do {
        parsed = try ParsedCommandLine.parse(words, commands: CommandTable.all)
    } catch {
        checkRefusal(error, words)
        return 0
    }
    guard case .run(let invocation) = parsed.action else { return 0 }
    checkValues(invocation)
    for inline in [false, true] {
        let again = longForm(invocation, globals: parsed.globals, inline: inline)
        do {
            let reparsed = try ParsedCommandLine.parse(again, commands: CommandTable.all)
            require(same(reparsed, as: parsed), "\(words) and \(again) parse differently")
        } catch {
            require(false, "\(words) parses, but its long form \(again) does not: \(error)")
        }
    }
    return 0
}

/// A refusal is exit 2 with a message that stays on one line, whatever was typed.
private func checkRefusal(_ error: FlashSaleError, _ words: [String]) {
    require(error.exitCode == 2, "\(words): \(error) is not a usage error")
    require(!error.message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F },
            "\(words): message '\(error.message)' has a control character")
}

/// Every typed reading of every value: a sale id, a booking id, each kind of text, a number,
/// a duration, a time, a booking status. Each either succeeds or is a one-line usage error.
private func checkValues(_ invocation: Invocation) {
    let options = invocation.command.options + GlobalOptions.all
    let names = invocation.arguments.keys.sorted() + options.map(\.name).filter(invocation.options.has)
    let now = Instant(milliseconds: 1_795_100_400_000)
    func attempt<T>(_ reading: () throws(FlashSaleError) -> T) {
        do { _ = try reading() } catch { checkRefusal(error, names) }
    }
    for name in names {
        let value = invocation.arguments[name] ?? invocation.options[name] ?? ""
        attempt { () throws(FlashSaleError) in try SaleID(value) }
        attempt { () throws(FlashSaleError) in try BookingID(value) }
        for field in [TextField.user, .key, .name, .ip, .reason, .userAgent] {
            attempt { () throws(FlashSaleError) in try field.validate(value, required: true) }
        }
        attempt { () throws(FlashSaleError) in try invocation.wholeNumber(name, in: 0...1_000_000_000) }
    }
    for option in options where invocation.options.has(option.name) {
        attempt { () throws(FlashSaleError) in try invocation.span(option) }
        attempt { () throws(FlashSaleError) in try invocation.instant(option, now: now) }
        attempt { () throws(FlashSaleError) in try invocation.bookingStatus(option) }
    }
}

/// The command line in the one spelling nothing can misread: globals and options by long
/// name, then `--` and the positional arguments in order.
private func longForm(_ invocation: Invocation, globals: Invocation.Values, inline: Bool) -> [String] {
    var words = [invocation.command.name]
    for (option, values) in [(GlobalOptions.all, globals), (invocation.command.options, invocation.options)] {
        for spec in option {
            guard let value = values[spec.name] else { continue }
            if spec.isFlag {
                words.append(spec.name)
            } else if inline {
                words.append(spec.name + "=" + value)
            } else {
                words += [spec.name, value]
            }
        }
    }
    words.append("--")
    words += invocation.command.arguments.compactMap { invocation.arguments[$0.name] }
    return words
}

private func same(_ a: ParsedCommandLine, as b: ParsedCommandLine) -> Bool {
    guard case .run(let first) = a.action, case .run(let second) = b.action else { return false }
    let options = first.command.options + GlobalOptions.all
    return first.command.name == second.command.name
        && first.arguments == second.arguments
        && options.allSatisfy { first.options[$0.name] == second.options[$0.name] && a.globals[$0.name] == b.globals[$0.name] }
}
