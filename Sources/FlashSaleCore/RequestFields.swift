/// Why a record cannot be read; `reason` is what the operator sees.
struct MalformedRecord: Error {
    let reason: String

    init(_ reason: String) {
        self.reason = reason
    }
}

/// The four values a request carries, named as in both input formats.
enum RequestField: CaseIterable {
    case user, ip, userAgent, key

    /// The NDJSON key and CSV column name.
    var name: String {
        switch self {
        case .user: "user"
        case .ip: "ip"
        case .userAgent: "user_agent"
        case .key: "key"
        }
    }

    var bit: UInt8 {
        switch self {
        case .user: 1
        case .ip: 2
        case .userAgent: 4
        case .key: 8
        }
    }

    /// Matched on raw bytes: this runs for every key of every line, and comparing against
    /// `String.utf8` there cost a tenth of the reading time.
    init?(name bytes: UnsafeBufferPointer<UInt8>) {
        let candidate: (RequestField, StaticString)
        switch bytes.count {
        case 2: candidate = (.ip, "ip")
        case 3: candidate = (.key, "key")
        case 4: candidate = (.user, "user")
        case 10: candidate = (.userAgent, "user_agent")
        default: return nil
        }
        let name = UnsafeBufferPointer(start: candidate.1.utf8Start, count: candidate.1.utf8CodeUnitCount)
        for index in 0..<bytes.count where bytes[index] != name[index] {
            return nil
        }
        self = candidate.0
    }
}

/// A name that is not one a reader takes but is one written otherwise, in capitals or with
/// `-`, a space or nothing for `_` (`Key`, `User-Agent`, `useragent`): `meant` says which,
/// so that the reader refuses it rather than ignore it as an unknown name and drop its
/// values unseen (found by probing: `user,Key` lost every key of a file, which ran again
/// queued twice). Only called for names that are not read, so it costs a record nothing.
enum FieldNameSpelling {
    static func meant(by name: some Collection<UInt8>, among names: some Sequence<String>) -> String? {
        let written = folded(name)
        return names.first { folded($0.utf8) == written }
    }

    /// ASCII letters in lower case, without `_`, `-` and spaces.
    private static func folded(_ name: some Collection<UInt8>) -> [UInt8] {
        name.compactMap { byte in
            switch byte {
            case UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: " "): nil
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte + 32
            default: byte
            }
        }
    }
}

/// The raw values of one record, before `TextField` checks them. Empty means absent.
struct RequestFields {
    var user: String?
    var ip: String?
    var userAgent: String?
    var key: String?

    subscript(field: RequestField) -> String? {
        get {
            switch field {
            case .user: user
            case .ip: ip
            case .userAgent: userAgent
            case .key: key
            }
        }
        set {
            switch field {
            case .user: user = newValue
            case .ip: ip = newValue
            case .userAgent: userAgent = newValue
            case .key: key = newValue
            }
        }
    }

    func outcome(line: Int) -> ReadOutcome {
        guard let user else { return .malformed(line: line, reason: "user is missing") }
        do throws(FlashSaleError) {
            guard let user = try TextField.user.validate(user, required: true) else {
                return .malformed(line: line, reason: "user is missing")
            }
            return .record(RequestRecord(
                line: line,
                user: user,
                ip: try TextField.ip.validate(ip ?? "", required: false),
                userAgent: try TextField.userAgent.validate(userAgent ?? "", required: false),
                key: try TextField.key.validate(key ?? "", required: false)))
        } catch {
            return .malformed(line: line, reason: error.message)
        }
    }
}

enum InputByte {
    static let tab = UInt8(ascii: "\t")
    static let lf = UInt8(ascii: "\n")
    static let cr = UInt8(ascii: "\r")
    static let space = UInt8(ascii: " ")
    static let quote = UInt8(ascii: "\"")
    static let comma = UInt8(ascii: ",")
    static let backslash = UInt8(ascii: "\\")
    static let leftBrace = UInt8(ascii: "{")
}

/// Whole-record checks of the contract's text rule, done once before parsing so that bytes in
/// ignored keys and columns are held to it too.
enum TextCheck {
    /// Why these bytes are not text (the first NUL or invalid UTF-8 sequence), or nil.
    static func problem(in bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let count = bytes.count
        guard let base = bytes.baseAddress else { return nil }
        var index = 0
        while index < count {
            // Eight ASCII bytes at a time, the usual case: no high bit set and no zero byte.
            if index + 8 <= count {
                let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
                let high: UInt64 = 0x8080_8080_8080_8080
                let zeroBytes = (word &- 0x0101_0101_0101_0101) & ~word & high
                if word & high == 0, zeroBytes == 0 {
                    index += 8
                    continue
                }
            }
            let lead = base[index]
            if lead == 0 { return "contains a NUL byte" }
            if lead < 0x80 {
                index += 1
                continue
            }
            // Second-byte ranges exclude overlong forms, UTF-16 surrogates and code points past U+10FFFF.
            let length: Int
            var secondLow: UInt8 = 0x80
            var secondHigh: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; secondLow = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; secondHigh = 0x9F
            case 0xF0: length = 4; secondLow = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; secondHigh = 0x8F
            default: return invalidUTF8
            }
            guard index + length <= count, (secondLow...secondHigh).contains(base[index + 1]) else { return invalidUTF8 }
            for offset in 2..<length where base[index + offset] & 0xC0 != 0x80 {
                return invalidUTF8
            }
            index += length
        }
        return nil
    }

    static let invalidUTF8 = "not valid UTF-8"
}

extension InputByte {
    /// The first `target` at or after `start`. Eight bytes at a time: finding line ends is
    /// most of the work of reading NDJSON.
    static func firstIndex(of target: UInt8, in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let pattern = UInt64(target) &* ones
        var index = start
        while index + 8 <= bytes.count {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)) ^ pattern
            // Flags each zero byte (a match); the lowest flag is exact, so the first match is found.
            let matches = (word &- ones) & ~word & (ones << 7)
            if matches != 0 { return index + matches.trailingZeroBitCount / 8 }
            index += 8
        }
        while index < bytes.count {
            if base[index] == target { return index }
            index += 1
        }
        return nil
    }

    /// How many `target`s there are at or after `start`.
    static func count(of target: UInt8, in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var count = 0
        var index = start
        while let found = firstIndex(of: target, in: bytes, from: index) {
            count += 1
            index = found + 1
        }
        return count
    }
}
