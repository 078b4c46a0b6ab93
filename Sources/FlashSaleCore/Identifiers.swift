import Glibc

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

/// A booking's id: `bk_` and 22 characters of URL-safe base64's alphabet. Ids made now
/// (`BookingIDGenerator`) start with the time they were made; those of older versions are
/// 128 random bits. Either is opaque: nothing reads the time back.
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

    public var description: String { text }
}

/// Makes the ids of new bookings: `bk_`, 6 characters of the time, the low 36 bits of its
/// milliseconds (they come round every 795 days), then 16 characters of 96 bits from the
/// system's cryptographic generator, the unguessable part. The time first puts a sale's
/// new ids next to each other at the end of the database's index of ids, where random ids
/// land each on a page of its own in an index that has long outgrown the cache. The
/// characters are base64's in ASCII order, so that the ids sort as the times do.
///
/// Random bytes are read a pool at a time: one system call per 64 ids, not two per id.
/// Not for several threads at once.
public final class BookingIDGenerator {
    private static let randomBytes = 12
    private var pool = [UInt8](repeating: 0, count: 64 * randomBytes)
    private var used: Int

    public init() {
        used = pool.count
    }

    public func make(at now: Instant) -> BookingID {
        if used == pool.count { refill() }
        let time = UInt64(truncatingIfNeeded: now.milliseconds)
        let text = pool.withUnsafeBufferPointer { pool in
            String(unsafeUninitializedCapacity: 25) { out in
                var at = 0
                for byte in BookingID.prefix.utf8 {
                    out[at] = byte
                    at += 1
                }
                for shift in stride(from: 30, through: 0, by: -6) {
                    out[at] = sortableBase64[Int(time >> UInt64(shift) & 63)]
                    at += 1
                }
                // Three random bytes make four characters.
                for group in stride(from: used, to: used + BookingIDGenerator.randomBytes, by: 3) {
                    let bits = UInt32(pool[group]) << 16 | UInt32(pool[group + 1]) << 8 | UInt32(pool[group + 2])
                    for shift in stride(from: 18, through: 0, by: -6) {
                        out[at] = sortableBase64[Int(bits >> UInt32(shift) & 63)]
                        at += 1
                    }
                }
                return at
            }
        }
        used += BookingIDGenerator.randomBytes
        return BookingID(trusted: text)
    }

    /// glibc's arc4random_buf: getrandom(2) underneath, one call per pool.
    private func refill() {
        pool.withUnsafeMutableBytes { bytes in
            if let start = bytes.baseAddress { arc4random_buf(start, bytes.count) }
        }
        used = 0
    }
}

/// URL-safe base64's 64 characters in ASCII order: texts made of them sort as their values.
private let sortableBase64 = Array("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz".utf8)

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
        // Over the contiguous bytes when the string has them (native strings do), eight at a
        // time: a user agent's hundred bytes a byte at a time were 4% of a `submit --file`.
        let hasNUL = value.utf8.withContiguousStorageIfAvailable { InputByte.firstIndex(of: 0, in: $0, from: 0) != nil }
            ?? value.utf8.contains(0)
        guard !hasNUL else { throw .usage("\(rawValue) contains a NUL byte") }
        if self == .ip, !IPAddress.isValid(value) {
            throw .usage("'\(Quoted(value))' is not an IPv4 or IPv6 address")
        }
        return value
    }
}

/// A value echoed in an error message: shortened, and with control characters escaped,
/// so the message stays one readable line whatever was typed; a database URL not at all.
public struct Quoted: CustomStringConvertible, Sendable {
    let text: String
    let limit: Int

    /// `limit`: the characters shown before "...": 40 fit a value into a sentence, more a
    /// path or a name that is seldom that short.
    public init(_ text: String, keeping limit: Int = 40) {
        self.text = text
        self.limit = limit
    }

    public var description: String {
        // A database URL given where another value goes (found by probing: `copy-to URL URL`
        // showed the second one's password as an unexpected argument).
        if DatabaseURL.mayHoldPassword(text) {
            return "<a database URL, not shown: it may hold a password>"
        }
        let shown = String(text.unicodeScalars.prefix(limit)).controlCharactersEscaped
        return text.unicodeScalars.count > limit ? shown + "..." : shown
    }
}

extension String {
    /// The text with each control character (C0, DEL and C1: line breaks, tabs, the starts
    /// of terminal escape sequences) written as its Swift escape, `\n` or `\u{1B}`: one line
    /// that a terminal only prints. Error messages and text output show values so. So are
    /// Unicode's own line and paragraph separators, which split a line for readers that
    /// honour them, and the characters that show nothing (`Unicode.Scalar.isInvisible`).
    public var controlCharactersEscaped: String {
        // Only ASCII controls and characters past ASCII can be escaped here; most values
        // are plain ASCII.
        guard utf8.contains(where: { $0 < 0x20 || $0 >= 0x7F }) else { return self }
        var out = ""
        forEachScalar { scalar, hidden in
            if hidden { out += scalar.escaped(asASCII: true) } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    /// Calls `body` with each scalar and whether text output must escape it: a control
    /// character, a line or paragraph separator, or one that shows nothing. The one rule
    /// for `controlCharactersEscaped` and for the shell words commands print to paste.
    public func forEachScalar(_ body: (Unicode.Scalar, _ hidden: Bool) -> Void) {
        // Tag characters spell a flag only after U+1F3F4, up to the cancel tag U+E007F;
        // anywhere else they hide text (found by probing).
        var inFlag = false
        for scalar in unicodeScalars {
            let isFlagTag = inFlag && (0xE0020...0xE007F).contains(scalar.value)
            body(scalar, scalar.isControl || scalar.isLineOrParagraphSeparator || (scalar.isInvisible && !isFlagTag))
            inFlag = scalar.value == 0x1F3F4 || (isFlagTag && scalar.value != 0xE007F)
        }
    }
}

extension Unicode.Scalar {
    /// A control character: Unicode's general category Cc, U+0000-001F and U+007F-009F.
    public var isControl: Bool { properties.generalCategory == .control }

    /// A character that shows nothing and that no writing needs: a format character
    /// (general category Cf) or one Unicode says to ignore in display, such as the
    /// bidirectional controls (U+202E reorders what follows it on the screen, so that a row
    /// reads as another), the zero-width ones (U+200B, U+FEFF, U+00AD) and the Hangul fillers
    /// (U+3164), which make two users look the same (both found by probing). Not the
    /// joiners, which join emoji into one (U+200D: 👨‍👩‍👧) and keep Persian and Indic
    /// letters apart (U+200C), nor the variation selectors, which choose how the character
    /// before them looks (U+FE0F: ❤️; Mongolian's U+180B-180F). Tag characters are
    /// invisible too, except in a flag (`controlCharactersEscaped`).
    public var isInvisible: Bool {
        guard properties.generalCategory == .format || properties.isDefaultIgnorableCodePoint else { return false }
        switch value {
        case 0x200C, 0x200D, 0x180B...0x180D, 0x180F, 0xFE00...0xFE0F, 0xE0100...0xE01EF: return false
        default: return true
        }
    }

    /// U+2028 and U+2029, which end a line for Python's `splitlines` and JavaScript.
    public var isLineOrParagraphSeparator: Bool {
        properties.generalCategory == .lineSeparator || properties.generalCategory == .paragraphSeparator
    }
}

/// A buyer, as the caller names them: opaque text (checked by `TextField.user`), compared
/// and hashed byte for byte as the contract says, where `String`'s own `==` would take two
/// spellings of `é` for one user.
public struct UserID: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringInterpolation {
    public let text: String

    /// A user already checked, or read back from the store.
    public init(trusted text: String) {
        self.text = text
    }

    public init(stringLiteral text: String) {
        self.text = text
    }

    public init(stringInterpolation: DefaultStringInterpolation) {
        text = String(stringInterpolation: stringInterpolation)
    }

    public static func == (a: UserID, b: UserID) -> Bool {
        a.text.utf8.elementsEqual(b.text.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    public var description: String { text }
}
