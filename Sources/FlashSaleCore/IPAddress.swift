/// An IPv4 or IPv6 address in its textual forms (dotted quad; RFC 4291 with `::` and an
/// embedded IPv4 tail). Bot defence needs the bytes; storage keeps the text as given.
public struct IPAddress: Hashable, Sendable {
    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    public init?(_ text: String) {
        let characters = Array(text.utf8)
        if characters.contains(UInt8(ascii: ":")) {
            guard let bytes = IPAddress.parseIPv6(characters) else { return nil }
            self.bytes = bytes
        } else {
            guard let bytes = IPAddress.parseIPv4(characters[...]) else { return nil }
            self.bytes = bytes
        }
    }

    /// Four decimal parts 0–255 without leading zeros (which some tools read as octal).
    static func parseIPv4(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        let parts = text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.first != UInt8(ascii: "0") || part.count == 1,
                  let value = number(part), value <= 255
            else { return nil }
            bytes.append(UInt8(value))
        }
        return bytes
    }

    static func parseIPv6(_ text: [UInt8]) -> [UInt8]? {
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        let halves = split(text, on: Array("::".utf8))
        guard halves.count <= 2 else { return nil }
        sawGap = halves.count == 2
        guard let first = groups(halves[0], allowIPv4Tail: !sawGap) else { return nil }
        head = first
        if sawGap {
            guard let second = groups(halves[1], allowIPv4Tail: true) else { return nil }
            tail = second
        }
        let missing = 8 - head.count - tail.count
        guard sawGap ? missing >= 1 : missing == 0 else { return nil }
        let all = head + Array(repeating: 0, count: sawGap ? missing : 0) + tail
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// Colon-separated hex groups of 1–4 digits; an IPv4 tail counts as two groups.
    private static func groups(_ text: ArraySlice<UInt8>, allowIPv4Tail: Bool) -> [UInt16]? {
        guard !text.isEmpty else { return [] }
        let parts = text.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        var result: [UInt16] = []
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1, allowIPv4Tail, part.contains(UInt8(ascii: ".")) {
                guard let v4 = parseIPv4(part) else { return nil }
                result.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                result.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                continue
            }
            guard (1...4).contains(part.count) else { return nil }
            var value: UInt16 = 0
            for character in part {
                guard let digit = hexValue(character) else { return nil }
                value = value << 4 | UInt16(digit)
            }
            result.append(value)
        }
        return result
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func split(_ text: [UInt8], on separator: [UInt8]) -> [ArraySlice<UInt8>] {
        var pieces: [ArraySlice<UInt8>] = []
        var start = 0
        var index = 0
        while index + separator.count <= text.count {
            if Array(text[index..<(index + separator.count)]) == separator {
                pieces.append(text[start..<index])
                index += separator.count
                start = index
            } else {
                index += 1
            }
        }
        pieces.append(text[start...])
        return pieces
    }
}
