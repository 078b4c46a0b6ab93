/// A sale's id: 1–64 characters of `A-Z a-z 0-9 . _ -`, starting with a letter or digit,
/// so it is safe in file names, URLs and shell words.
public struct SaleID: Hashable, Sendable, CustomStringConvertible {
    public let text: String

    public init(_ text: String) throws(FlashSaleError) {
        let bytes = Array(text.utf8)
        guard (1...64).contains(bytes.count), let first = bytes.first,
              isAlphanumeric(first),
              bytes.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else {
            throw .usage("'\(Quoted(text))' is not a sale id: use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
        }
        self.text = text
    }

    /// For ids read back from the database, which were checked when they were written.
    public init(trusted text: String) {
        self.text = text
    }

    public var description: String { text }
}

/// A booking's id: `bk_` and 22 URL-safe base64 characters, 128 random bits.
public struct BookingID: Hashable, Sendable, CustomStringConvertible {
    public let text: String

    static let prefix = "bk_"
    static let randomCharacters = 22

    public init(_ text: String) throws(FlashSaleError) {
        let bytes = Array(text.utf8)
        guard bytes.count == BookingID.prefix.utf8.count + BookingID.randomCharacters,
              text.hasPrefix(BookingID.prefix),
              bytes.dropFirst(BookingID.prefix.utf8.count).allSatisfy({ base64URLAlphabet.contains($0) })
        else {
            throw .usage("'\(Quoted(text))' is not a booking id: ids look like bk_ followed by 22 letters, digits, - or _")
        }
        self.text = text
    }

    public init(trusted text: String) {
        self.text = text
    }

    /// A fresh id: 128 bits from the system's cryptographic generator (getrandom on
    /// Linux, two calls), in unpadded URL-safe base64.
    public static func random() -> BookingID {
        var generator = SystemRandomNumberGenerator()
        let halves = [generator.next(), generator.next()] as [UInt64]
        let bytes = halves.flatMap { half in (0..<8).map { UInt8(truncatingIfNeeded: half >> ($0 * 8)) } }
        var text = prefix
        var bits: UInt32 = 0
        var bitCount = 0
        for byte in bytes {
            bits = bits << 8 | UInt32(byte)
            bitCount += 8
            while bitCount >= 6 {
                bitCount -= 6
                text.unicodeScalars.append(Unicode.Scalar(base64URLAlphabet[Int(bits >> UInt32(bitCount) & 63)]))
            }
        }
        // 128 bits leave 2: the 22nd character carries them.
        text.unicodeScalars.append(Unicode.Scalar(base64URLAlphabet[Int(bits << UInt32(6 - bitCount) & 63)]))
        return BookingID(trusted: text)
    }

    public var description: String { text }
}

private let base64URLAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

private func isAlphanumeric(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
        || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
        || isDigit(byte)
}

/// Opaque user-supplied text, bounded in bytes: users, keys, names, agents, addresses.
/// Compared byte for byte, never normalised.
public enum TextField: String, Sendable {
    case user, key, name, ip, reason
    case userAgent = "user agent"

    public var maximumBytes: Int {
        switch self {
        case .user, .key, .name, .reason: 256
        case .ip: 64
        case .userAgent: 1024
        }
    }

    /// The value, checked; nil for an empty optional value (which means absent).
    /// NUL bytes are refused: SQLite and C tools would cut the text there.
    public func validate(_ value: String, required: Bool) throws(FlashSaleError) -> String? {
        if value.isEmpty {
            if required { throw .usage("\(rawValue) must not be empty") }
            return nil
        }
        let count = value.utf8.count
        guard count <= maximumBytes else {
            throw .usage("\(rawValue) is \(count) bytes; the limit is \(maximumBytes)")
        }
        // Over the contiguous bytes when the string has them (native strings do): much faster.
        let hasNUL = value.utf8.withContiguousStorageIfAvailable { $0.contains(0) } ?? value.utf8.contains(0)
        guard !hasNUL else { throw .usage("\(rawValue) contains a NUL byte") }
        if self == .ip, IPAddress(value) == nil {
            throw .usage("'\(Quoted(value))' is not an IPv4 or IPv6 address")
        }
        return value
    }
}

/// A value echoed in an error message: shortened, and with control characters escaped,
/// so the message stays one readable line whatever was typed.
public struct Quoted: CustomStringConvertible, Sendable {
    let text: String

    public init(_ text: String) {
        self.text = text
    }

    public var description: String {
        let shown = String(text.unicodeScalars.prefix(40)).controlCharactersEscaped
        return text.unicodeScalars.count > 40 ? shown + "..." : shown
    }
}

extension String {
    /// The text with each control character (C0, DEL and C1: line breaks, tabs, the starts
    /// of terminal escape sequences) written as its Swift escape, `\n` or `\u{1B}`: one line
    /// that a terminal only prints. Error messages and text output show values so.
    public var controlCharactersEscaped: String {
        // Only these bytes can be, or start (0xC2: C1), a control character; most values have none.
        guard utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == 0xC2 }) else { return self }
        var out = ""
        for scalar in unicodeScalars {
            if scalar.isControl {
                out += scalar.escaped(asASCII: true)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension Unicode.Scalar {
    /// A control character: Unicode's general category Cc, U+0000-001F and U+007F-009F.
    public var isControl: Bool { properties.generalCategory == .control }
}
