import Testing
@testable import FlashSaleCore

/// One booking attempt, as a test writes it.
private struct Attempt {
    let at: Instant
    let user: String
    let ip: String?
    let agent: String?
    let declined: Bool

    /// What the store reads of it: counted when it was made, its user, its agent's kind.
    var observation: Observation {
        let script = agent.flatMap(SuspicionTally.scriptName(of:))
        return Observation(at: at, attempts: 1, declines: declined ? 1 : 0, scripted: script == nil ? 0 : 1,
                           withoutAgent: (agent ?? "").isEmpty ? 1 : 0, script: script, user: user)
    }
}

/// One attempt at `second` seconds (plus `milliseconds`) after a fixed start.
private func attempt(_ user: String, ip: String? = nil, agent: String? = nil, at second: Int64 = 0,
                     milliseconds: Int64 = 0, declined: Bool = false) -> Attempt {
    Attempt(at: Instant(milliseconds: 1_795_000_000_000 + second * 1000 + milliseconds), user: user, ip: ip,
            agent: agent, declined: declined)
}

private let browser = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"

/// The three passes, as the store makes them: by requester, by script agent, by user, each
/// then by time.
private func ranked(_ attempts: [Attempt]) -> [Suspect] {
    func pass(_ group: (Attempt) -> String?, _ add: (String, Observation) -> Void) {
        let grouped = attempts.compactMap { attempt in group(attempt).map { ($0, attempt) } }
        for (key, attempt) in grouped.sorted(by: { a, b in
            guard a.0.utf8.elementsEqual(b.0.utf8) else { return a.0.utf8.lexicographicallyPrecedes(b.0.utf8) }
            return a.1.at < b.1.at
        }) {
            add(key, attempt.observation)
        }
    }
    var tally = SuspicionTally()
    pass({ $0.ip.flatMap(SuspicionTally.requester(of:)) }) { tally.addByRequester($0, $1) }
    pass({ $0.agent.flatMap { SuspicionTally.scriptName(of: $0) == nil ? nil : $0 } }) { tally.addByAgent($0, $1) }
    pass(\.user) { tally.addByUser($0, $1) }
    return tally.ranked()
}

@Suite struct SuspicionTests {
    @Test func aBotFarmOnOneSlash64RanksAboveNormalTraffic() throws {
        var observations = (0..<50).map { attempt("person\($0)", ip: "198.51.100.\($0)", agent: browser, at: Int64($0) * 7) }
        observations += (0..<40).map { attempt("bot\($0)", ip: "2001:db8:1:2::\(String($0 + 1, radix: 16))", agent: "python-requests/2.31", at: 100) }
        let suspects = ranked(observations)
        let top = try #require(suspects.first)
        #expect(top.kind == .network)
        #expect(top.value == "2001:db8:1:2::/64")
        #expect(top.reasons == ["40 distinct users", "40 requests within 10 s", "agent looks like a script (python-requests)"])
        // 40 users, eight times the threshold: 10 points, doubled three times.
        #expect(top.score == 40 + 20 + 20)
        #expect(suspects.contains { $0.kind == .agent && $0.value == "python-requests/2.31" })
        // Nobody of the normal traffic is listed.
        #expect(!suspects.contains { $0.value.hasPrefix("198.51.100.") || $0.value.hasPrefix("person") })
    }

    @Test func distinctUsersCountFromTheThreshold() {
        let four = (0..<4).map { attempt("u\($0)", ip: "203.0.113.9", agent: browser, at: Int64($0) * 60) }
        #expect(ranked(four).isEmpty)
        let five = (0..<5).map { attempt("u\($0)", ip: "203.0.113.9", agent: browser, at: Int64($0) * 60) }
        #expect(ranked(five) == [Suspect(kind: .ip, value: "203.0.113.9", score: 10, reasons: ["5 distinct users"])])
        // Users are compared byte for byte: two spellings of "café" are two users.
        let spellings = ["u0", "u1", "u2", "caf\u{E9}", "cafe\u{301}"].enumerated().map { n, user in
            attempt(user, ip: "203.0.113.9", agent: browser, at: Int64(n) * 60)
        }
        #expect(ranked(spellings).map(\.reasons) == [["5 distinct users"]])
        // The same user again and again is one user.
        let one = (0..<9).map { attempt("u", ip: "203.0.113.9", agent: browser, at: Int64($0) * 60) }
        #expect(ranked(one).isEmpty)
    }

    /// A declined attempt is stored only in its counters, which name no user but keep a
    /// sample of them: the users behind an address count from those too, once each
    /// whether seen by name, in a sample, or both.
    @Test func theUsersOfCountersCountWithTheUsersOfStoredAttempts() {
        var farm = UserSample()
        for n in 1...6 { farm.insert("farm\(n)") }
        var tally = SuspicionTally()
        tally.addByRequester("203.0.113.7", Observation(at: Instant(milliseconds: 0), attempts: 6, declines: 6, users: farm))
        #expect(tally.ranked() == [Suspect(kind: .ip, value: "203.0.113.7", score: 12, reasons: ["6 distinct users"])])
        var both = SuspicionTally()
        both.addByRequester("203.0.113.7", Observation(at: Instant(milliseconds: 0), attempts: 6, users: farm))
        for user in ["farm1", "farm2", "other"] {
            both.addByRequester("203.0.113.7", Observation(at: Instant(milliseconds: 1), user: user))
        }
        #expect(both.ranked().map(\.reasons) == [["7 distinct users"]])
        // Past the sample's exact range, the report says its number is an estimate.
        var crowd = UserSample()
        for n in 1...1_000 { crowd.insert("bot\(n)") }
        var many = SuspicionTally()
        many.addByRequester("203.0.113.7", Observation(at: Instant(milliseconds: 0), attempts: 1_000, users: crowd))
        let reason = many.ranked().first?.reasons.first { $0.hasSuffix("distinct users") }
        #expect(reason == "about \(min(crowd.count.users, 1_000)) distinct users")
        // Found by probing: 80 users, one attempt each, were "about 81": an estimate says no
        // more users than attempts.
        var eighty = UserSample()
        for n in 1...80 { eighty.insert("u\(n)") }
        var few = SuspicionTally()
        few.addByRequester("198.51.100.7", Observation(at: Instant(milliseconds: 0), attempts: 80, users: eighty))
        #expect(eighty.count.users > 80, "the sample no longer overestimates these 80: pick others")
        #expect(few.ranked().first?.reasons.first == "about 80 distinct users")
    }

    @Test func aBurstIsTwentyWithinLessThanTenSeconds() {
        let tight = (0..<20).map { attempt("u", ip: "203.0.113.9", agent: browser, milliseconds: Int64($0) * 499) }
        #expect(ranked(tight).map(\.reasons) == [["20 requests within 10 s"], ["20 requests within 10 s"]])
        // 20 attempts over exactly 10 s: the first has left the window when the last comes.
        let spread = (0..<20).map { attempt("u", ip: "203.0.113.9", agent: browser, milliseconds: Int64($0) * 10_000 / 19) }
        #expect(ranked(spread).isEmpty)
    }

    @Test func theLargestBurstAnywhereInTheSaleCounts() {
        var window = BurstWindow()
        for time: Int64 in [0, 1, 2, 20_000, 20_001, 20_002, 20_003, 40_000] { window.add(time, window: 10_000) }
        #expect(window.largest == 4)
        var many = BurstWindow()
        for time in stride(from: Int64(0), to: 100_000, by: 100) { many.add(time, window: 10_000) }
        #expect(many.largest == 100)
    }

    @Test func declinesCountFromTen() {
        let nine = (0..<9).map { attempt("m", ip: "203.0.113.9", agent: browser, at: Int64($0) * 60, declined: true) }
        #expect(ranked(nine).isEmpty)
        let thirtyFive = (0..<35).map { attempt("m", ip: "203.0.113.9", agent: browser, at: Int64($0) * 60, declined: true) }
        let suspects = ranked(thirtyFive)
        #expect(suspects.map(\.kind) == [.ip, .user])
        #expect(suspects.allSatisfy { $0.reasons == ["35 declines"] && $0.score == 28 })
    }

    @Test func signalsAreCappedSoNoneHidesTheOthers() {
        let huge = (0..<3000).map { attempt("u\($0)", ip: "203.0.113.9", agent: browser, at: Int64($0) * 60) }
        #expect(ranked(huge).first?.score == 100)
    }

    /// Found by probing: each signal reached its 100 points at ten times its threshold, so
    /// a carrier's NAT (200 buyers, one try each, all declined at once) tied with a bot
    /// making 10,000 declined attempts from one address, and was listed first, by its
    /// address; one user hammering 10,000 times ranked below it. Each doubling now adds
    /// as much as the threshold gave.
    @Test func thousandsOfAttemptsOutscoreACrowdBehindOneAddress() {
        let crowd = (0..<200).map { attempt("buyer\($0)", ip: "198.51.100.200", agent: browser, milliseconds: Int64($0), declined: true) }
        let bot = (0..<10_000).map { attempt("u\($0)", ip: "203.0.113.66", agent: browser, milliseconds: Int64($0 % 9_000), declined: true) }
        let hammer = (0..<10_000).map { attempt("solo", ip: "192.0.2.1", agent: browser, milliseconds: Int64($0 % 9_000), declined: true) }
        let suspects = ranked(crowd + bot + hammer)
        #expect(suspects.map(\.value) == ["203.0.113.66", "192.0.2.1", "solo", "198.51.100.200"], "\(suspects)")
        #expect(suspects.map(\.score) == [299, 199, 199, 159], "\(suspects)")
    }

    @Test func ipv6CountsBySlash64AndMappedIPv4AsIPv4() {
        let sixes = (0..<5).map { attempt("u\($0)", ip: "2001:DB8:0:7:\($0)::1", agent: browser, at: Int64($0) * 60) }
        let other = [attempt("v", ip: "2001:db8:0:8::1", agent: browser)]
        #expect(ranked(sixes + other).map(\.value) == ["2001:db8:0:7::/64"])
        let mixed = (0..<5).map { attempt("w\($0)", ip: $0 % 2 == 0 ? "::ffff:192.0.2.7" : "192.0.2.7", agent: browser, at: Int64($0) * 60) }
        #expect(ranked(mixed).map(\.value) == ["192.0.2.7"])
        #expect(ranked(mixed).first?.kind == .ip)
    }

    @Test func scriptAgentsAreSuspectsOnTheirOwn() {
        let suspects = ranked([attempt("a", ip: "203.0.113.1", agent: "curl/8.4.0"), attempt("b", ip: "203.0.113.2", agent: browser)])
        #expect(suspects == [Suspect(kind: .agent, value: "curl/8.4.0", score: 20, reasons: ["agent looks like a script (curl)"])])
    }

    @Test func theAgentsOfAListedRowAddToItsScore() throws {
        let observations = (0..<10).map { n in
            attempt("u\(n)", ip: "203.0.113.9", agent: n < 5 ? "Go-http-client/1.1" : (n < 8 ? nil : browser), at: Int64(n) * 60)
        }
        let row = try #require(ranked(observations).first { $0.kind == .ip })
        #expect(row.reasons == ["10 distinct users", "agent looks like a script (Go-http-client) on 5 of 10 requests",
                                "no user agent on 3 of 10 requests"])
        #expect(row.score == 20 + 10 + 6)
    }

    @Test func noUserAgentSaysNothingWhenNoRequestHasOne() throws {
        let observations = (0..<5).map { attempt("u\($0)", ip: "203.0.113.9", at: Int64($0) * 60) }
        let row = try #require(ranked(observations).first)
        #expect(row.reasons == ["5 distinct users"])
    }

    @Test func scriptNamesAreFoundInAnyCaseAndWidenedToTheirWord() {
        #expect(ScriptAgent.name(in: "python-requests/2.31.0") == "python-requests")
        #expect(ScriptAgent.name(in: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)") == "Googlebot")
        #expect(ScriptAgent.name(in: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36") == "HeadlessChrome")
        #expect(ScriptAgent.name(in: "WGET/1.21") == "WGET")
        #expect(ScriptAgent.name(in: "okhttp/4.12.0") == "okhttp")
        #expect(ScriptAgent.name(in: "Apache-HttpClient/4.5.14 (Java/17.0.2)") == "Apache-HttpClient")
        #expect(ScriptAgent.name(in: browser) == nil)
        #expect(ScriptAgent.name(in: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1") == nil)
    }

    @Test func equalScoresRankNetworksThenAddressesThenAgentsThenUsers() {
        let observations = (0..<5).map { attempt("u\($0)", ip: "203.0.113.9", agent: browser, at: Int64($0) * 60) }
            + (0..<5).map { attempt("v\($0)", ip: "2001:db8::\($0 + 1)", agent: browser, at: Int64($0) * 60) }
            + (0..<5).map { attempt("w\($0)", ip: "203.0.113.8", agent: browser, at: Int64($0) * 60) }
        #expect(ranked(observations).map(\.value) == ["2001:db8::/64", "203.0.113.8", "203.0.113.9"])
    }

    @Test func networksAreWrittenAsRFC5952() throws {
        #expect(IPAddress("2001:0db8:0001:0002:0000:0000:0000:0000")?.compressedText == "2001:db8:1:2::")
        #expect(IPAddress("2001:db8:0:0:1:0:0:1")?.compressedText == "2001:db8::1:0:0:1")
        #expect(IPAddress("2001:db8:0:1:1:1:1:1")?.compressedText == "2001:db8:0:1:1:1:1:1")
        #expect(IPAddress("::")?.compressedText == "::")
        #expect(IPAddress("fe80::")?.compressedText == "fe80::")
        #expect(IPAddress("::1")?.compressedText == "::1")
        #expect(IPAddress("192.0.2.7")?.compressedText == "192.0.2.7")
        #expect(IPAddress("10.100.0.255")?.compressedText == "10.100.0.255")
        let network = try #require(AddressKey(text: "2001:db8:0:0:ffff::5")).text
        #expect(network == "2001:db8::/64")
        // What `block ip` will parse: the same range.
        #expect(IPRange(network) == IPRange("2001:db8:0:0::/64"))
        #expect(AddressKey(text: "::ffff:192.0.2.255")?.text == "192.0.2.255")
    }
}
