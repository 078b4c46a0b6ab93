/// The keys the suspects report groups attempts by: requesters and exact texts.

/// An IPv4 address, or the first 64 bits of an IPv6 one: a key without an allocation,
/// since every attempt looks one up.
struct AddressKey: Hashable {
    let bits: UInt64
    let isNetwork: Bool

    /// The key of an address's text, or nil for text that is not an address: parsed
    /// without `IPAddress`'s byte array, since every attempt counted looks one up.
    init?(text: String) {
        var text = text
        guard let key = text.withUTF8({ characters -> AddressKey? in
            guard characters.contains(UInt8(ascii: ":")) else {
                return IPAddress.parseIPv4(characters[...]).map { AddressKey(bits: UInt64($0), isNetwork: false) }
            }
            guard let groups = IPAddress.parseIPv6Groups(characters) else { return nil }
            // An IPv4-mapped address (::ffff:a.b.c.d), or a NAT64 one (64:ff9b::a.b.c.d), is
            // its IPv4 address, as `unmapped` says.
            let mapped = (0..<5).allSatisfy { groups[$0] == 0 } && groups[5] == 0xFFFF
            let nat64 = groups[0] == 0x64 && groups[1] == 0xFF9B && (2..<6).allSatisfy { groups[$0] == 0 }
            if mapped || nat64 {
                return AddressKey(bits: UInt64(groups[6]) << 16 | UInt64(groups[7]), isNetwork: false)
            }
            return AddressKey(bits: (0..<4).reduce(0) { $0 << 16 | UInt64(groups[$1]) }, isNetwork: true)
        }) else { return nil }
        self = key
    }

    private init(bits: UInt64, isNetwork: Bool) {
        self.bits = bits
        self.isNetwork = isNetwork
    }

    var kind: SuspectKind { isNetwork ? .network : .ip }

    /// `203.0.113.7`, or `2001:db8:1:2::/64` (RFC 5952), as `block ip` takes them.
    var text: String {
        let count = isNetwork ? 8 : 4
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: bits >> (8 * UInt64(count - 1 - $0))) }
        guard isNetwork else { return bytes.map(String.init).joined(separator: ".") }
        return IPAddress(bytes: bytes + [UInt8](repeating: 0, count: 8)).compressedText + "/64"
    }
}

/// Text compared and hashed byte for byte, as the contract compares users and agents:
/// `String`'s own == would take two spellings of `é` for one user.
struct ExactText: Hashable {
    let text: String

    init(_ text: String) {
        self.text = text
    }

    /// Eight bytes at a time: the generic `elementsEqual` of two UTF-8 views took 24
    /// instructions a byte, and every attempt counted compares its agent text.
    static func == (a: ExactText, b: ExactText) -> Bool {
        let (a, b) = (a.text.utf8, b.text.utf8)
        guard a.count == b.count else { return false }
        let equal = a.withContiguousStorageIfAvailable { a in
            b.withContiguousStorageIfAvailable { b in bytesEqual(UnsafeRawBufferPointer(a), UnsafeRawBufferPointer(b)) }
        }
        return (equal ?? nil) ?? a.elementsEqual(b)
    }

    private static func bytesEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset + 8 <= a.count {
            guard a.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                == b.loadUnaligned(fromByteOffset: offset, as: UInt64.self) else { return false }
            offset += 8
        }
        while offset < a.count {
            guard a[offset] == b[offset] else { return false }
            offset += 1
        }
        return true
    }

    /// A text of up to 16 bytes (most users) as two words: `combine(bytes:)` costs three
    /// times that for so few.
    func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { bytes in
            guard bytes.count <= 16 else {
                hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
                return
            }
            var words: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(bytes)) }
            hasher.combine(words.0)
            hasher.combine(words.1)
            hasher.combine(UInt8(bytes.count))
        }
    }
}
