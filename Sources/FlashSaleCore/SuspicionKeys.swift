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
