import Testing
@testable import FlashSaleServer

/// `Host` as RFC 9112 has it, checked without a server (HTTP1RulesTests sends the refused
/// ones to one).
struct HostHeaderTests {
    @Test(arguments: ["", "x", "shop.example.com", "127.0.0.1:8080", "[::1]:8080", "[2001:db8::7]", "a%41b", "a:",
                      "xn--bcher-kva.example", "a_b-c~d"])
    func aHostAndPortIsOne(value: String) {
        #expect(HostHeader.isHostAndPort(value))
    }

    @Test(arguments: ["a b", "a, b", "u@a", "a/b", "a?b", "a#b", "a:80:90", "a:99999", "a:8o", "[zz]:80", "[::1", "[::1]x",
                      "a%4", "a%zz", "h\u{e9}te"])
    func anythingElseIsNot(value: String) {
        #expect(!HostHeader.isHostAndPort(value))
    }

    /// Each ASCII byte in a name: RFC 3986's unreserved characters, sub-delims and `%`
    /// (here before two hex digits), but for `,`.
    @Test func aNameTakesExactlyTheBytesOfARegisteredName() {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+;=".utf8)
        for byte in UInt8(1)..<0x80 {
            let name = "a" + String(UnicodeScalar(byte)) + (byte == UInt8(ascii: "%") ? "41" : "")
            // `:` starts a port, and "a:" is a name with an empty one.
            guard byte != UInt8(ascii: ":") else { continue }
            #expect(HostHeader.isHostAndPort(name) == allowed.contains(byte), "\(byte)")
        }
    }
}
