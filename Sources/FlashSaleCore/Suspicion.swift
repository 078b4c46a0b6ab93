/// Who looks like a bot in a sale (`suspects`), from what is stored about the sale's
/// booking attempts: pure arithmetic over observations, so that thresholds and scores are
/// tested without a database. The store feeds them three times, grouped and sorted three
/// ways; nothing here reads or writes anything.

import Glibc

/// What a suspect row names, and so what its `block` command blocks.
public enum SuspectKind: String, Sendable, CaseIterable {
    /// One IPv4 address; an IPv4-mapped IPv6 address counts as its IPv4 address.
    case ip
    /// One IPv6 /64: a home or a cloud host gets a whole /64 and may use any address in
    /// it, so counting single IPv6 addresses would let one bot look like thousands.
    case network
    /// One user agent text that looks like a script.
    case agent
    case user

    /// The `block` kind: a network is blocked as an ip range.
    public var blockKind: BlockKind {
        switch self {
        case .ip, .network: .ip
        case .agent: .agent
        case .user: .user
        }
    }
}

/// One row of the report: who, how suspicious, and why.
public struct Suspect: Equatable, Sendable {
    public let kind: SuspectKind
    /// What `block` takes: `203.0.113.7`, `2001:db8:1:2::/64`, the agent text, the user.
    public let value: String
    public let score: Int
    /// Why it scored, the heaviest reason first: `40 distinct users`, `25 requests within 10 s`.
    public let reasons: [String]
}

/// When a signal counts. A signal at its threshold is worth `pointsAtThreshold`, and as
/// much again each time it doubles, at most `maximumPoints` (at 512 times its threshold):
/// one huge number cannot hide every other row, yet thousands of attempts outscore
/// hundreds. In proportion, every signal reached its most at ten times its threshold, and
/// a carrier's NAT of 200 buyers trying once each tied with an address making 10,000
/// declined attempts, listed first by its address (found by probing).
public struct SuspicionThresholds: Sendable {
    /// Distinct users behind one address, network or script agent.
    public var distinctUsers = 5
    /// Attempts from one requester within `window`.
    public var burst = 20
    public var window = Span.seconds(10)
    /// Declined (rejected) attempts of one requester.
    public var declines = 10

    public static let standard = SuspicionThresholds()

    static let pointsAtThreshold = 10
    static let maximumPoints = 100
    /// A script agent, or none, on every attempt of a row; less in proportion.
    static let agentPoints = 20

    public init() {}
}

/// What the report reads about a group's attempts: a counter (`AttemptCounter`: so many
/// attempts in a bucket, the only record of a declined direct attempt), or a stored
/// booking or request, which adds no attempt (the counters counted it when it was made)
/// but names the user behind it, and for a request rejected by `process`, a decline.
public struct Observation: Sendable {
    public let at: Instant
    public let attempts: Int
    public let declines: Int
    /// Of the attempts, those with a script agent, and those with no agent.
    public let scripted: Int
    public let withoutAgent: Int
    /// A script agent's name seen on the scripted attempts.
    public let script: String?
    /// The user of a stored attempt, by name.
    public let user: String?
    /// The users of a counter's attempts, as hashes.
    public let users: UserSample

    /// A counter's attempts, at the start of its bucket.
    public init(_ counter: AttemptCounter) {
        at = counter.bucket
        attempts = Int(counter.attempts)
        declines = Int(counter.declined)
        scripted = Int(counter.scripted)
        withoutAgent = Int(counter.agentless)
        script = counter.script
        user = nil
        users = counter.users
    }

    public init(at: Instant, attempts: Int = 0, declines: Int = 0, scripted: Int = 0, withoutAgent: Int = 0,
                script: String? = nil, user: String? = nil, users: UserSample = UserSample()) {
        self.at = at
        self.attempts = attempts
        self.declines = declines
        self.scripted = scripted
        self.withoutAgent = withoutAgent
        self.script = script
        self.user = user
        self.users = users
    }
}

/// A sale's observations, read three times, each time sorted by a group and then by
/// time: by requester (address or /64, `requester(of:)`), by script agent text, by user.
/// One group is counted at a time and kept only if it is a suspect, so memory grows with
/// the suspects, not with the addresses or users (a sale may have millions of each);
/// sorting is the database's work, which it does in temporary files.
public struct SuspicionTally {
    public let thresholds: SuspicionThresholds
    private var listed: [Listed] = []
    private var requester: (text: String, tally: Tally)?
    /// The agent being read, with its script name (nil: a browser, not counted).
    private var agent: (text: String, script: String?, tally: Tally)?
    private var user: (text: String, tally: Tally)?
    /// Whether any attempt carried an agent. If none did, the front end does not send
    /// agents, and a missing one says nothing about who sent the request.
    private var agentsSent = false

    private struct Listed {
        let kind: SuspectKind
        let value: String
        let counts: Counts
        let scriptName: String?
    }

    public init(thresholds: SuspicionThresholds = .standard) {
        self.thresholds = thresholds
    }

    /// The group of an address in the requester pass, and the value of its counters:
    /// `203.0.113.7` (IPv4-mapped IPv6 unmapped), `2001:db8:1:2::/64`; nil for text that
    /// is not an address. Sorting that pass by this text keeps each requester together.
    public static func requester(of ip: String) -> String? {
        AttemptCounter.requester(of: ip)?.value
    }

    /// The script name the agent text gives away, nil for a browser: the agent pass needs
    /// only script agents.
    public static func scriptName(of agent: String) -> String? {
        ScriptAgent.name(in: agent)
    }

    /// Requester pass: observations of requesters (`requester(of:)`), sorted by it, then time.
    public mutating func addByRequester(_ requester: String, _ observation: Observation) {
        if !(self.requester?.text.utf8.elementsEqual(requester.utf8) ?? false) {
            finishRequester()
            self.requester = (requester, Tally(countsUsers: true))
        }
        noteAgents(observation)
        self.requester?.tally.add(observation, window: thresholds.window.milliseconds)
    }

    /// Agent pass: observations of script agents, sorted by agent (byte order), then time.
    public mutating func addByAgent(_ agent: String, _ observation: Observation) {
        if !(self.agent?.text.utf8.elementsEqual(agent.utf8) ?? false) {
            finishAgent()
            self.agent = (agent, Self.scriptName(of: agent), Tally(countsUsers: true))
        }
        agentsSent = true
        self.agent?.tally.add(observation, window: thresholds.window.milliseconds)
    }

    /// User pass: observations of users, sorted by user (byte order), then time.
    public mutating func addByUser(_ user: String, _ observation: Observation) {
        if !(self.user?.text.utf8.elementsEqual(user.utf8) ?? false) {
            finishUser()
            self.user = (user, Tally(countsUsers: false))
        }
        noteAgents(observation)
        self.user?.tally.add(observation, window: thresholds.window.milliseconds)
    }

    private mutating func noteAgents(_ observation: Observation) {
        if observation.attempts > observation.withoutAgent { agentsSent = true }
    }

    private mutating func finishRequester() {
        guard let (text, tally) = requester else { return }
        requester = nil
        let kind: SuspectKind = text.utf8.contains(UInt8(ascii: ":")) ? .network : .ip
        if crossesThreshold(tally) { listed.append(Listed(kind: kind, value: text, counts: tally.counts, scriptName: nil)) }
    }

    private mutating func finishAgent() {
        guard let (text, script, tally) = agent else { return }
        agent = nil
        if let script { listed.append(Listed(kind: .agent, value: text, counts: tally.counts, scriptName: script)) }
    }

    private mutating func finishUser() {
        guard let (text, tally) = user else { return }
        user = nil
        if crossesThreshold(tally) { listed.append(Listed(kind: .user, value: text, counts: tally.counts, scriptName: nil)) }
    }

    private func crossesThreshold(_ tally: Tally) -> Bool {
        let counts = tally.counts
        return counts.largestBurst >= thresholds.burst || counts.declines >= thresholds.declines
            || (counts.distinctUsers?.count ?? 0) >= thresholds.distinctUsers
    }

    /// The suspects, highest score first (then network, ip, agent, user; then by value).
    /// An address, network or user is a suspect when it crosses a threshold (users, burst,
    /// declines), and its agents add to its score; a script agent always is.
    public mutating func ranked() -> [Suspect] {
        finishRequester()
        finishAgent()
        finishUser()
        let suspects = listed.compactMap { suspect($0.kind, $0.value, $0.counts, scriptName: $0.scriptName) }
        let order = Dictionary(uniqueKeysWithValues: [SuspectKind.network, .ip, .agent, .user].enumerated().map { ($1, $0) })
        return suspects.sorted { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.kind != b.kind { return order[a.kind] ?? 0 < order[b.kind] ?? 0 }
            return a.value.utf8.lexicographicallyPrecedes(b.value.utf8)
        }
    }

    private func suspect(_ kind: SuspectKind, _ value: String, _ counts: Counts, scriptName: String?) -> Suspect? {
        var crossed: [(points: Int, reason: String)] = []
        func threshold(_ count: Int, _ threshold: Int, _ reason: String) {
            guard count >= threshold, threshold > 0 else { return }
            let doublings = log2(Double(count) / Double(threshold))
            let points = Int(Double(SuspicionThresholds.pointsAtThreshold) * (1 + doublings))
            crossed.append((min(SuspicionThresholds.maximumPoints, points), reason))
        }
        if let (distinct, isEstimate) = counts.distinctUsers {
            threshold(distinct, thresholds.distinctUsers, "\(isEstimate ? "about " : "")\(distinct) distinct users")
        }
        threshold(counts.largestBurst, thresholds.burst, "\(counts.largestBurst) requests within \(Self.windowText(thresholds.window))")
        threshold(counts.declines, thresholds.declines, "\(counts.declines) declines")
        // The heaviest first; equal points keep the order above (users, burst, declines).
        crossed = crossed.enumerated().sorted { ($0.element.points, -$0.offset) > ($1.element.points, -$1.offset) }.map(\.element)
        var agent: [(points: Int, reason: String)] = []
        if let scriptName {
            agent.append((SuspicionThresholds.agentPoints, "agent looks like a script (\(Quoted(scriptName)))"))
        } else {
            // Only a row that crossed a threshold is listed; its agents then weigh in.
            guard !crossed.isEmpty else { return nil }
            if let name = counts.commonestScript {
                agent.append((share(counts.scripted, of: counts.attempts),
                              "agent looks like a script (\(Quoted(name)))" + portion(counts.scripted, of: counts.attempts)))
            }
            if agentsSent, counts.withoutAgent > 0 {
                agent.append((share(counts.withoutAgent, of: counts.attempts), "no user agent" + portion(counts.withoutAgent, of: counts.attempts)))
            }
        }
        // The reason a row is listed comes first (the block command quotes it): its agent
        // for an agent row, else its heaviest threshold.
        let reasons = scriptName == nil ? crossed + agent : agent + crossed
        return Suspect(kind: kind, value: value, score: reasons.reduce(0) { $0 + $1.points }, reasons: reasons.map(\.reason))
    }

    private func share(_ part: Int, of whole: Int) -> Int {
        whole == 0 ? 0 : SuspicionThresholds.agentPoints * part / whole
    }

    private func portion(_ part: Int, of whole: Int) -> String {
        part == whole ? "" : " on \(part) of \(whole) requests"
    }

    /// `10 s`, or the duration's own spelling when it is not whole seconds.
    static func windowText(_ window: Span) -> String {
        window.milliseconds % 1000 == 0 ? "\(window.milliseconds / 1000) s" : window.description
    }
}

/// What is counted of one group while its observations are read.
private struct Tally {
    private var attempts = 0
    private var declines = 0
    private var scripted = 0
    private var withoutAgent = 0
    /// Scripted attempts per script name, for the reason text.
    private var scripts: [String: Int] = [:]
    /// Distinct users, for addresses and agents; only one group's at a time: by name from
    /// stored attempts, and as a sample of hashes (`UserSample`) from counters and those
    /// names alike, which counts the users of declined attempts too. Past the sample's
    /// exact range, the names may count more than its estimate: the larger is the report's.
    private var users: Set<ExactText>?
    private var userSample = UserSample()
    private var burst = BurstWindow()
    private var previous = Instant.earliest

    init(countsUsers: Bool) {
        users = countsUsers ? [] : nil
    }

    /// Attempts earlier than the ones before them count as if they came with those.
    mutating func add(_ observation: Observation, window: Int64) {
        attempts += observation.attempts
        declines += observation.declines
        scripted += observation.scripted
        withoutAgent += observation.withoutAgent
        if let script = observation.script, observation.scripted > 0 { scripts[script, default: 0] += observation.scripted }
        if users != nil {
            if let user = observation.user {
                users?.insert(ExactText(user))
                userSample.insert(user)
            }
            userSample.formUnion(observation.users)
        }
        if observation.attempts > 0 {
            previous = max(previous, observation.at)
            burst.add(previous.milliseconds, attempts: observation.attempts, window: window)
        }
    }

    /// The numbers alone: what a listed group keeps once it has been read.
    var counts: Counts {
        Counts(attempts: attempts, declines: declines, scripted: scripted, withoutAgent: withoutAgent,
               distinctUsers: users.map { names in
                   let sampled = userSample.count
                   guard sampled.isEstimate, sampled.users > names.count else { return (max(names.count, sampled.users), false) }
                   // An estimate never says more users than the attempts they made (80 users
                   // were "about 81": found by probing), nor fewer than the sample holds.
                   return (min(sampled.users, max(attempts, UserSample.kept)), true)
               }, largestBurst: burst.largest,
               // The one used most (the first by name among equals).
               commonestScript: scripts.max { ($0.value, $1.key) < ($1.value, $0.key) }?.key)
    }
}

private struct Counts {
    let attempts: Int
    let declines: Int
    let scripted: Int
    let withoutAgent: Int
    /// Distinct users, and whether the number is an estimate (past `UserSample.kept`).
    let distinctUsers: (count: Int, isEstimate: Bool)?
    let largestBurst: Int
    let commonestScript: String?
}

/// The most attempts within any `window` (a half-open span shorter than the window: two
/// attempts exactly 10 s apart are not within 10 s), kept as a queue of recent times, each
/// with its number of attempts (a counter's attempts all come at the start of its bucket).
struct BurstWindow {
    private var times: [(time: Int64, attempts: Int)] = []
    private var head = 0
    private var inWindow = 0
    private(set) var largest = 0

    /// `time` must not be before the previous one.
    mutating func add(_ time: Int64, attempts: Int = 1, window: Int64) {
        while head < times.count, times[head].time <= time - window {
            inWindow -= times[head].attempts
            head += 1
        }
        times.append((time, attempts))
        inWindow += attempts
        largest = max(largest, inWindow)
        // Drop the expired front now and then, so a long sale does not keep every time.
        if head >= 64, head * 2 >= times.count {
            times.removeFirst(head)
            head = 0
        }
    }
}
