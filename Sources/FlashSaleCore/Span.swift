/// A length of time in whole milliseconds: hold times, busy timeouts, `+DURATION` offsets.
/// (Not `Duration`, which the standard library already names.)
public struct Span: Comparable, Hashable, Sendable, CustomStringConvertible {
    public let milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    public static func seconds(_ seconds: Int64) -> Span {
        Span(milliseconds: seconds * 1000)
    }

    /// Ten years: longer than any hold or timeout anyone means, short enough that
    /// adding it to any representable instant cannot overflow.
    public static let maximum = Span(milliseconds: 10 * 366 * 86_400_000)

    /// How the refusals of a longer one name the limit: `87840h`.
    public static let maximumText = maximum.hoursText

    /// In nanoseconds, for a deadline on a monotonic clock: none below zero, and none past
    /// `maximum`, which cannot overflow.
    public var nanoseconds: UInt64 { UInt64(max(0, min(milliseconds, Span.maximum.milliseconds))) * 1_000_000 }

    /// Whole hours, as a limit is named: `720h`.
    public var hoursText: String { "\(milliseconds / 3_600_000)h" }

    public static func < (a: Span, b: Span) -> Bool { a.milliseconds < b.milliseconds }

    /// `90s`, `5m`, `1h30m`, `250ms`, or plain seconds (`300`). Units may repeat in
    /// any order (`1m30s`), each with a whole number; nothing else is accepted.
    public static func parse(_ text: String) -> Span? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        if bytes.allSatisfy(isDigit) {
            return make(total: number(bytes[...]), scale: 1000)
        }
        var total: Int64 = 0
        var index = 0
        while index < bytes.count {
            let digitsStart = index
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            guard index > digitsStart, let value = number(bytes[digitsStart..<index]) else { return nil }
            let unitStart = index
            while index < bytes.count, !isDigit(bytes[index]) { index += 1 }
            let scale: Int64
            switch String(decoding: bytes[unitStart..<index], as: UTF8.self) {
            case "ms": scale = 1
            case "s": scale = 1000
            case "m": scale = 60_000
            case "h": scale = 3_600_000
            default: return nil
            }
            guard value <= maximum.milliseconds / scale else { return nil }
            total += value * scale
            guard total <= maximum.milliseconds else { return nil }
        }
        return Span(milliseconds: total)
    }

    /// The shortest spelling `parse` reads back: `5m`, `1h30m`, `250ms`, `0s`.
    public var description: String {
        guard milliseconds > 0 else { return "0s" }
        var rest = milliseconds
        var text = ""
        for (unit, scale) in [("h", Int64(3_600_000)), ("m", 60_000), ("s", 1000), ("ms", 1)] {
            if rest >= scale {
                text += "\(rest / scale)\(unit)"
                rest %= scale
            }
        }
        return text
    }

    /// Seconds as a JSON number: `300`, or `0.25` for a part of a second.
    public var secondsText: String {
        let whole = milliseconds / 1000
        let fraction = milliseconds % 1000
        guard fraction != 0 else { return String(whole) }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 3 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }

    private static func make(total: Int64?, scale: Int64) -> Span? {
        guard let total, total <= maximum.milliseconds / scale else { return nil }
        return Span(milliseconds: total * scale)
    }
}

func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

/// A decimal number of at most 18 digits (so it cannot overflow Int64), or nil.
func number(_ digits: ArraySlice<UInt8>) -> Int64? {
    guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy(isDigit) else { return nil }
    return digits.reduce(0) { $0 * 10 + Int64($1 - 0x30) }
}
