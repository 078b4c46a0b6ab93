import Glibc

/// RFC 9112's `Host` (3.2): `uri-host [":" port]`, from RFC 3986 (3.2.2, 3.2.3). An empty
/// value is one (a target with no authority); a list, a user (`u@h`), a path, a query, a
/// second port or a port past 65535 is not. A server that serves under any name still
/// refuses what no client could mean as one.
enum HostHeader {
    static func isHostAndPort(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        var hostEnd = bytes.endIndex
        if bytes.first == UInt8(ascii: "[") {
            // An IP-literal: an IPv6 address in brackets.
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")),
                  isIPv6(bytes[1..<close]) else { return false }
            hostEnd = close + 1
            guard hostEnd == bytes.endIndex || bytes[hostEnd] == UInt8(ascii: ":") else { return false }
        } else {
            hostEnd = bytes.firstIndex(of: UInt8(ascii: ":")) ?? bytes.endIndex
            guard isRegisteredName(bytes[..<hostEnd]) else { return false }
        }
        guard hostEnd < bytes.endIndex else { return true }
        let port = bytes[(hostEnd + 1)...]
        return port.count <= 5 && port.allSatisfy(isDigit) && (port.isEmpty || Int(String(decoding: port, as: UTF8.self))! <= 65_535)
    }

    /// A reg-name, which an IPv4 address is too: unreserved characters, %-escapes and
    /// sub-delims, but for `,`, which would make the value a list.
    private static func isRegisteredName(_ bytes: ArraySlice<UInt8>) -> Bool {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.endIndex, isHexDigit(bytes[index + 1]), isHexDigit(bytes[index + 2]) else { return false }
                index += 3
                continue
            }
            guard isUnreserved(byte) || Array("!$&'()*+;=".utf8).contains(byte) else { return false }
            index += 1
        }
        return true
    }

    private static func isIPv6(_ bytes: ArraySlice<UInt8>) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, String(decoding: bytes, as: UTF8.self), &address) == 1
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || Array("-._~".utf8).contains(byte)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
    }
}
