/// An IPv4 or IPv6 address in its textual forms (dotted quad; RFC 4291 with `::` and an
/// embedded IPv4 tail). Bot defence needs the bytes; storage keeps the text as given.
/// Parsed in one pass without allocating: every streamed request may carry one.
public struct IPAddress: Hashable, Sendable {
    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    public init?(_ text: String) {
        var text = text
        let parsed = text.withUTF8 { characters -> [UInt8]? in
            if characters.contains(UInt8(ascii: ":")) {
                return IPAddress.parseIPv6(characters)
            }
            return IPAddress.parseIPv4(characters[...]).map { [UInt8($0 >> 24), UInt8($0 >> 16 & 0xFF), UInt8($0 >> 8 & 0xFF), UInt8($0 & 0xFF)] }
        }
        guard let parsed else { return nil }
        bytes = parsed
    }

    /// Whether `text` is an address, found without making one (every request read with an
    /// address is checked).
    public static func isValid(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { characters in
            characters.contains(UInt8(ascii: ":")) ? parseIPv6Groups(characters) != nil : parseIPv4(characters[...]) != nil
        }
    }

    /// Four decimal parts 0–255 without leading zeros (which some tools read as octal).
    static func parseIPv4(_ text: Slice<UnsafeBufferPointer<UInt8>>) -> UInt32? {
        var address: UInt32 = 0
        var parts = 0
        var value: UInt32 = 0
        var digits = 0
        for character in text {
            if character == UInt8(ascii: ".") {
                guard digits > 0, parts < 3 else { return nil }
                address = address << 8 | value
                parts += 1
                value = 0
                digits = 0
                continue
            }
            guard isDigit(character), digits < 3, !(digits == 1 && value == 0) else { return nil }
            value = value * 10 + UInt32(character - UInt8(ascii: "0"))
            digits += 1
            guard value <= 255 else { return nil }
        }
        guard digits > 0, parts == 3 else { return nil }
        return address << 8 | value
    }

    static func parseIPv6(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard let groups = parseIPv6Groups(text) else { return nil }
        var bytes = [UInt8](repeating: 0, count: 16)
        for group in 0..<8 {
            bytes[2 * group] = UInt8(groups[group] >> 8)
            bytes[2 * group + 1] = UInt8(groups[group] & 0xFF)
        }
        return bytes
    }

    /// Colon-separated groups of 1–4 hex digits, at most one `::` standing for one or more
    /// zero groups, and optionally a dotted IPv4 tail counting as two groups.
    static func parseIPv6Groups(_ text: UnsafeBufferPointer<UInt8>) -> EightGroups? {
        let colon = UInt8(ascii: ":")
        var groups = EightGroups()
        var count = 0
        var gap: Int?
        var index = 0
        if text.count >= 2, text[0] == colon, text[1] == colon {
            gap = 0
            index = 2
        }
        while index < text.count {
            let start = index
            var value: UInt16 = 0
            while index < text.count, let digit = hexValue(text[index]), index - start < 5 {
                value = value << 4 | UInt16(digit)
                index += 1
            }
            if index < text.count, text[index] == UInt8(ascii: ".") {
                // An IPv4 tail: the rest of the text, worth two groups.
                guard count <= 6, let v4 = parseIPv4(text[start...]) else { return nil }
                groups[count] = UInt16(v4 >> 16)
                groups[count + 1] = UInt16(v4 & 0xFFFF)
                count += 2
                break
            }
            guard index > start, index - start <= 4, count < 8 else { return nil }
            groups[count] = value
            count += 1
            if index == text.count { break }
            guard text[index] == colon, index + 1 < text.count else { return nil }
            index += 1
            if text[index] == colon {
                guard gap == nil else { return nil }
                gap = count
                index += 1
            }
        }
        if let gap {
            // Move the groups after `::` to the end, zeros in between.
            guard count <= 7 else { return nil }
            let tail = count - gap
            for offset in 0..<tail { groups[7 - offset] = groups[count - 1 - offset] }
            for position in gap..<(8 - tail) { groups[position] = 0 }
        } else {
            guard count == 8 else { return nil }
        }
        return groups
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Eight 16-bit groups on the stack: an array here would be one allocation per address.
struct EightGroups {
    private var storage: (UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16, UInt16) = (0, 0, 0, 0, 0, 0, 0, 0)

    subscript(index: Int) -> UInt16 {
        get { withUnsafeBytes(of: storage) { $0.load(fromByteOffset: index * 2, as: UInt16.self) } }
        set { withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: newValue, toByteOffset: index * 2, as: UInt16.self) } }
    }
}

extension IPAddress {
    /// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is its IPv4 address: a client may
    /// reach a dual-stack server either way, and a block or a limit must not care. So is
    /// one of the NAT64 well-known prefix (`64:ff9b::192.0.2.1`, RFC 6052), as an IPv6-only
    /// server sees IPv4 clients through a NAT64 gateway: counted by its /64, every such
    /// client was one requester for the per-IP limit (found by probing).
    public var unmapped: IPAddress {
        guard bytes.count == 16, bytes[0..<12].elementsEqual(Self.mappedPrefix) || bytes[0..<12].elementsEqual(Self.nat64Prefix) else {
            return self
        }
        return IPAddress(bytes: Array(bytes[12...]))
    }

    /// `::ffff:0:0/96` and `64:ff9b::/96`: the first 12 bytes of IPv6 addresses that embed
    /// an IPv4 address in their last 4.
    static let mappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]
    static let nat64Prefix: [UInt8] = [0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0]

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// An address from its bytes in network order, as a socket address holds them: 4 for
    /// IPv4, 16 for IPv6; nil for any other count.
    public init?(networkOrder bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// What the per-IP limit counts an address's bookings by: its one spelling
    /// (`canonical`) for IPv4; for IPv6, its /64 network's (`2001:0db8:0001:0002::/64`),
    /// which one host may use whole, as the attempt counters and `suspects` count it
    /// (`SuspectKind.network`). Counted by address, one IPv6 host held as many items as
    /// it took addresses (found by probing).
    public var perIPKey: String {
        let text = canonical
        // Dotted for IPv4 (mapped or NAT64 ones too); eight groups of four hex digits else.
        guard text.utf8.contains(UInt8(ascii: ":")) else { return text }
        // Four groups of four hex digits and their three colons.
        return text.prefix(19) + "::/64"
    }

    /// One spelling per address: dotted IPv4 (mapped addresses unmapped), or eight groups
    /// of four lowercase hex digits. Written byte by byte into one string: every hold with
    /// an address counted stores it (`perIPKey`).
    public var canonical: String {
        let bytes = unmapped.bytes
        if bytes.count == 4 {
            return String(unsafeUninitializedCapacity: 15) { out in
                var at = 0
                for (index, byte) in bytes.enumerated() {
                    if index > 0 {
                        out[at] = UInt8(ascii: ".")
                        at += 1
                    }
                    if byte >= 100 {
                        out[at] = UInt8(ascii: "0") + byte / 100
                        at += 1
                    }
                    if byte >= 10 {
                        out[at] = UInt8(ascii: "0") + byte / 10 % 10
                        at += 1
                    }
                    out[at] = UInt8(ascii: "0") + byte % 10
                    at += 1
                }
                return at
            }
        }
        return String(unsafeUninitializedCapacity: 39) { out in
            var at = 0
            for (index, byte) in bytes.enumerated() {
                if index > 0, index % 2 == 0 {
                    out[at] = UInt8(ascii: ":")
                    at += 1
                }
                out[at] = lowercaseHex[Int(byte >> 4)]
                out[at + 1] = lowercaseHex[Int(byte & 0xF)]
                at += 2
            }
            return at
        }
    }
}

private let lowercaseHex = Array("0123456789abcdef".utf8)

/// An address or a CIDR range (`203.0.113.0/24`, `2001:db8:1:2::/64`, `::/0`) that a block
/// covers. Ranges of IPv4-mapped IPv6 addresses (`::ffff:0:0/96` and narrower) are their IPv4
/// ranges, so they match IPv4 clients however those are written.
public struct IPRange: Equatable, Sendable, CustomStringConvertible {
    public let network: IPAddress
    public let prefixLength: Int
    /// Whether the text had bits set past its prefix (`10.1.2.3/16`), which the range drops.
    public let hadHostBits: Bool

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        var length = address.bytes.count * 8
        if parts.count == 2 {
            let digits = parts[1]
            guard (1...3).contains(digits.count), digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
                  let given = Int(digits), given <= length
            else { return nil }
            length = given
        }
        // A mapped range narrower than the mapping prefix is an IPv4 range.
        let given = address.bytes.count == 16 && length >= 96 && address.unmapped.bytes.count == 4 ? address.unmapped : address
        prefixLength = length - (address.bytes.count - given.bytes.count) * 8
        network = given.masked(to: prefixLength)
        hadHostBits = network != given
    }

    /// The range, unless `text`, the way it was typed, had bits set past its prefix
    /// (`10.1.2.3/16`), which is refused as Python's ipaddress and `ip route` refuse it: it
    /// may be a typo of a narrower one, and taken as the wider one it would block, or
    /// trust, too much. `option` names where it was given, if anywhere.
    public func refusingHostBits(typed text: String, option: String? = nil) throws(FlashSaleError) -> IPRange {
        guard hadHostBits else { return self }
        throw .usage("\(option.map { $0 + " " } ?? "")'\(Quoted(text))' has bits set past its prefix: the range is \(self)")
    }

    public static func == (a: IPRange, b: IPRange) -> Bool {
        a.network == b.network && a.prefixLength == b.prefixLength
    }

    public func contains(_ address: IPAddress) -> Bool {
        let candidate = address.unmapped
        guard candidate.bytes.count == network.bytes.count else { return false }
        return candidate.masked(to: prefixLength) == network
    }

    /// `203.0.113.0/24`, `2001:db8:1:2::/64` (RFC 5952); a single address without `/32` or
    /// `/128`. One spelling per range: how a block stores it.
    public var description: String {
        let whole = network.bytes.count * 8
        return network.compressedText + (prefixLength == whole ? "" : "/\(prefixLength)")
    }
}

extension IPAddress {
    /// The address with every bit after the first `length` cleared.
    func masked(to length: Int) -> IPAddress {
        IPAddress(bytes: bytes.enumerated().map { index, byte in
            let keep = max(0, min(8, length - index * 8))
            return keep == 8 ? byte : byte & ~(UInt8(0xFF) >> keep)
        })
    }
}

extension IPAddress {
    /// RFC 5952 text: lowercase hex without leading zeros, the longest run of two or more
    /// zero groups (the first of equals) as `::`; IPv4 as a dotted quad.
    public var compressedText: String {
        // Written as the canonical one is: mapped and joined Strings cost every client
        // address about 2,000 instructions (callgrind).
        guard bytes.count == 16 else { return canonical }
        let groups = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
        var best: Range<Int>?
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else {
                index += 1
                continue
            }
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index >= 2, end - index > (best?.count ?? 0) { best = index..<end }
            index = end
        }
        let text = { (range: Range<Int>) in groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
        guard let best else { return text(0..<8) }
        return text(0..<best.lowerBound) + "::" + text(best.upperBound..<8)
    }
}
