import Testing
import FlashSaleCore
@testable import FlashSaleServer
import FlashSaleTestSupport
import NIOCore

/// The buyer's address (http.md, `--trusted-proxy`): the peer's, unless the peer is a
/// trusted proxy; then the rightmost `X-Forwarded-For` hop that is not itself trusted.
/// Seen in the booking's `ip`, and by blocks.
@Suite struct ClientAddressTests {
    /// The peer's address is read from its socket address's bytes, IPv4 and IPv6 alike.
    @Test func aPeerAddressIsReadFromItsSocketAddressBytes() throws {
        #expect(IPAddress(peer: try SocketAddress(ipAddress: "203.0.113.7", port: 1))?.compressedText == "203.0.113.7")
        #expect(IPAddress(peer: try SocketAddress(ipAddress: "2001:db8::1", port: 1))?.compressedText == "2001:db8::1")
        #expect(IPAddress(peer: try SocketAddress(ipAddress: "::ffff:203.0.113.7", port: 1))?.unmapped.compressedText
                    == "203.0.113.7")
        #expect(IPAddress(peer: try SocketAddress(unixDomainSocketPath: "/tmp/flashsale-peer")) == nil)
    }

    static func address(_ served: ServedDatabase, user: String, forwardedFor: [String]) async throws -> String? {
        let answer = try await served.send(.POST, "/booking-service/book-item/s1", user: user,
                                           headers: forwardedFor.map { ("X-Forwarded-For", $0) })
        #expect(answer.status == 201, "\(forwardedFor): \(answer.body)")
        return answer[field: "ip"]
    }

    @Test func withoutTrustedProxiesXForwardedForIsIgnored() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 10)
        try served.start()
        #expect(try await Self.address(served, user: "u1", forwardedFor: ["203.0.113.9"]) == "127.0.0.1")
        #expect(try await Self.address(served, user: "u2", forwardedFor: []) == "127.0.0.1")
    }

    /// Found by probing: `127.0.0.9/24` trusted all of 127.0.0.0/24, so that a peer that is
    /// no proxy could name any client address; refused as `block ip` refuses it.
    @Test func aTrustedProxyRangeWithBitsPastItsPrefixIsRefused() throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 1)
        #expect(throws: Failed.self) { try served.start(ServedDatabase.headerAuth + ["--trusted-proxy", "127.0.0.9/24"]) }
        #expect(served.server?.wait() == .exit(2))
        #expect(served.log == "flashsale: --trusted-proxy '127.0.0.9/24' has bits set past its prefix: the range is 127.0.0.0/24\n")
    }

    @Test func behindATrustedProxyTheClientIsTheRightmostUntrustedHop() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 20)
        try #require(served.flashsale(["block", "ip", "203.0.113.66"]).status == .exit(0))
        try served.start(ServedDatabase.headerAuth + ["--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.0/8"])
        let cases: [([String], String)] = [
            (["203.0.113.9"], "203.0.113.9"),
            (["198.51.100.1, 203.0.113.9"], "203.0.113.9"),
            (["203.0.113.9, 10.1.2.3"], "203.0.113.9"),
            (["203.0.113.9,10.1.2.3 , 127.0.0.1"], "203.0.113.9"),
            (["198.51.100.1", "203.0.113.9"], "203.0.113.9"),
            (["2001:db8::1"], "2001:db8::1"),
            (["::ffff:203.0.113.10"], "203.0.113.10"),
            (["10.0.0.1, 10.0.0.2"], "10.0.0.1"),
            (["203.0.113.9, not-an-address"], "127.0.0.1"),
            ([], "127.0.0.1"),
            // Found by probing: a hop with a port, hops parted by spaces, and an element of
            // spaces were each taken for no address, so that the client was the proxy.
            (["198.51.100.7:51231"], "198.51.100.7"),
            (["[2001:db8::2]:443"], "2001:db8::2"),
            (["[2001:db8::3]"], "2001:db8::3"),
            (["198.51.100.1 203.0.113.9"], "203.0.113.9"),
            (["203.0.113.9, ,10.0.0.1"], "203.0.113.9"),
            (["203.0.113.9,\t,10.0.0.1"], "203.0.113.9"),
            (["203.0.113.9,,10.0.0.1"], "203.0.113.9"),
            (["2001:db8::1:80"], "2001:db8::1:80"),
            (["198.51.100.1:123456", "203.0.113.9:80x"], "127.0.0.1"),
        ]
        for (index, (forwardedFor, expected)) in cases.enumerated() {
            #expect(try await Self.address(served, user: "u\(index)", forwardedFor: forwardedFor) == expected, "\(forwardedFor)")
        }
        // Blocks see the client's address, not the proxy's.
        let blocked = try await served.send(.POST, "/booking-service/book-item/s1", user: "mallory",
                                            headers: [("X-Forwarded-For", "203.0.113.66, 10.0.0.5")])
        #expect(blocked.status == 403, "\(blocked.body)")
        #expect(blocked.errorCode == "blocked")
    }

    /// Found by probing: a booking sent whole, its connection reset at once, has no peer
    /// address when the reset came before serve accepted the connection; such a peer was
    /// taken for a trusted proxy, and its X-Forwarded-For named the client.
    @Test func aPeerWithNoAddressIsNoTrustedProxy() {
        let addresses = ClientAddress(trustedProxies: [])
        #expect(addresses.address(peer: nil, headers: [ClientAddress.forwardedFor: "198.51.100.7"]) == nil)
    }

    /// The access log names the client as blocks and the per-IP limit see it, reads as well
    /// as changes, and, under a key of its own, the peer (here the proxy) for a request that
    /// could not be read (an operator reading the journal had no address to block; found by
    /// probing).
    @Test func theAccessLogNamesTheClient() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        try served.start(ServedDatabase.headerAuth + ["--trusted-proxy", "127.0.0.1"])
        let booked = try await served.send(.POST, "/booking-service/book-item/s1", user: "alice",
                                           headers: [("X-Forwarded-For", "203.0.113.9")])
        #expect(booked.status == 201, "\(booked.body)")
        let read = try await served.send(.GET, "/booking-service/book-item/s1", user: "alice",
                                         headers: [("X-Forwarded-For", "2001:db8::7")])
        #expect(read.status == 200, "\(read.body)")
        let malformed = try await RawConnection.open(port: served.port, sending: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        #expect(await malformed.closed(within: .seconds(5)))
        let lines = try await served.logged(3) { $0["request_id"] != nil }
        let origins = lines.map { "\($0["route"] ?? "") \($0["client"] ?? "-") \($0["peer"] ?? "-")" }
        #expect(Set(origins) == ["book 203.0.113.9 -", "bookings 2001:db8::7 -", "none - 127.0.0.1"], "\(served.log)")
    }
}
