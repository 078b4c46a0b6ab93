import FlashSaleCore

/// One booking attempt of the crowd: who, from where, and when after the opening. Twelve
/// bytes, its strings made when asked for: a crowd of millions stays in memory for the
/// whole rehearsal, in arrival order.
struct CrowdRequest: Sendable, Equatable {
    /// The buyer's number among the humans or among the bots, from 1.
    let number: UInt32
    /// Milliseconds after the sale opens: within the duration (at most 24 h) and a hold
    /// after it, far from Int32's 24 days.
    private let arrivalMilliseconds: Int32
    let isBot: Bool
    /// The agent's index in `Crowd.browsers` or `Crowd.scripts`.
    private let agent: UInt8
    /// A bot's address: the last byte of `Crowd.botNetwork`'s.
    private let botHost: UInt8

    fileprivate init(number: Int, arrival: Int64, isBot: Bool, agent: Int, botHost: Int = 0) {
        self.number = UInt32(number)
        arrivalMilliseconds = Int32(arrival)
        self.isBot = isBot
        self.agent = UInt8(agent)
        self.botHost = UInt8(botHost)
    }

    /// The same buyer, arriving at another time.
    func arriving(at arrival: Int64) -> CrowdRequest {
        CrowdRequest(number: Int(number), arrival: arrival, isBot: isBot, agent: Int(agent), botHost: Int(botHost))
    }

    var arrival: Int64 { Int64(arrivalMilliseconds) }
    var user: String { (isBot ? Crowd.botPrefix : Crowd.humanPrefix) + String(number) }
    var userAgent: String { isBot ? Crowd.scripts[Int(agent)] : Crowd.browsers[Int(agent)] }

    /// A human's own address in 10.0.0.0/8; a bot's one of a few in 203.0.113.0/24.
    var ip: String {
        guard !isBot else { return Crowd.botNetwork + String(botHost) }
        let n = Int(number)
        return "10.\((n >> 16) & 255).\((n >> 8) & 255).\(n & 255)"
    }

    /// The crowd's order: by arrival, and of one millisecond the humans before the bots,
    /// each by number, the order they are made in (`Crowd.init`). Requests equal in all
    /// three are the same buyer's, alike but for nothing.
    fileprivate static func arrivesBefore(_ one: CrowdRequest, _ other: CrowdRequest) -> Bool {
        (one.arrivalMilliseconds, one.isBot ? 1 : 0, one.number) < (other.arrivalMilliseconds, other.isBot ? 1 : 0, other.number)
    }
}

/// The buyers of a rehearsal, made from a seed: the same seed, the same requests in the
/// same order, on every path.
struct Crowd: Sendable {
    /// Every attempt, in arrival order.
    let requests: [CrowdRequest]
    /// Distinct users, humans and bot accounts.
    let users: Int
    let bots: Int

    static let humanPrefix = "buyer-"
    static let botPrefix = "bot-"
    static let botNetwork = "203.0.113."

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
            let request = CrowdRequest(number: index + 1, arrival: first, isBot: false, agent: random.below(Crowd.browsers.count))
            requests.append(request)
            if random.unit() < 0.2 {
                let again = min(span - 1, first + 1000 + Int64(random.below(9000)))
                requests.append(request.arriving(at: max(again, first)))
            }
        }
        let addresses = min(16, 1 + botCount / 250)
        for index in 0..<botCount {
            let start = Int64(random.below(Int(min(200, span))))
            for attempt in 0..<3 {
                requests.append(CrowdRequest(number: index + 1, arrival: min(span - 1, start + Int64(attempt * 20)), isBot: true,
                                             agent: index % Crowd.scripts.count, botHost: 1 + index % addresses))
            }
        }
        // In place: a copy of millions of requests to sort would double the crowd's memory.
        requests.sort(by: CrowdRequest.arrivesBefore)
        self.requests = requests
        users = buyers
        bots = botCount
    }

    /// The first `count` buyers to come, by their first requests, leaving out the users
    /// `left`. Who has come is a byte a buyer, humans first: a set of their names would
    /// take as much memory again as the crowd.
    func firstBuyers(_ count: Int, except left: Set<String>) -> [CrowdRequest] {
        var seen = [Bool](repeating: false, count: users)
        var found: [CrowdRequest] = []
        for request in requests {
            guard found.count < count else { break }
            let place = Int(request.number) - 1 + (request.isBot ? users - bots : 0)
            guard !seen[place] else { continue }
            seen[place] = true
            if !left.contains(request.user) { found.append(request) }
        }
        return found
    }

    /// Whether `user` is one of the crowd's bot accounts.
    static func isBot(_ user: String) -> Bool {
        user.hasPrefix(botPrefix)
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
