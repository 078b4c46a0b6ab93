import FlashSaleCore

/// One booking attempt of the crowd: who, from where, and when after the opening.
struct CrowdRequest: Sendable {
    let user: String
    let ip: String
    let userAgent: String
    /// Milliseconds after the sale opens.
    let arrival: Int64
    let isBot: Bool
}

/// The buyers of a rehearsal, made from a seed: the same seed, the same requests in the
/// same order, on every path.
struct Crowd: Sendable {
    /// Every attempt, in arrival order.
    let requests: [CrowdRequest]
    /// Distinct users, humans and bot accounts.
    let users: Int
    let bots: Int

    /// Half the buyers come in the opening second; the rest over the duration, more of them
    /// early than late. One buyer in five who came presses again a few seconds later. Bots
    /// are accounts of their own that come in the first 200 ms, three attempts each, from a
    /// few addresses, with the agents of scripts.
    init(buyers: Int, botShare: Double, duration: Span, seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let span = max(duration.milliseconds, 1)
        let botCount = Int((Double(buyers) * botShare).rounded())
        let humans = buyers - botCount
        var requests: [CrowdRequest] = []
        requests.reserveCapacity(humans * 6 / 5 + botCount * 3)
        for index in 0..<humans {
            let first: Int64 = random.unit() < 0.5
                ? Int64(random.unit() * Double(min(1000, span)))
                : Int64(Double(span) * random.unit() * random.unit())
            let request = CrowdRequest(user: "buyer-\(index + 1)", ip: Crowd.humanAddress(index),
                                       userAgent: Crowd.browsers[random.below(Crowd.browsers.count)], arrival: first, isBot: false)
            requests.append(request)
            if random.unit() < 0.2 {
                let again = min(span - 1, first + 1000 + Int64(random.below(9000)))
                requests.append(CrowdRequest(user: request.user, ip: request.ip, userAgent: request.userAgent,
                                             arrival: max(again, first), isBot: false))
            }
        }
        let addresses = min(16, 1 + botCount / 250)
        for index in 0..<botCount {
            let ip = "203.0.113.\(1 + index % addresses)"
            let agent = Crowd.scripts[index % Crowd.scripts.count]
            let start = Int64(random.below(Int(min(200, span))))
            for attempt in 0..<3 {
                requests.append(CrowdRequest(user: "bot-\(index + 1)", ip: ip, userAgent: agent,
                                             arrival: min(span - 1, start + Int64(attempt * 20)), isBot: true))
            }
        }
        // Stable: of one millisecond, the order they were made in, so the order is the seed's.
        self.requests = requests.enumerated().sorted { ($0.element.arrival, $0.offset) < ($1.element.arrival, $1.offset) }.map(\.element)
        users = buyers
        bots = botCount
    }

    /// A distinct address per human buyer, in 10.0.0.0/8.
    private static func humanAddress(_ index: Int) -> String {
        let n = index + 1
        return "10.\((n >> 16) & 255).\((n >> 8) & 255).\(n & 255)"
    }

    static let browsers = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    ]

    /// Agents `ScriptAgent` names (a test holds them to it): what suspects looks for.
    static let scripts = ["python-requests/2.32.3", "curl/8.8.0", "Go-http-client/1.1", "Scrapy/2.11.2 (+https://scrapy.org)"]
}
