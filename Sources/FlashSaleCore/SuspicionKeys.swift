/// The keys the suspects report groups attempts by: requesters and exact texts.

/// An IPv4 address, or the first 64 bits of an IPv6 one: a key without an allocation,
/// since every attempt looks one up.
struct AddressKey: Hashable {
    let bits: UInt64
    let isNetwork: Bool

    init(_ address: IPAddress) {
        let address = address.unmapped
        let count = address.bytes.count == 4 ? 4 : 8
        bits = address.bytes.prefix(count).reduce(0) { $0 << 8 | UInt64($1) }
        isNetwork = count == 8
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

    static func == (a: ExactText, b: ExactText) -> Bool {
        a.text.utf8.elementsEqual(b.text.utf8)
    }

    func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
