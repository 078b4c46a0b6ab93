import Testing
@testable import FlashSaleCore

private let start = Instant(milliseconds: 1_795_000_000_000)
private let browser = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"

private extension AttemptTally {
    mutating func add(_ user: String, ip: String? = nil, agent: String? = nil, declined: ErrorCode? = nil,
                      at milliseconds: Int64 = 0) {
        add(user: UserID(trusted: user), ip: ip, userAgent: agent, declined: declined,
            at: start.adding(Span(milliseconds: milliseconds)))
    }

    func counter(_ kind: SuspectKind, _ value: String) -> [AttemptCounter] {
        counters().filter { $0.kind == kind && $0.value == value }
    }
}

private struct Attempt {
    let user: String
    let ip: String?
    let agent: String?
    let declined: ErrorCode?
    let at: Int64
}

@Suite struct AttemptTallyTests {
    @Test func aBucketIsTenSecondsFromAWholeTen() {
        #expect(AttemptBucket.start(of: Instant(milliseconds: 1_795_000_009_999)) == Instant(milliseconds: 1_795_000_000_000))
        #expect(AttemptBucket.start(of: Instant(milliseconds: 1_795_000_010_000)) == Instant(milliseconds: 1_795_000_010_000))
    }

    @Test func anAttemptCountsForItsRequesterAgentAndUser() throws {
        var tally = AttemptTally()
        tally.add("bot", ip: "203.0.113.7", agent: "curl/8.4.0", declined: .soldOut)
        tally.add("bot", ip: "::ffff:203.0.113.7", agent: "curl/8.4.0", declined: .soldOut, at: 9_999)
        tally.add("bot", ip: "2001:db8:1:2::5", declined: .userLimit)
        tally.add("person", ip: "2001:DB8:1:2::6", agent: browser)
        #expect(tally.totals == AttemptTotals(attempts: 4, declined: [.soldOut: 2, .userLimit: 1]))
        let address = try #require(tally.counter(.ip, "203.0.113.7").first)
        var bot = UserSample()
        bot.insert("bot")
        #expect(address == AttemptCounter(kind: .ip, value: "203.0.113.7", bucket: start, attempts: 2, declined: 2,
                                          scripted: 2, agentless: 0, script: "curl", users: bot))
        let network = try #require(tally.counter(.network, "2001:db8:1:2::/64").first)
        #expect((network.attempts, network.declined, network.scripted, network.agentless) == (2, 1, 0, 1))
        #expect(network.users.count == (2, false))
        #expect(tally.counter(.agent, "curl/8.4.0").map(\.attempts) == [2])
        #expect(tally.counter(.agent, "curl/8.4.0").map(\.users) == [bot])
        let user = try #require(tally.counter(.user, "bot").first)
        #expect((user.attempts, user.declined, user.scripted, user.agentless, user.script) == (3, 3, 2, 1, "curl"))
        // A user's own counter needs no sample of its users.
        #expect(user.users.isEmpty)
        // The agent's own counter says nothing of agents.
        #expect(tally.counter(.agent, browser).first?.script == nil)
    }

    @Test func aBurstFromOneAddressIsOneCounterPerKind() {
        var tally = AttemptTally()
        for n in 0..<10_000 { tally.add("u\(n % 3)", ip: "203.0.113.66", agent: browser, declined: .soldOut, at: Int64(n)) }
        let counters = tally.counters()
        #expect(counters.count == 1 + 1 + 3)
        #expect(tally.counter(.ip, "203.0.113.66").map(\.attempts) == [10_000])
    }

    @Test func attemptsInTwoBucketsAreTwoCounters() {
        var tally = AttemptTally()
        tally.add("a", ip: "203.0.113.1", at: 9_999)
        tally.add("a", ip: "203.0.113.1", at: 10_000)
        #expect(tally.counter(.ip, "203.0.113.1").map(\.bucket).sorted() == [start, start.adding(.seconds(10))])
        #expect(tally.attempts(fromRequesterOf: "203.0.113.1") == 2)
        #expect(tally.attempts(fromRequesterOf: "::ffff:203.0.113.1") == 2)
        #expect(tally.attempts(fromRequesterOf: "203.0.113.2") == 0)
    }

    /// A crowd seen once each leaves no counter of its own; the burst among it keeps its
    /// counter, lowered by no more than the crowd / 257, and never above what it counts.
    @Test func aCrowdKeepsOnlyItsHeavyHitters() throws {
        var tally = AttemptTally()
        for n in 0..<20_000 {
            tally.add("person\(n)", ip: "10.\(n / 65_536).\(n / 256 % 256).\(n % 256)", agent: browser)
            if n % 4 == 0 { tally.add("bot", ip: "203.0.113.66", agent: "python-requests/2.31", declined: .soldOut) }
        }
        let counters = tally.counters()
        #expect(tally.totals.attempts == 25_000)
        for kind in [SuspectKind.ip, .agent, .user] {
            #expect(counters.filter { $0.kind == kind }.count <= AttemptTally.countersPerKind)
        }
        let bot = try #require(tally.counter(.ip, "203.0.113.66").first)
        #expect(bot.attempts <= 5_000 && bot.attempts >= 5_000 - 25_000 / 257)
        #expect(bot.declined <= bot.attempts && bot.scripted <= bot.attempts)
        #expect(tally.counter(.user, "bot").first?.attempts ?? 0 >= 5_000 - 25_000 / 257)
        #expect(!counters.contains { $0.value.hasPrefix("person") || $0.value.hasPrefix("10.") })
        #expect(tally.counter(.agent, browser).map(\.attempts) == [20_000])
    }

    /// A lone attempt is counted without the tables; as it would be with them.
    @Test(arguments: [("a", "203.0.113.7", "curl/8.4.0"), ("b", "2001:db8::1", browser), ("c", nil, nil), ("d", "bad", "")])
    func aLoneAttemptCountsAsInACrowd(user: String, ip: String?, agent: String?) {
        var lone = AttemptTally()
        lone.add(user, ip: ip, agent: agent, declined: .soldOut)
        var crowd = AttemptTally()
        crowd.add("other", ip: "198.51.100.1", agent: "other/1")
        crowd.add(user, ip: ip, agent: agent, declined: .soldOut)
        let others: Set<String> = ["other", "198.51.100.1", "other/1"]
        let sorted = { (counters: [AttemptCounter]) in counters.sorted { ($0.kind.rawValue, $0.value) < ($1.kind.rawValue, $1.value) } }
        #expect(sorted(lone.counters()) == sorted(crowd.counters().filter { !others.contains($0.value) }))
        #expect(lone.attempts(fromRequesterOf: ip ?? "") == crowd.attempts(fromRequesterOf: ip ?? ""))
    }

    /// Tallies of consecutive runs of attempts, lone ones included, absorbed one into the
    /// next, count what one tally of all of them counts.
    @Test(arguments: [[1], [1, 1, 1], [3, 1, 5], [2, 7], [12]])
    func absorbedTalliesCountAsOne(runs: [Int]) {
        let attempts = (0..<runs.reduce(0, +)).map { n -> Attempt in
            let ip = n % 3 == 0 ? "203.0.113.\(n % 2)" : "2001:db8::\(n)"
            let agent: String? = n % 5 == 0 ? nil : n % 2 == 0 ? browser : "curl/8.4.0"
            let declined: ErrorCode? = n % 2 == 0 ? .soldOut : nil
            return Attempt(user: "u\(n % 4)", ip: ip, agent: agent, declined: declined, at: Int64(n) * 2_000)
        }
        var whole = AttemptTally()
        for a in attempts { whole.add(a.user, ip: a.ip, agent: a.agent, declined: a.declined, at: a.at) }
        var absorbed = AttemptTally()
        var next = attempts[...]
        for run in runs {
            var part = AttemptTally()
            for a in next.prefix(run) { part.add(a.user, ip: a.ip, agent: a.agent, declined: a.declined, at: a.at) }
            next = next.dropFirst(run)
            absorbed.absorb(part)
        }
        absorbed.addDeclines(.userLimit, count: 2)
        whole.addDeclines(.userLimit, count: 2)
        let sorted = { (counters: [AttemptCounter]) in
            counters.sorted { ($0.kind.rawValue, $0.value, $0.bucket.milliseconds) < ($1.kind.rawValue, $1.value, $1.bucket.milliseconds) }
        }
        #expect(absorbed.totals == whole.totals)
        #expect(sorted(absorbed.counters()) == sorted(whole.counters()))
        #expect(absorbed.attempts(fromRequesterOf: "203.0.113.0") == whole.attempts(fromRequesterOf: "203.0.113.0"))
    }

    /// Many small tallies of a crowd, each seen once, and of a burst: absorbed, the crowd
    /// leaves no counter and the burst keeps its own, within the bound of one tally.
    @Test func absorbedTalliesKeepTheHeavyHittersOfAll() throws {
        var absorbed = AttemptTally()
        for group in 0..<1_000 {
            var part = AttemptTally()
            for n in 0..<4 { part.add("person\(group * 4 + n)", ip: "10.0.\(group % 256).\(n)", agent: browser) }
            part.add("bot", ip: "203.0.113.66", agent: "python-requests/2.31", declined: .soldOut)
            absorbed.absorb(part)
        }
        #expect(absorbed.totals == AttemptTotals(attempts: 5_000, declined: [.soldOut: 1_000]))
        let counters = absorbed.counters()
        for kind in [SuspectKind.ip, .agent, .user] {
            #expect(counters.filter { $0.kind == kind }.count <= AttemptTally.countersPerKind)
        }
        let bot = try #require(absorbed.counter(.ip, "203.0.113.66").first)
        #expect(bot.attempts <= 1_000 && bot.attempts >= 1_000 - 5_000 / 257)
        #expect(!counters.contains { $0.value.hasPrefix("person") })
    }

    /// A thousand requesters trying 20 times each, in groups of ten attempts absorbed one
    /// by one (serve's second of groups): a tally of a transaction's capacity keeps none of
    /// their counters, one of `DecisionGroup.carriedCounters`' keeps each, exact.
    @Test func aLargerCapacityKeepsManyRepeatedRequesters() {
        func absorbed(capacity: Int) -> AttemptTally {
            var whole = AttemptTally(capacity: capacity)
            for group in 0..<2_000 {
                var part = AttemptTally()
                for n in 0..<10 {
                    let bot = (group * 10 + n) % 1_000
                    part.add("bot\(bot)", ip: "10.0.\(bot / 256).\(bot % 256)", agent: browser, declined: .soldOut)
                }
                whole.absorb(part)
            }
            return whole
        }
        let small = absorbed(capacity: AttemptTally.countersPerKind).counters()
        #expect(small.filter { $0.kind == .ip }.count <= AttemptTally.countersPerKind)
        let large = absorbed(capacity: 4_096)
        #expect(large.totals == AttemptTotals(attempts: 20_000, declined: [.soldOut: 20_000]))
        let ips = large.counters().filter { $0.kind == .ip }
        #expect(ips.count == 1_000)
        #expect(ips.allSatisfy { $0.attempts == 20 && $0.declined == 20 })
    }

    @Test func declinesOfQueuedRequestsCountOnlyInTheTotals() {
        var tally = AttemptTally()
        tally.addDeclines(.soldOut, count: 3)
        tally.addDeclines(.soldOut, count: 0)
        #expect(!tally.isEmpty)
        #expect(tally.totals == AttemptTotals(attempts: 0, declined: [.soldOut: 3]))
        #expect(tally.counters().isEmpty)
    }

    @Test func usersAndAgentsAreComparedByteForByte() {
        var tally = AttemptTally()
        tally.add("caf\u{E9}", agent: "caf\u{E9}/1")
        tally.add("cafe\u{301}", agent: "cafe\u{301}/1")
        #expect(tally.counters().filter { $0.kind == .user }.count == 2)
        #expect(tally.counters().filter { $0.kind == .agent }.count == 2)
    }

    @Test func textsOfSixteenBytesOrFewerHashApartByLength() {
        #expect(ExactText("ab") != ExactText("ab\u{0}"))
        #expect(ExactText("0123456789abcdef") == ExactText("0123456789abcdef"))
        #expect(Set([ExactText("a"), ExactText("a\u{0}"), ExactText("a")]).count == 2)
    }
}
