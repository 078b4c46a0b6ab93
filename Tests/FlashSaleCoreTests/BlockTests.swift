import Testing
@testable import FlashSaleCore

@Suite struct IPRangeTests {
    func contains(_ range: String, _ address: String) -> Bool {
        guard let range = IPRange(range), let address = IPAddress(address) else { return false }
        return range.contains(address)
    }

    @Test func zeroPrefixMatchesEveryAddressOfItsFamily() {
        #expect(contains("0.0.0.0/0", "203.0.113.7"))
        #expect(contains("0.0.0.0/0", "::ffff:203.0.113.7"))
        #expect(contains("::/0", "2001:db8::1"))
        #expect(!contains("::/0", "203.0.113.7"))
    }

    @Test func fullPrefixesMatchOneAddress() {
        #expect(contains("203.0.113.7/32", "203.0.113.7"))
        #expect(!contains("203.0.113.7/32", "203.0.113.8"))
        #expect(contains("2001:db8::1/128", "2001:DB8:0:0::1"))
        #expect(!contains("2001:db8::1/128", "2001:db8::2"))
        #expect(contains("203.0.113.7", "203.0.113.7"))
    }

    @Test func rangeEdges() {
        #expect(contains("203.0.113.0/24", "203.0.113.0"))
        #expect(contains("203.0.113.0/24", "203.0.113.255"))
        #expect(!contains("203.0.113.0/24", "203.0.114.0"))
        #expect(contains("10.0.0.0/9", "10.127.255.255"))
        #expect(!contains("10.0.0.0/9", "10.128.0.0"))
        #expect(contains("2001:db8:1:2::/64", "2001:db8:1:2:ffff:ffff:ffff:ffff"))
        #expect(!contains("2001:db8:1:2::/64", "2001:db8:1:3::"))
    }

    @Test func mappedAddressesMatchTheirIPv4Blocks() {
        #expect(contains("203.0.113.0/24", "::ffff:203.0.113.9"))
        #expect(contains("::ffff:203.0.113.0/120", "203.0.113.9"))
        #expect(contains("::ffff:203.0.113.9", "203.0.113.9"))
        #expect(!contains("::ffff:203.0.113.0/120", "203.0.114.9"))
    }

    @Test(arguments: ["1.2.3.4/33", "::/129", "1.2.3.4/", "1.2.3.4/-1", "1.2.3.4/ 8", "/8", "1.2.3/8", "1.2.3.4/8/8"])
    func refusesMalformedRanges(text: String) {
        #expect(IPRange(text) == nil)
    }

    @Test func theNetworkIsMaskedAndPrintedInRFC5952() {
        #expect(IPRange("203.0.113.77/24")?.description == "203.0.113.0/24")
        #expect(IPRange("2001:DB8::1/32")?.description == "2001:db8::/32")
        #expect(IPRange("2001:0db8:0:0::1/128")?.description == "2001:db8::1")
        #expect(IPRange("::ffff:10.1.0.0/112")?.description == "10.1.0.0/16")
        #expect(IPRange("203.0.113.77/24")?.hadHostBits == true)
        #expect(IPRange("203.0.113.0/24")?.hadHostBits == false)
        #expect(IPRange("::ffff:10.1.2.3/112")?.hadHostBits == true)
    }

    @Test func canonicalSpellingIsOnePerAddress() {
        #expect(IPAddress("2001:DB8:0::1")?.canonical == IPAddress("2001:db8::1")?.canonical)
        #expect(IPAddress("::ffff:192.0.2.1")?.canonical == "192.0.2.1")
    }

    /// Stored in every booking since version 3 and compared by the per-IP limit: the
    /// spelling may never change.
    @Test(arguments: [("0.0.0.0", "0.0.0.0"), ("10.7.161.32", "10.7.161.32"), ("255.255.255.255", "255.255.255.255"),
                      ("::", "0000:0000:0000:0000:0000:0000:0000:0000"), ("2001:DB8::F:a0", "2001:0db8:0000:0000:0000:0000:000f:00a0"),
                      ("fe80::1:2:3:4", "fe80:0000:0000:0000:0001:0002:0003:0004"), ("::ffff:10.0.0.9", "10.0.0.9"),
                      ("::10.0.0.9", "0000:0000:0000:0000:0000:0000:0a00:0009"),
                      ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")])
    func canonicalSpellingIsFixed(address: String, canonical: String) {
        #expect(IPAddress(address)?.canonical == canonical)
    }
}

/// What the per-IP limit counts an address by (`IPAddress.perIPKey`) and what the attempt
/// counters and `suspects` count it by (`AttemptCounter.requester`) are one requester.
@Suite struct RequesterTests {
    @Test(arguments: [
        ("203.0.113.7", "203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7", "203.0.113.7"),
        // NAT64's well-known prefix: an IPv4 client of an IPv6-only server (found by probing:
        // counted by its /64, every such client was one requester).
        ("64:ff9b::203.0.113.7", "203.0.113.7", "203.0.113.7"),
        ("64:FF9B::CB00:7107", "203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::7", "2001:0db8:0001:0002::/64", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:0db8:0001:0002::/64", "2001:db8:1:2::/64"),
        ("64:ff9b:1::203.0.113.7", "0064:ff9b:0001:0000::/64", "64:ff9b:1::/64"),
    ])
    func anAddressIsOneRequesterForTheLimitAndTheCounters(address: String, key: String, requester: String) throws {
        let parsed = try #require(IPAddress(address))
        #expect(parsed.perIPKey == key)
        let counted = try #require(AttemptCounter.requester(of: address))
        #expect(counted.value == requester)
        #expect((counted.kind == .network) == key.hasSuffix("::/64"))
    }

    @Test func aNAT64AddressMatchesItsIPv4Block() throws {
        #expect(try #require(IPRange("203.0.113.0/24")).contains(try #require(IPAddress("64:ff9b::203.0.113.9"))))
    }
}

@Suite struct BlockMatchingTests {
    func request(user: String = "u", ip: String? = nil, agent: String? = nil) -> BookingRequest {
        BookingRequest(sale: SaleID(trusted: "s1"), user: UserID(trusted: user), ip: ip, userAgent: agent, key: nil)
    }

    func block(_ kind: BlockKind, _ value: String, contains: Bool = false) throws -> Block {
        try Block(kind: kind, value: value, contains: contains, sale: nil, reason: nil, createdAt: T)
    }

    @Test func userBlocksCompareBytes() throws {
        #expect(try block(.user, "caf\u{E9}").matches(request(user: "caf\u{E9}")))
        #expect(try !block(.user, "caf\u{E9}").matches(request(user: "cafe\u{301}")))
    }

    @Test func agentBlocksMatchTheWholeTextOrASubstring() throws {
        #expect(try block(.agent, "curl/8.0").matches(request(agent: "curl/8.0")))
        #expect(try !block(.agent, "curl").matches(request(agent: "curl/8.0")))
        #expect(try block(.agent, "curl", contains: true).matches(request(agent: "curl/8.0")))
        #expect(try !block(.agent, "curl", contains: true).matches(request()))
    }

    @Test func ipBlocksMatchRangesAndIgnoreRequestsWithoutAnAddress() throws {
        #expect(try block(.ip, "203.0.113.0/24").matches(request(ip: "::ffff:203.0.113.1")))
        #expect(try !block(.ip, "203.0.113.0/24").matches(request()))
    }

    @Test func malformedBlocksAreUsageErrors() {
        #expect(throws: FlashSaleError.self) { try block(.ip, "not-an-ip") }
        #expect(throws: SaleError.substringBlockOfNoAgent) { try block(.user, "x", contains: true) }
        #expect(throws: FlashSaleError.self) { try block(.user, "") }
    }
}
