/// A point in time, milliseconds since the Unix epoch, UTC. Every decision compares these.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public let milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    /// 1970-01-01T00:00:00Z ... 9999-12-31T23:59:59.999Z: what RFC 3339 can write.
    public static let earliest = Instant(milliseconds: 0)
    public static let latest = Instant(milliseconds: 253_402_300_799_999)
    /// The latest time a user may give (clock, --starts, --ends): 31 days before `latest`,
    /// so that a decision time plus the longest hold (30 days) can always be written.
    public static let latestInput = Instant(milliseconds: latest.milliseconds - 31 * 86_400_000)

    public static func < (a: Instant, b: Instant) -> Bool { a.milliseconds < b.milliseconds }

    /// Saturates at `latest`, so `+10y` on the last day of 9999 cannot overflow, nor a time
    /// or a hold set by hand to the far end of Int64 (found by review: `book` crashed).
    public func adding(_ span: Span) -> Instant {
        let (sum, overflowed) = milliseconds.addingReportingOverflow(span.milliseconds)
        guard !overflowed else { return span.milliseconds > 0 ? Instant.latest : Instant(milliseconds: .min) }
        return Instant(milliseconds: min(sum, Instant.latest.milliseconds))
    }

    /// RFC 3339 in UTC, always with milliseconds so that the texts sort as the times do.
    /// Written digit by digit into one string: every hold a stream answers prints one.
    public var description: String {
        // Floored, without a product that overflows at the far ends of Int64: a time set
        // there by hand is written (as a year of many digits) for `verify` to name.
        var (days, ofDay) = milliseconds.quotientAndRemainder(dividingBy: 86_400_000)
        if ofDay < 0 {
            days -= 1
            ofDay += 86_400_000
        }
        let (year, month, day) = Calendar.civil(fromDays: days)
        return String(unsafeUninitializedCapacity: 32) { out in
            var at = 0
            /// `value` in decimal, at least `width` digits.
            func put(_ value: Int64, _ width: Int, then separator: UInt8) {
                if value < 0 {
                    out[at] = UInt8(ascii: "-")
                    at += 1
                }
                var digits = 1
                var rest = value.magnitude
                while rest >= 10 {
                    rest /= 10
                    digits += 1
                }
                let count = max(width, digits)
                rest = value.magnitude
                for place in stride(from: at + count - 1, through: at, by: -1) {
                    out[place] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                out[at + count] = separator
                at += count + 1
            }
            put(year, 4, then: UInt8(ascii: "-"))
            put(month, 2, then: UInt8(ascii: "-"))
            put(day, 2, then: UInt8(ascii: "T"))
            put(ofDay / 3_600_000, 2, then: UInt8(ascii: ":"))
            put(ofDay / 60_000 % 60, 2, then: UInt8(ascii: ":"))
            put(ofDay / 1000 % 60, 2, then: UInt8(ascii: "."))
            put(ofDay % 1000, 3, then: UInt8(ascii: "Z"))
            return at
        }
    }

    /// A time given by a user: RFC 3339 (`2026-11-24T15:00:00Z`, any offset, fractions
    /// truncated to milliseconds), Unix seconds (`1795000000`, `1795000000.250`), or
    /// `+DURATION` from `now`.
    public static func parse(_ text: String, now: Instant) -> Instant? {
        let parsed: Instant?
        if text.hasPrefix("+") {
            parsed = Span.parse(String(text.dropFirst())).map { now.adding($0) }
        } else if let first = text.utf8.first, isDigit(first), !text.utf8.contains(UInt8(ascii: "-")) {
            parsed = parseUnixSeconds(Array(text.utf8))
        } else {
            parsed = parseRFC3339(Array(text.utf8))
        }
        return parsed.flatMap { $0 <= latestInput ? $0 : nil }
    }

    private static func parseUnixSeconds(_ bytes: [UInt8]) -> Instant? {
        let parts = bytes.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false)
        guard let seconds = number(parts[0]) else { return nil }
        var millis: Int64 = 0
        if parts.count == 2 {
            guard let fraction = fractionMilliseconds(parts[1]) else { return nil }
            millis = fraction
        }
        guard seconds <= latest.milliseconds / 1000 else { return nil }
        return Instant(milliseconds: seconds * 1000 + millis)
    }

    private static func parseRFC3339(_ bytes: [UInt8]) -> Instant? {
        // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM); RFC 3339 allows `t`, `z` and a space.
        guard bytes.count >= 20,
              bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
              [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(bytes[10]),
              bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
              let year = number(bytes[0..<4]), let month = number(bytes[5..<7]),
              let day = number(bytes[8..<10]), let hour = number(bytes[11..<13]),
              let minute = number(bytes[14..<16]), let second = number(bytes[17..<19]),
              (1...12).contains(month), day >= 1, day <= Calendar.daysIn(month: month, year: year),
              hour <= 23, minute <= 59, second <= 59
        else { return nil }
        var index = 19
        var millis: Int64 = 0
        if bytes[index] == UInt8(ascii: ".") {
            let start = index + 1
            index = start
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            guard let fraction = fractionMilliseconds(bytes[start..<index]) else { return nil }
            millis = fraction
        }
        guard index < bytes.count, let offset = offsetMilliseconds(bytes[index...]) else { return nil }
        let days = Calendar.days(year: year, month: month, day: day)
        let local = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis
        let instant = local - offset
        guard instant >= earliest.milliseconds, instant <= latest.milliseconds else { return nil }
        return Instant(milliseconds: instant)
    }

    /// `Z` / `z` (zero) or `+HH:MM` / `-HH:MM`, the whole rest of the text.
    private static func offsetMilliseconds(_ bytes: ArraySlice<UInt8>) -> Int64? {
        if bytes.count == 1, bytes.first == UInt8(ascii: "Z") || bytes.first == UInt8(ascii: "z") {
            return 0
        }
        let start = bytes.startIndex
        guard bytes.count == 6, bytes[start + 3] == UInt8(ascii: ":"),
              let hours = number(bytes[(start + 1)..<(start + 3)]),
              let minutes = number(bytes[(start + 4)..<(start + 6)]),
              hours <= 23, minutes <= 59
        else { return nil }
        let magnitude = (hours * 60 + minutes) * 60_000
        switch bytes[start] {
        case UInt8(ascii: "+"): return magnitude
        case UInt8(ascii: "-"): return -magnitude
        default: return nil
        }
    }

    /// Digits after the point, at least one, truncated to milliseconds: RFC 3339 sets no
    /// limit, and a clock's nanoseconds and more were refused (found by an audit).
    private static func fractionMilliseconds(_ digits: ArraySlice<UInt8>) -> Int64? {
        guard !digits.isEmpty, digits.allSatisfy(isDigit) else { return nil }
        let firstThree = Array(digits.prefix(3)) + Array(repeating: UInt8(ascii: "0"), count: max(0, 3 - digits.count))
        return number(firstThree[...])
    }
}

/// Proleptic Gregorian calendar arithmetic (Howard Hinnant's civil-days algorithms).
enum Calendar {
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
