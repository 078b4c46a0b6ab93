/// Booking attempts, counted for bot defence (`suspects`) and `metrics`. A declined attempt
/// leaves no booking or request behind, so without a count a script hammering a sold-out
/// sale would leave no trace. Each write transaction tallies its attempts in memory
/// (`AttemptTally`), and the store adds the tally to its counters before the commit: a
/// burst of 10,000 attempts from one address is one counter per kind, not 10,000 rows.

/// The counting period of the counters by requester, agent and user: 10 s, the window of
/// the burst signal (`SuspicionThresholds.window`). All the attempts of a bucket were
/// within 10 s of each other, so "N requests within 10 s" stays true of a bucket's count;
/// and a requester who keeps trying costs a counter per 10 s, not per second.
public enum AttemptBucket {
    public static let length = Span.seconds(10)

    /// The start of the bucket `instant` falls in (instants are never before 1970).
    public static func start(of instant: Instant) -> Instant {
        Instant(milliseconds: instant.milliseconds - instant.milliseconds % length.milliseconds)
    }
}

/// One stored counter: the attempts of one requester, agent or user in one bucket of a sale.
public struct AttemptCounter: Equatable, Sendable {
    /// `.ip` and `.network` count a requester (`SuspicionTally.requester(of:)`), `.agent` an
    /// agent text, `.user` a user.
    public let kind: SuspectKind
    public let value: String
    public let bucket: Instant
    public var attempts: Int64
    public var declined: Int64
    /// Of the attempts, those whose agent looks like a script (`ScriptAgent`), and those
    /// that carried no agent; both 0 for an agent's own counter.
    public var scripted: Int64
    public var agentless: Int64
    /// The name of a script agent seen on the scripted attempts, for the report's words.
    public var script: String?
    /// The users the attempts came from, for a requester's or an agent's counter; none for
    /// a user's own.
    public var users: UserSample

    /// The kind and value of the counter that an attempt from `ip` counts in; nil when
    /// `ip` is not an address.
    public static func requester(of ip: String) -> (kind: SuspectKind, value: String)? {
        AddressKey(text: ip).map { ($0.kind, $0.text) }
    }

    public init(kind: SuspectKind, value: String, bucket: Instant, attempts: Int64, declined: Int64, scripted: Int64,
                agentless: Int64, script: String?, users: UserSample = UserSample()) {
        self.kind = kind
        self.value = value
        self.bucket = bucket
        self.attempts = attempts
        self.declined = declined
        self.scripted = scripted
        self.agentless = agentless
        self.script = script
        self.users = users
    }
}

/// A sale's attempts in all: every attempt, and the declined ones by the code they were
/// declined with. Exact, whatever the counters by key lost to their bound.
public struct AttemptTotals: Equatable, Sendable {
    public var attempts: Int64
    public var declined: [ErrorCode: Int64]

    /// The codes an attempt can be declined with: the decline reasons, and `conflict` for
    /// a key another user gave first.
    public static let declineCodes: [ErrorCode] = [.soldOut, .userLimit, .notOpen, .blocked, .conflict]

    public init(attempts: Int64 = 0, declined: [ErrorCode: Int64] = [:]) {
        self.attempts = attempts
        self.declined = declined
    }
}

/// One transaction's attempts in one sale, as the store is to add them to its counters.
/// Every attempt is counted, so its path is short: each of its keys is looked up once.
public struct AttemptTally: Sendable {
    public private(set) var attempts: Int64 = 0
    /// The declines by code, in the order first seen: a handful of codes at most.
    private var declines: [(code: ErrorCode, count: Int64)] = []
    private var requesters: KeyedCounts<RequesterKey>
    private var users: KeyedCounts<TextKey>
    /// Agents in the order first seen, found by `agentIndex`; a few of them are looked at
    /// first (`recentAgents`, replaced in turn): the same few agents come back on most
    /// attempts, and hashing a long agent text cost more than all the rest of a count.
    private var agentKeys: [TextKey] = []
    private var agentCounts: [Count] = []
    private var agentIndex: [TextKey: Int] = [:]
    private var recentAgents: [(bucket: Int64, length: Int, index: Int)] = []
    private var nextRecentAgent = 0
    /// The buckets the attempts fell in: one or two for any transaction.
    private var buckets: [Int64] = []
    /// A transaction's first attempt, kept as it came until a second one comes: a lone
    /// `book` counts one, and making the tables above for it cost more than writing it.
    private var first: Attempt?

    private struct Attempt {
        let user: UserID
        let ip: String?
        let userAgent: String?
        let declined: Bool
        let bucket: Int64
    }

    /// At most this many counters of each kind (requesters, agents, users) per transaction.
    /// A stream of a million buyers, each seen once, would otherwise write a counter per
    /// attempt; this way a transaction's counters are its heavy hitters
    /// (`KeyedCounts.reduce`).
    public static let countersPerKind = 256
    static let recentAgentsKept = 16

    /// The counters of each kind this tally keeps: `countersPerKind` unless it was made
    /// for more attempts than a transaction's.
    public let capacity: Int
    /// Keys kept in memory per kind before they are reduced to `capacity`: a transaction
    /// of a whole `submit --file` must not hold a key per line, and a table that stays this
    /// small is never made again for more.
    private var keysInMemory: Int { 4 * capacity }

    public init(capacity: Int = AttemptTally.countersPerKind) {
        self.capacity = capacity
        requesters = KeyedCounts(capacity: capacity)
        users = KeyedCounts(capacity: capacity)
    }

    public var isEmpty: Bool { attempts == 0 && declines.isEmpty }

    /// The sale's attempts and declines in this tally.
    public var totals: AttemptTotals {
        AttemptTotals(attempts: attempts, declined: Dictionary(declines, uniquingKeysWith: +))
    }

    /// One attempt, declined with `declined` or not, decided (or submitted) at `now`.
    public mutating func add(user: UserID, ip: String?, userAgent: String?, declined: ErrorCode?, at now: Instant) {
        if let declined { addDeclines(declined, count: 1) }
        count(user: user, ip: ip, userAgent: userAgent, declined: declined != nil, bucket: AttemptBucket.start(of: now).milliseconds)
    }

    /// One attempt, its decline already counted. Its values come loose, not as an
    /// `Attempt`: every decision of a stream comes here, and making one for each cost 0.7%
    /// of a stream's instructions (callgrind, 20,000 lines).
    private mutating func count(user: UserID, ip: String?, userAgent: String?, declined: Bool, bucket: Int64) {
        attempts += 1
        guard attempts > 1 else {
            first = Attempt(user: user, ip: ip, userAgent: userAgent, declined: declined, bucket: bucket)
            return
        }
        tallyFirst()
        tally(user: user, ip: ip, userAgent: userAgent, declined: declined, bucket: bucket)
    }

    /// The lone first attempt, put in the tables now that another comes.
    private mutating func tallyFirst() {
        if let first {
            self.first = nil
            tally(user: first.user, ip: first.ip, userAgent: first.userAgent, declined: first.declined, bucket: first.bucket)
        }
    }

    /// Adds the attempts of `other`, a tally of later attempts in the same sale: the
    /// totals exactly, and the counters as a tally of all of them would have them within
    /// its bound (Misra–Gries summaries add up: the counts are summed, then reduced to
    /// its capacity again).
    public mutating func absorb(_ other: AttemptTally) {
        for (code, count) in other.declines { addDeclines(code, count: count) }
        if let attempt = other.first {
            count(user: attempt.user, ip: attempt.ip, userAgent: attempt.userAgent, declined: attempt.declined, bucket: attempt.bucket)
            return
        }
        guard other.attempts > 0 else { return }
        tallyFirst()
        attempts += other.attempts
        for bucket in other.buckets where !buckets.contains(bucket) { buckets.append(bucket) }
        requesters.absorb(other.requesters)
        users.absorb(other.users)
        for (key, count) in zip(other.agentKeys, other.agentCounts) {
            if let index = agentIndex[key] {
                agentCounts[index].absorb(count)
            } else {
                if agentKeys.count >= keysInMemory { reduceAgents() }
                agentIndex[key] = agentKeys.count
                agentKeys.append(key)
                agentCounts.append(count)
            }
        }
    }

    private mutating func tally(user: UserID, ip: String?, userAgent: String?, declined: Bool, bucket: Int64) {
        if buckets.last != bucket, !buckets.contains(bucket) { buckets.append(bucket) }
        // Made once, and only for a counter that samples its users.
        var hashed: Int64?
        func userHash() -> Int64 {
            if let hashed { return hashed }
            let hash = UserSample.hash(of: user.text)
            hashed = hash
            return hash
        }
        var script: String?
        var agentless = true
        if let agent = userAgent, !agent.isEmpty {
            agentless = false
            let index = agentIndex(of: agent, in: bucket)
            script = agentCounts[index].script
            // Only a script agent is a suspect (`SuspicionTally`): a browser's users are
            // never read, and sampling them cost a stream 2.5% of its instructions.
            agentCounts[index].add(declined: declined, userHash: script == nil ? nil : userHash())
        }
        if let ip, let address = AddressKey(text: ip) {
            requesters.add(RequesterKey(bucket: bucket, address: address), declined: declined, script: script,
                           agentless: agentless, userHash: userHash())
        }
        users.add(TextKey(bucket: bucket, text: ExactText(user.text)), declined: declined, script: script, agentless: agentless,
                  userHash: nil)
    }

    private mutating func agentIndex(of agent: String, in bucket: Int64) -> Int {
        let key = TextKey(bucket: bucket, text: ExactText(agent))
        let length = agent.utf8.count
        for recent in recentAgents where recent.bucket == bucket && recent.length == length && agentKeys[recent.index] == key {
            return recent.index
        }
        let index: Int
        if let found = agentIndex[key] {
            index = found
        } else {
            if agentKeys.count >= keysInMemory { reduceAgents() }
            index = agentKeys.count
            agentKeys.append(key)
            // Once per agent and bucket: the script name it gives away, or nil.
            agentCounts.append(Count(script: ScriptAgent.name(in: agent)))
            agentIndex[key] = index
        }
        if recentAgents.count < Self.recentAgentsKept {
            recentAgents.append((bucket, length, index))
        } else {
            recentAgents[nextRecentAgent] = (bucket, length, index)
            nextRecentAgent = (nextRecentAgent + 1) % Self.recentAgentsKept
        }
        return index
    }

    /// Declines of attempts counted before: queued requests that `process` rejected.
    public mutating func addDeclines(_ code: ErrorCode, count: Int64) {
        guard count > 0 else { return }
        if let index = declines.firstIndex(where: { $0.code == code }) {
            declines[index].count += count
        } else {
            declines.append((code, count))
        }
    }

    /// The attempts from `ip`'s requester (its address, or its IPv6 /64) so far in this tally.
    public func attempts(fromRequesterOf ip: String) -> Int64 {
        guard let address = AddressKey(text: ip) else { return 0 }
        if let first {
            return first.ip.flatMap(AddressKey.init(text:)) == address ? 1 : 0
        }
        return buckets.reduce(0) { $0 + (requesters.counts[RequesterKey(bucket: $1, address: address)]?.attempts ?? 0) }
    }

    /// The counters to add, at most `capacity` of each kind.
    public func counters() -> [AttemptCounter] {
        if let first { return Self.counters(of: first) }
        var reduced = self
        reduced.requesters.reduce(to: capacity)
        reduced.users.reduce(to: capacity)
        reduced.reduceAgents()
        return reduced.requesters.counts.map { $1.counter($0.address.kind, $0.address.text, $0.bucket) }
            + zip(reduced.agentKeys, reduced.agentCounts).map { $1.counter(.agent, $0.text.text, $0.bucket, ofAgent: true) }
            + reduced.users.counts.map { $1.counter(.user, $0.text.text, $0.bucket) }
    }

    /// What `tally` would make of a lone attempt, without its tables.
    private static func counters(of attempt: Attempt) -> [AttemptCounter] {
        let agent = attempt.userAgent.flatMap { $0.isEmpty ? nil : $0 }
        let script = agent.flatMap(ScriptAgent.name(in:))
        let userHash = UserSample.hash(of: attempt.user.text)
        var count = Count()
        count.add(declined: attempt.declined, script: script, agentless: agent == nil, userHash: nil)
        var counters: [AttemptCounter] = []
        if let address = attempt.ip.flatMap(AddressKey.init(text:)) {
            var requesterCount = count
            requesterCount.add(userHash: userHash)
            counters.append(requesterCount.counter(address.kind, address.text, attempt.bucket))
        }
        if let agent {
            var agentCount = Count(script: nil)
            agentCount.add(declined: attempt.declined, userHash: script == nil ? nil : userHash)
            counters.append(agentCount.counter(.agent, agent, attempt.bucket, ofAgent: true))
        }
        counters.append(count.counter(.user, attempt.user.text, attempt.bucket))
        return counters
    }

    private mutating func reduceAgents() {
        guard agentKeys.count > capacity else { return }
        let cut = Self.cut(agentCounts.map { $0.attempts }, keeping: capacity)
        let kept = agentCounts.indices.filter { agentCounts[$0].attempts > cut }
        agentKeys = kept.map { agentKeys[$0] }
        agentCounts = kept.map { agentCounts[$0].lowered(by: cut) }
        agentIndex = Dictionary(uniqueKeysWithValues: agentKeys.enumerated().map { ($1, $0) })
        recentAgents = []
        nextRecentAgent = 0
    }

    /// The (capacity + 1)-th largest of more than `capacity` counts of at least 1. Mostly
    /// 1 (a crowd seen once each), found without sorting the crowd.
    static func cut(_ attempts: [Int64], keeping capacity: Int) -> Int64 {
        let repeated = attempts.filter { $0 > 1 }
        return repeated.count > capacity ? repeated.sorted(by: >)[capacity] : 1
    }
}

/// Counts by key, at most four times `capacity` of them, and how many keys were seen more
/// than once: while none was, a reduction drops every key without reading them.
struct KeyedCounts<Key: Hashable & Sendable>: Sendable {
    private(set) var counts: [Key: Count] = [:]
    private var repeated = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    mutating func add(_ key: Key, declined: Bool, script: String?, agentless: Bool, userHash: Int64?) {
        if counts[key, default: Count()].add(declined: declined, script: script, agentless: agentless, userHash: userHash) == 2 {
            repeated += 1
        }
        if counts.count > 4 * capacity { reduce(to: capacity) }
    }

    /// Adds the counts of `other`, key by key.
    mutating func absorb(_ other: KeyedCounts) {
        for (key, count) in other.counts {
            let before = counts[key]?.attempts ?? 0
            counts[key, default: Count()].absorb(count)
            if before < 2, before + count.attempts >= 2 { repeated += 1 }
            if counts.count > 4 * capacity { reduce(to: capacity) }
        }
    }

    /// Misra–Gries: when there are more than `capacity` keys, every count is lowered by the
    /// (capacity + 1)-th largest number of attempts, and the keys left with none are
    /// dropped, so at most `capacity` remain. A count is then never more than the attempts
    /// it counts, and never less by more than all the attempts / (capacity + 1); a key seen
    /// once among thousands is dropped, a burst from one key is kept.
    mutating func reduce(to capacity: Int) {
        guard counts.count > capacity else { return }
        // Mostly a crowd of keys seen once each: none is left.
        guard repeated > 0 else {
            counts.removeAll(keepingCapacity: true)
            return
        }
        let cut = AttemptTally.cut(counts.values.map { $0.attempts }, keeping: capacity)
        var kept = [Key: Count](minimumCapacity: counts.capacity)
        repeated = 0
        for (key, count) in counts where count.attempts > cut {
            let lowered = count.lowered(by: cut)
            kept[key] = lowered
            if lowered.attempts > 1 { repeated += 1 }
        }
        counts = kept
    }
}

/// A requester in a bucket.
private struct RequesterKey: Hashable {
    let bucket: Int64
    let address: AddressKey
}

/// An agent or a user in a bucket, compared byte for byte.
private struct TextKey: Hashable {
    let bucket: Int64
    let text: ExactText
}

/// What a tally counts of one key.
struct Count: Sendable {
    private(set) var attempts: Int64 = 0
    private var declined: Int64 = 0
    private var scripted: Int64 = 0
    private var agentless: Int64 = 0
    /// For an agent, its script name (nil: a browser); for a requester or user, the first
    /// script name seen on its attempts.
    private(set) var script: String?
    /// The users behind a requester's or an agent's attempts.
    private var users = UserSample()

    init() {}

    /// An agent's count, with the script name it gives away.
    init(script: String?) {
        self.script = script
    }

    /// An attempt of the user whose hash (`UserSample.hash(of:)`) is `userHash`, if its
    /// users are counted.
    mutating func add(declined: Bool, userHash: Int64?) {
        attempts += 1
        if declined { self.declined += 1 }
        if let userHash { add(userHash: userHash) }
    }

    mutating func add(userHash: Int64) {
        users.insert(hash: userHash)
    }

    /// Returns the attempts counted now.
    @discardableResult
    mutating func add(declined: Bool, script: String?, agentless: Bool, userHash: Int64?) -> Int64 {
        add(declined: declined, userHash: userHash)
        if let script {
            scripted += 1
            if self.script == nil { self.script = script }
        }
        if agentless { self.agentless += 1 }
        return attempts
    }

    /// Adds the counts of `other`, of the same key; the first script name seen stays.
    mutating func absorb(_ other: Count) {
        attempts += other.attempts
        declined += other.declined
        scripted += other.scripted
        agentless += other.agentless
        if script == nil { script = other.script }
        users.formUnion(other.users)
    }

    /// Every count lowered by `cut` (not below 0), as `KeyedCounts.reduce` does.
    func lowered(by cut: Int64) -> Count {
        var lowered = self
        lowered.attempts -= cut
        lowered.declined = max(0, declined - cut)
        lowered.scripted = max(0, scripted - cut)
        lowered.agentless = max(0, agentless - cut)
        return lowered
    }

    func counter(_ kind: SuspectKind, _ value: String, _ bucket: Int64, ofAgent: Bool = false) -> AttemptCounter {
        AttemptCounter(kind: kind, value: value, bucket: Instant(milliseconds: bucket), attempts: attempts,
                       declined: declined, scripted: scripted, agentless: agentless, script: ofAgent ? nil : script,
                       users: users)
    }
}
