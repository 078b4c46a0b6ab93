import FlashSaleCore
import HTTPTypes
import NIOCore

/// The buyer's address, as `--ip` is on the command line (http.md, `--trusted-proxy`): the
/// peer's, unless the peer is a trusted proxy; then the rightmost address of
/// `X-Forwarded-For` that is not itself trusted, as nginx's `real_ip_recursive` takes it.
/// A peer on the Unix socket is a local gateway, trusted as a proxy is.
struct ClientAddress: Sendable {
    let trustedProxies: [IPRange]

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    /// nil when nothing names an address (a Unix socket peer without `X-Forwarded-For`).
    func address(peer: SocketAddress?, headers: HTTPFields) -> String? {
        let peerAddress = peer.flatMap(IPAddress.init(peer:))
        // No peer at all (a connection reset before it was accepted, whose address the
        // kernel no longer has) is no proxy: its X-Forwarded-For was believed (found by
        // probing). A Unix socket's peer, which has no IP address, is the local gateway.
        let peerIsTrusted = peer == nil ? false : peerAddress.map(isTrusted) ?? true
        guard peerIsTrusted else { return peerAddress?.unmapped.compressedText }
        // Every X-Forwarded-For line, in order, is one list, its hops parted by commas or
        // spaces, as nginx parts them; an empty element (`a, , b`) is none (RFC 9110, 5.6.1).
        let hops = headers[values: ClientAddress.forwardedFor].flatMap {
            $0.utf8.split(whereSeparator: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") })
        }
        var client = peerAddress
        for hop in hops.reversed() {
            // A hop that is not an address cannot be followed further: the last one that was is the client.
            guard let address = Self.address(hop: Substring(hop)) else { break }
            client = address
            if !isTrusted(address) { break }
        }
        return client?.unmapped.compressedText
    }

    /// A hop's address, with a port or not, as nginx reads one (`ngx_parse_addr_port`):
    /// `203.0.113.5:1234` and `[2001:db8::1]:443` are appended by some proxies (Azure's
    /// Application Gateway), and read as no address they left every buyer behind the proxy
    /// with its address, one address for the per-IP limit (found by probing).
    static func address(hop: Substring) -> IPAddress? {
        if let address = IPAddress(String(hop)) { return address }
        func isPort(_ digits: Substring) -> Bool {
            (1...5).contains(digits.utf8.count) && digits.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        }
        if hop.hasPrefix("["), let close = hop.firstIndex(of: "]") {
            let after = hop[hop.index(after: close)...]
            guard after.isEmpty || (after.first == ":" && isPort(after.dropFirst())) else { return nil }
            return IPAddress(String(hop[hop.index(after: hop.startIndex)..<close]))
        }
        // One colon: IPv4 and a port (IPv6 without brackets has more, and parsed above).
        guard let colon = hop.firstIndex(of: ":"), isPort(hop[hop.index(after: colon)...]) else { return nil }
        return IPAddress(String(hop[..<colon])).flatMap { $0.bytes.count == 4 ? $0 : nil }
    }

    /// The peer's own address, for a request whose headers could not be read.
    static func peer(_ peer: SocketAddress?) -> String? {
        peer.flatMap(IPAddress.init(peer:))?.unmapped.compressedText
    }

    private func isTrusted(_ address: IPAddress) -> Bool {
        trustedProxies.contains { $0.contains(address) }
    }
}

extension Substring {
    /// Without the spaces and tabs HTTP allows around list items and parameters. Byte by
    /// byte: every request's headers go through here, and comparing Characters would run
    /// grapheme breaking over each of them.
    func trimmingSpaces() -> String {
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = utf8.firstIndex(where: { !isSpace($0) }), let last = utf8.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(Substring(utf8[first...last]))
    }
}

extension IPAddress {
    /// The peer's address from its socket address's bytes: NIO's `ipAddress` writes them
    /// as text, which would then be parsed again, on every request (about 3,000
    /// instructions, callgrind). nil for a Unix socket's peer.
    init?(peer: SocketAddress) {
        switch peer {
        case .v4(let address):
            self.init(networkOrder: withUnsafeBytes(of: address.address.sin_addr) { Array($0) })
        case .v6(let address):
            self.init(networkOrder: withUnsafeBytes(of: address.address.sin6_addr) { Array($0) })
        case .unixDomainSocket:
            return nil
        }
    }
}
