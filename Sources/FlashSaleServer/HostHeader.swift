import FlashSaleCore

/// RFC 9112's `Host` (3.2): `uri-host [":" port]`, from RFC 3986 (3.2.2, 3.2.3). An empty
/// value is one (a target with no authority); a list, a user (`u@h`), a path, a query, a
/// second port or a port past 65535 is not. A server that serves under any name still
/// refuses what no client could mean as one.
enum HostHeader {
    /// Read as bytes, every request's: found by Characters, its `:` and brackets ran
    /// grapheme breaking over the value, about 2% of a decline's instructions (callgrind).
    static func isHostAndPort(_ value: String) -> Bool {
        var host = Substring(value)
        var port: Substring?
        if host.utf8.first == UInt8(ascii: "[") {
            // An IP-literal: an IPv6 address in brackets.
            guard let close = host.utf8.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let address = host[host.utf8.index(after: host.startIndex)..<close]
            guard address.utf8.contains(UInt8(ascii: ":")), IPAddress.isValid(String(address)) else { return false }
            let rest = host[host.utf8.index(after: close)...]
            guard rest.isEmpty || rest.utf8.first == UInt8(ascii: ":") else { return false }
            port = rest.isEmpty ? nil : rest.dropFirst()
        } else {
            if let colon = host.utf8.firstIndex(of: UInt8(ascii: ":")) {
                port = host[host.utf8.index(after: colon)...]
                host = host[..<colon]
            }
            // A reg-name, which an IPv4 address is too; its %-escapes whole.
            guard host.utf8.allSatisfy(isRegisteredNameByte),
                  !host.utf8.contains(UInt8(ascii: "%")) || host.percentDecoded != nil else { return false }
        }
        return port.map(isPort) ?? true
    }

    /// Unreserved characters, `%` and sub-delims, but for `,`, which would make the value
    /// a list. Asked of every byte of every request's `Host`: no array made per byte.
    private static func isRegisteredNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"),
             UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ";"), UInt8(ascii: "="):
            true
        default:
            false
        }
    }

    /// RFC 3986's port is any digits, none included; a TCP port is at most 65535.
    private static func isPort(_ digits: Substring) -> Bool {
        digits.utf8.count <= 5 && digits.utf8.allSatisfy(isDigit) && (digits.isEmpty || Int(digits)! <= 65_535)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
}
