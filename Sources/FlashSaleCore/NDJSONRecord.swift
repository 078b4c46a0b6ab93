/// One NDJSON line: a JSON object whose `user`, `ip`, `user_agent` and `key` members are
/// strings or null. Other members are skipped whatever they hold, but must be valid JSON,
/// so that a truncated or corrupted line is refused rather than half-read.
enum NDJSONRecord {
    /// The request's raw values; the bytes are one line without its ending, already known to be
    /// valid UTF-8 without NUL.
    static func fields(_ line: UnsafeBufferPointer<UInt8>) throws(MalformedRecord) -> RequestFields {
        var cursor = JSONCursor(line)
        var fields = RequestFields()
        try cursor.object(names: RequestField.allCases.lazy.map(\.name), members: { $0.field(named: $1) }) {
            (cursor, field) throws(MalformedRecord) in
            fields[field] = try cursor.stringOrNull(for: field)
        }
        return fields
    }
}

/// A member of a JSON object that a reader takes (`JSONCursor.object`); any other is
/// skipped. At most eight per object: each has a bit of its own.
protocol JSONMember {
    /// Its name, for messages.
    var name: String { get }
    var bit: UInt8 { get }
}

extension RequestField: JSONMember {}

/// A JSON string token: the bytes between its quotes, and whether they need unescaping.
struct JSONString {
    let range: Range<Int>
    let escaped: Bool
}

/// A position in one line of JSON. Positions in messages are 1-based bytes of the line.
struct JSONCursor {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// The byte at the cursor, or 0 at the end: the line holds no NUL, so 0 is never valid JSON here.
    var peek: UInt8 { index < bytes.count ? bytes[index] : 0 }

    func invalid() -> MalformedRecord {
        MalformedRecord("invalid JSON at byte \(index + 1)")
    }

    /// Reads the JSON object that is all of the bytes (whitespace around it allowed):
    /// `members` says which member a name token names (nil: one the reader skips), and
    /// `read` takes each such member at its value; any other is skipped, but
    /// must be valid JSON, so that a truncated or corrupted object is refused rather than
    /// half-read. A name given twice is refused, compared decoded ("user" and "\u0075ser"
    /// are one, as JSON readers see them), rather than one of the two silently taken; and so
    /// is one of `names` written otherwise (`FieldNameSpelling`).
    @inline(__always)
    mutating func object<Member: JSONMember>(
        names: some Sequence<String>,
        members: (JSONCursor, JSONString) -> Member?, _ read: (inout JSONCursor, Member) throws(MalformedRecord) -> Void
    ) throws(MalformedRecord) {
        skipWhitespace()
        guard peek == UInt8(ascii: "{") else { throw MalformedRecord("not a JSON object") }
        index += 1
        skipWhitespace()
        var seen: UInt8 = 0  // one bit per member read, to spare a set per object
        var otherNames: Set<[UInt8]> = []
        if peek == UInt8(ascii: "}") {
            index += 1
        } else {
            members: while true {
                guard peek == InputByte.quote else { throw invalid() }
                let name = try string()
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                skipWhitespace()
                if let member = members(self, name) {
                    guard seen & member.bit == 0 else { throw MalformedRecord("duplicate key \"\(member.name)\"") }
                    seen |= member.bit
                    try read(&self, member)
                } else {
                    let decoded = decode(name)
                    if let meant = FieldNameSpelling.meant(by: decoded, among: names) {
                        throw MalformedRecord("key \"\(Quoted(String(decoding: decoded, as: UTF8.self)))\" is not read: "
                                              + "keys are lowercase, with _ (\(meant))")
                    }
                    guard otherNames.insert(decoded).inserted else {
                        throw MalformedRecord("duplicate key \"\(Quoted(String(decoding: decoded, as: UTF8.self)))\"")
                    }
                    try skipValue()
                }
                skipWhitespace()
                switch peek {
                case InputByte.comma:
                    index += 1
                    skipWhitespace()
                case UInt8(ascii: "}"):
                    index += 1
                    break members
                default:
                    throw invalid()
                }
            }
        }
        skipWhitespace()
        guard index == bytes.count else {
            throw MalformedRecord("unexpected text after the object at byte \(index + 1)")
        }
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case InputByte.space, InputByte.tab, InputByte.cr, InputByte.lf: index += 1
            default: return
            }
        }
    }

    mutating func expect(_ byte: UInt8) throws(MalformedRecord) {
        guard peek == byte else { throw invalid() }
        index += 1
    }

    /// Reads a string token starting at its opening quote, checking every escape.
    mutating func string() throws(MalformedRecord) -> JSONString {
        index += 1
        let start = index
        var escaped = false
        while index < bytes.count {
            switch bytes[index] {
            case InputByte.quote:
                let token = JSONString(range: start..<index, escaped: escaped)
                index += 1
                return token
            case InputByte.backslash:
                escaped = true
                try escape()
            case 0..<0x20:
                throw invalid()
            default:
                index += 1
            }
        }
        throw invalid()
    }

    /// Checks the escape at the cursor (a backslash) and moves past it. A `\u` surrogate must
    /// come as a high-low pair: a lone half is no character and cannot be stored as UTF-8.
    private mutating func escape() throws(MalformedRecord) {
        let start = index
        guard index + 1 < bytes.count else { throw invalid() }
        switch bytes[index + 1] {
        case InputByte.quote, InputByte.backslash, UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            index += 2
        case UInt8(ascii: "u"):
            guard let unit = hex4(at: index + 2) else { index += 2; throw invalid() }
            index += 6
            if (0xDC00...0xDFFF).contains(unit) { throw MalformedRecord("unpaired surrogate at byte \(start + 1)") }
            if (0xD800...0xDBFF).contains(unit) {
                guard index + 1 < bytes.count, bytes[index] == InputByte.backslash, bytes[index + 1] == UInt8(ascii: "u"),
                      let low = hex4(at: index + 2), (0xDC00...0xDFFF).contains(low)
                else { throw MalformedRecord("unpaired surrogate at byte \(start + 1)") }
                index += 6
            }
        default:
            index += 1
            throw invalid()
        }
    }

    private func hex4(at position: Int) -> UInt32? {
        guard position + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for byte in bytes[position..<(position + 4)] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// The token's text as bytes, escapes resolved. Only called on tokens `string()` accepted.
    func decode(_ token: JSONString) -> [UInt8] {
        let raw = bytes[token.range]
        guard token.escaped else { return Array(raw) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var position = token.range.lowerBound
        while position < token.range.upperBound {
            let byte = bytes[position]
            guard byte == InputByte.backslash else {
                out.append(byte)
                position += 1
                continue
            }
            let kind = bytes[position + 1]
            position += 2
            switch kind {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(InputByte.lf)
            case UInt8(ascii: "r"): out.append(InputByte.cr)
            case UInt8(ascii: "t"): out.append(InputByte.tab)
            case UInt8(ascii: "u"):
                var scalar = hex4(at: position) ?? 0xFFFD
                position += 4
                if (0xD800...0xDBFF).contains(scalar), let low = hex4(at: position + 2) {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    position += 6
                }
                UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}") { out.append($0) }
            default: out.append(kind)  // " \ /
            }
        }
        return out
    }

    func text(_ token: JSONString) -> String {
        guard token.escaped else {
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[token.range]), as: UTF8.self)
        }
        return String(decoding: decode(token), as: UTF8.self)
    }

    func field(named token: JSONString) -> RequestField? {
        guard token.escaped else { return RequestField(name: UnsafeBufferPointer(rebasing: bytes[token.range])) }
        return decode(token).withUnsafeBufferPointer { RequestField(name: $0) }
    }

    /// A known member's value: its text, or "" for null (both mean absent when optional).
    mutating func stringOrNull(for field: some JSONMember) throws(MalformedRecord) -> String {
        try optionalString(for: field) ?? ""
    }

    /// A known member's value: its text, or nil for null.
    mutating func optionalString(for field: some JSONMember) throws(MalformedRecord) -> String? {
        switch peek {
        case InputByte.quote:
            return text(try string())
        case UInt8(ascii: "n"):
            try literal("null")
            return nil
        case UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "-"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            throw MalformedRecord("\(field.name) must be a string")
        default:
            throw invalid()
        }
    }

    private mutating func literal(_ word: StaticString) throws(MalformedRecord) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count,
              UnsafeBufferPointer(start: word.utf8Start, count: count).elementsEqual(bytes[index..<(index + count)])
        else { throw invalid() }
        index += count
    }

    /// Moves past any JSON value. Iterative, with an explicit stack of open containers, so
    /// that deep nesting in a hostile line cannot exhaust the call stack.
    mutating func skipValue() throws(MalformedRecord) {
        var openObjects: [Bool] = []  // true for an object, false for an array
        values: while true {
            switch peek {
            case UInt8(ascii: "{"):
                index += 1
                skipWhitespace()
                if peek == UInt8(ascii: "}") {
                    index += 1
                } else {
                    openObjects.append(true)
                    try memberName()
                    continue values
                }
            case UInt8(ascii: "["):
                index += 1
                skipWhitespace()
                if peek == UInt8(ascii: "]") {
                    index += 1
                } else {
                    openObjects.append(false)
                    continue values
                }
            case InputByte.quote:
                _ = try string()
            case UInt8(ascii: "t"):
                try literal("true")
            case UInt8(ascii: "f"):
                try literal("false")
            case UInt8(ascii: "n"):
                try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                try number()
            default:
                throw invalid()
            }
            // A value is complete: close every container that ends here, or go on after a comma.
            while let isObject = openObjects.last {
                skipWhitespace()
                switch peek {
                case InputByte.comma:
                    index += 1
                    skipWhitespace()
                    if isObject { try memberName() }
                    continue values
                case UInt8(ascii: "}") where isObject, UInt8(ascii: "]") where !isObject:
                    index += 1
                    openObjects.removeLast()
                default:
                    throw invalid()
                }
            }
            return
        }
    }

    /// `"name" :` inside a skipped object, leaving the cursor at the member's value.
    private mutating func memberName() throws(MalformedRecord) {
        guard peek == InputByte.quote else { throw invalid() }
        _ = try string()
        skipWhitespace()
        try expect(UInt8(ascii: ":"))
        skipWhitespace()
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func number() throws(MalformedRecord) {
        if peek == UInt8(ascii: "-") { index += 1 }
        if peek == UInt8(ascii: "0") {
            index += 1
        } else {
            try digits()
        }
        if peek == UInt8(ascii: ".") {
            index += 1
            try digits()
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            try digits()
        }
    }

    /// One or more decimal digits.
    private mutating func digits() throws(MalformedRecord) {
        guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(peek) else { throw invalid() }
        while (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(peek) { index += 1 }
    }
}
