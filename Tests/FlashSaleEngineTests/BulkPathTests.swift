import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport

/// The bulk fast paths (a run of rejections in one statement, key-less requests enqueued
/// many at a time, consecutive bookings decided in one `DecisionGroup` transaction) must
/// decide exactly as one request at a time does. Each case is a random sale day drawn from
/// its seed, played on two new databases of the same store, one engine with the bulk paths
/// and one without: every outcome, request, booking, counter and event must come out the
/// same.
@Suite struct BulkPathTests {
    /// 200 cases, in four shares that run side by side.
    static let shares: [Range<UInt64>] = stride(from: 0, to: 200, by: 50).map { $0..<($0 + 50) }

    @Test(arguments: stores, shares) func theBulkPathsDecideAsOneAtATimeDoes(_ kind: StoreKind, cases: Range<UInt64>) async throws {
        // FLASHSALE_TEST_SEED replays one case, as a failure names it.
        let replay = ProcessInfo.processInfo.environment["FLASHSALE_TEST_SEED"].flatMap { UInt64($0) }
        let seeds = replay.map { cases.lowerBound == 0 ? [$0] : [] } ?? cases.map { 0x5EED_0000 + $0 }
        // Minutes of synchronous round trips on PostgreSQL.
        if let parting = try await onOwnThread({ try BulkPathTests.firstParting(kind, seeds: seeds) }) {
            Issue.record(Comment(rawValue: parting))
        }
    }

    /// Where the two replays of the first seed that tells them apart part, or nil.
    private static func firstParting(_ kind: StoreKind, seeds: [UInt64]) throws -> String? {
        for seed in seeds {
            let day = try SaleDay(seed: seed)
            let fast = try Replay(kind, bulkPaths: true).play(day)
            let slow = try Replay(kind, bulkPaths: false).play(day)
            let lines = 0..<max(fast.count, slow.count)
            if let line = lines.first(where: { $0 >= fast.count || $0 >= slow.count || fast[$0] != slow[$0] }) {
                return """
                    seed \(seed) (replay: FLASHSALE_TEST_SEED=\(seed) swift test --filter BulkPathTests): they part at
                      bulk: \(line < fast.count ? fast[line] : "(nothing)")
                      slow: \(line < slow.count ? slow[line] : "(nothing)")
                    after:
                    \(fast[..<line].suffix(12).joined(separator: "\n"))
                    the day:
                    \(day)
                    """
            }
        }
        return nil
    }
}

extension SplitMix64 {
    /// A number in 0..<n.
    mutating func below(_ n: Int) -> Int {
        Int(next() % UInt64(n))
    }

    /// True once in `n` times.
    mutating func oneIn(_ n: Int) -> Bool {
        below(n) == 0
    }

    mutating func pick<T>(_ choices: [T]) -> T {
        choices[below(choices.count)]
    }
}

/// One random sale day: one or two small sales, then submits (single and whole files),
/// direct bookings, confirms, cancels, operator commands, restocks, sweeps, blocks and
/// processing, each at a clock that mostly moves forward (sometimes back), from few users
/// and keys so that they repeat and collide. It ends by draining every line.
struct SaleDay: CustomStringConvertible {
    enum Step {
        case createSale(SaleDefinition)
        case submit(BookingRequest)
        case submitFile(SaleID, [ReadOutcome], skipInvalid: Bool)
        /// A request queued through the store alone, whose key may be another user's
        /// booking's: what versions before one key space per sale could leave in a line.
        case plant(BookingRequest)
        case book(BookingRequest)
        /// The `nth` booking of the sale, counted round its bookings.
        case confirm(SaleID, nth: Int, byItsUser: Bool)
        case cancel(SaleID, nth: Int, force: Bool)
        case change(SaleID, OperatorCommand)
        case seed(SaleID, count: Int64, exactly: Bool)
        case sweep(SaleID?)
        case block(Block)
        case unblock(Block)
        case process(SaleID, batch: Int64)
    }

    let seed: UInt64
    private(set) var steps: [(at: Instant, step: Step)] = []

    init(seed: UInt64) throws {
        self.seed = seed
        var random = SplitMix64(seed: seed)
        var sales: [SaleID] = []
        for id in random.oneIn(2) ? ["s1", "s2"] : ["s1"] {
            let sale = SaleID(trusted: id)
            sales.append(sale)
            let definition = try SaleDefinition(
                id: sale, name: nil, inventory: Int64(random.below(4)), hold: .seconds(random.pick([60, 120, 300])),
                perUser: Int64(1 + random.below(2)), perIP: random.oneIn(6) ? Int64(1 + random.below(2)) : nil,
                waitlist: random.oneIn(3), startsAt: random.oneIn(6) ? minutes(1) : T,
                endsAt: random.oneIn(4) ? minutes(Int64(3 + random.below(10))) : nil)
            steps.append((T, .createSale(definition)))
        }
        var clock = T
        // Few users, addresses (two of them one address spelt two ways), agents and keys.
        // Submits use keys k0-k3; direct bookings those and b0-b2, which plants reuse.
        func request(_ random: inout SplitMix64, keys: [String] = ["k0", "k1", "k2", "k3"]) -> BookingRequest {
            BookingRequest(sale: random.pick(sales), user: "u\(random.below(5))",
                           ip: random.oneIn(3) ? random.pick(["203.0.113.7", "203.0.113.8", "2001:db8::1", "2001:db8:0::1"]) : nil,
                           userAgent: random.oneIn(5) ? random.pick(["Mozilla/5.0", "curl/8.5", "python-requests/2.31"]) : nil,
                           key: random.oneIn(3) ? random.pick(keys) : nil)
        }
        var plantable: Set = ["b0", "b1", "b2"]
        func block(_ random: inout SplitMix64, at now: Instant) throws -> Block {
            let (kind, value, contains) = random.pick([(BlockKind.user, "u\(random.below(5))", false),
                                                       (.agent, "curl", true), (.ip, "203.0.113.0/24", false),
                                                       (.ip, "2001:db8::1", false)])
            return try Block(kind: kind, value: value, contains: contains, sale: random.oneIn(2) ? random.pick(sales) : nil,
                              reason: nil, createdAt: now)
        }
        for _ in 0..<(15 + random.below(30)) {
            switch random.below(20) {
            case 0..<10: break
            case 10..<14: clock = clock.adding(Span(milliseconds: Int64(1 + random.below(999))))
            case 14..<17: clock = clock.adding(.seconds(Int64(1 + random.below(90))))
            case 17..<19: clock = clock.adding(.seconds(random.pick([60, 120, 300])))
            default: clock = clock.adding(Span(milliseconds: -Int64(random.below(120_000))))
            }
            let step: Step
            switch random.below(100) {
            case 0..<25:
                step = .submit(request(&random))
            case 25..<33:
                let count = random.oneIn(4) ? 40 + random.below(110) : 1 + random.below(12)
                let malformed = random.oneIn(8) ? random.below(count) : nil
                let records: [ReadOutcome] = (0..<count).map { index in
                    let line = index + 1
                    if index == malformed { return .malformed(line: line, reason: "user is missing") }
                    let made = request(&random)
                    return .record(RequestRecord(line: line, user: made.user.text, ip: made.ip, userAgent: made.userAgent,
                                                 key: random.oneIn(6) ? made.key : nil))
                }
                step = .submitFile(random.pick(sales), records, skipInvalid: random.oneIn(2))
            case 33..<45:
                step = .book(request(&random, keys: ["k0", "k1", "k2", "k3", "b0", "b1", "b2"]))
            case 45..<67:
                step = .process(random.pick(sales), batch: random.pick([1, 2, 3, 5, 10_000]))
            case 67..<74:
                step = .confirm(random.pick(sales), nth: random.below(8), byItsUser: random.oneIn(2))
            case 74..<81:
                step = .cancel(random.pick(sales), nth: random.below(8), force: random.oneIn(3))
            case 81..<85:
                step = .change(random.pick(sales), random.pick([.pause, .resume, .resume, .close]))
            case 85..<89:
                let exactly = random.oneIn(3)
                step = .seed(random.pick(sales), count: Int64(random.below(exactly ? 5 : 3)), exactly: exactly)
            case 89..<92:
                step = .sweep(random.oneIn(2) ? random.pick(sales) : nil)
            case 92..<95:
                step = .block(try block(&random, at: clock))
            case 95..<97:
                step = .unblock(try block(&random, at: clock))
            default:
                // One request per key and sale: a key is planted once.
                guard let key = plantable.sorted().first(where: { _ in random.oneIn(2) }) else { continue }
                plantable.remove(key)
                let planted = request(&random)
                step = .plant(BookingRequest(sale: planted.sale, user: planted.user, ip: planted.ip,
                                             userAgent: planted.userAgent, key: key))
            }
            steps.append((clock, step))
        }
        // Drain every line now, and again once every hold has run out.
        for later in [clock, clock.adding(.seconds(600))] {
            for sale in sales {
                steps.append((later, .process(sale, batch: 10_000)))
            }
        }
    }

    var description: String {
        steps.map { "  \($0.at.milliseconds - T.milliseconds) ms: \($0.step)" }.joined(separator: "\n")
    }
}

/// Plays a sale day on a new database and writes down everything that can be seen of it.
/// With the bulk paths, consecutive bookings of one sale go through one `DecisionGroup`, as
/// `book --stream` takes them, committed before any other step; without, each is a `book`.
struct Replay {
    private let f: Fixture
    private let streams: Bool

    /// Booking ids in the order bookings are made, the same on both databases, so that
    /// everything that sorts or names bookings by id comes out comparable.
    init(_ kind: StoreKind, bulkPaths: Bool) throws {
        streams = bulkPaths
        var made = 0
        f = try Fixture(kind, bulkPaths: bulkPaths) { _ in
            made += 1
            return BookingID(trusted: "bk_\(made)")
        }
    }

    /// One line per step (its outcome, and after processing the sales' counters), then
    /// every sale, booking, request and event as they are at the end. Neither an internal
    /// error nor a violation that verify finds may come up on the way: either is thrown
    /// (the replay runs off the test's task, where `#expect` would go unattributed).
    func play(_ day: SaleDay) throws -> [String] {
        var seen: [String] = []
        var lastRequest: Int64 = 0
        var lastClock = T
        var stream: DecisionGroup?
        for (index, (at, step)) in day.steps.enumerated() {
            lastClock = max(lastClock, at)
            var outcome = ""
            let error = failure {
                if case .book(let request) = step, streams {
                    outcome = try book(request, at: at, in: &stream)
                    return
                }
                try stream?.commit()
                stream = nil
                outcome = try perform(step, at: at, lastRequest: &lastRequest)
            }
            if let error {
                guard error.exitCode != 1 else { throw Failed("seed \(day.seed), step \(index) \(step): \(error)") }
                outcome = "exit \(error.exitCode): \(error.message)"
            }
            seen.append("\(index) \(step) -> \(outcome)")
        }
        try stream?.commit()
        for sale in try f.engine.sales(clock: lastClock) {
            seen.append("\(sale.sale) \(sale.state) overdue \(sale.overdue) queued \(sale.queued)")
            seen += try f.engine.bookings(of: sale.sale.id, status: nil, user: nil, clock: lastClock).map { "\($0)" }
        }
        for sale in try f.engine.metrics(of: nil, clock: lastClock) {
            let declined = AttemptTotals.declineCodes.map { "\($0.rawValue) \(sale.attempts.declined[$0] ?? 0)" }
            seen.append("\(sale.status.sale.id) attempts \(sale.attempts.attempts), declined \(declined)")
        }
        for id in 1..<(lastRequest + 1) {
            var request = ""
            if let error = failure({ request = "\(try f.request(RequestID(id)))" }) {
                request = "request \(id): exit \(error.exitCode)"
            }
            seen.append(request)
        }
        let log = try f.events()
        seen += log.map { "\($0)" }
        try readInPages(log, seed: day.seed)
        let violations = try f.violations(at: lastClock)
        guard violations.isEmpty else { throw Failed("seed \(day.seed): verify found \(violations)") }
        return seen
    }

    /// The log read three events at a time, and each sale's alone, is the log: pages start
    /// and end inside runs of rejections, which a store may keep as one row each.
    private func readInPages(_ log: [Event], seed: UInt64) throws {
        var paged: [Event] = []
        while true {
            let page = try f.engine.events(after: paged.last?.seq ?? 0, sale: nil, limit: 3)
            paged += page
            if page.count < 3 { break }
        }
        guard paged == log else { throw Failed("seed \(seed): the log read in pages of 3 is not the log") }
        for sale in Set(log.map(\.sale)) where sale != "*" {
            let ofSale = try f.engine.events(after: 0, sale: SaleID(sale), limit: .max)
            guard ofSale == log.filter({ $0.sale == sale }) else { throw Failed("seed \(seed): sale \(sale)'s log is not its part of the log") }
        }
    }

    /// A booking through the open group (opening one if needed), written down as `book`
    /// would answer: the booking, or the refusal it throws.
    private func book(_ request: BookingRequest, at now: Instant, in stream: inout DecisionGroup?) throws -> String {
        let open = stream ?? DecisionGroup(engine: f.engine)
        stream = open
        switch try open.book(request, clock: now) {
        case .held(let booking), .repeated(let booking): return "\(booking)"
        case .declined(let decline): throw SaleError.declined(decline)
        case .refused(let refusal): throw refusal
        }
    }

    private func perform(_ step: SaleDay.Step, at now: Instant, lastRequest: inout Int64) throws -> String {
        let engine = f.engine
        switch step {
        case .createSale(let definition):
            return "\(try engine.createSale(definition, clock: now).sale)"
        case .submit(let request):
            let outcome = try engine.submit(request, clock: now)
            lastRequest = max(lastRequest, outcome.id.value)
            return "\(outcome)"
        case .submitFile(let sale, let records, let skipInvalid):
            var next = records[...]
            var skipped: [Int] = []
            let report = try engine.submit(to: sale, clock: now, skipping: skipInvalid ? { line, _ in skipped.append(line) } : nil) {
                next.popFirst()
            }
            lastRequest = max(lastRequest, report.lastID?.value ?? 0)
            return "enqueued \(report.enqueued) repeated \(report.repeated) ids \(String(describing: report.firstID))..."
                + "\(String(describing: report.lastID)) skipped \(skipped)"
        case .plant(let request):
            let id = try f.store.write { try $0.enqueue(request, at: now) }
            lastRequest = max(lastRequest, id.value)
            return "\(id)"
        case .book(let request):
            return "\(try engine.book(request, clock: now))"
        case .confirm(let sale, let nth, let byItsUser):
            guard let booking = try nthBooking(nth, of: sale, at: now) else { return "no booking" }
            return "\(try engine.confirm(booking.id, in: sale, user: byItsUser ? booking.user : nil, clock: now))"
        case .cancel(let sale, let nth, let force):
            guard let booking = try nthBooking(nth, of: sale, at: now) else { return "no booking" }
            return "\(try engine.cancel(booking.id, in: sale, user: nil, force: force, clock: now))"
        case .change(let sale, let command):
            return "\(try engine.change(sale, by: command, clock: now).state)"
        case .seed(let sale, let count, let exactly):
            return "\(try engine.seedInventory(sale, count: count, exactly: exactly, clock: now).sale.counters)"
        case .sweep(let sale):
            return "\(try engine.sweep(sale, limit: nil, dryRun: false, clock: now).expired)"
        case .block(let block):
            return "\(try engine.addBlock(block, clock: now))"
        case .unblock(let block):
            try engine.removeBlock(block, clock: now)
            return "removed"
        case .process(let sale, let batch):
            let report = try engine.processBatch(of: sale, batch: batch, clock: now)
            let status = try engine.status(sale, clock: now)
            return "accepted \(report.accepted) rejected \(report.rejected) waiting \(report.waiting); "
                + "\(status.sale.counters) overdue \(status.overdue) queued \(status.queued)"
        }
    }

    private func nthBooking(_ nth: Int, of sale: SaleID, at now: Instant) throws -> Booking? {
        let bookings = try f.engine.bookings(of: sale, status: nil, user: nil, clock: now)
        return bookings.isEmpty ? nil : bookings[nth % bookings.count]
    }
}

extension SaleDay.Step: CustomStringConvertible {
    var description: String {
        switch self {
        case .createSale(let d):
            return "create-sale \(d.id) --inventory \(d.inventory) --hold \(d.hold) --per-user \(d.perUser)"
                + (d.perIP.map { " --per-ip \($0)" } ?? "") + (d.waitlist ? " --waitlist" : "")
                + " --starts \(d.startsAt)" + (d.endsAt.map { " --ends \($0)" } ?? "")
        case .submit(let request): return "submit \(Self.words(request))"
        case .submitFile(let sale, let records, let skipInvalid):
            let lines = records.map { outcome in
                switch outcome {
                case .record(let r): [r.user, r.ip, r.userAgent, r.key].map { $0 ?? "" }.joined(separator: ",")
                case .malformed(let line, _): "(line \(line) malformed)"
                case .malformedHeader(let line, _): "(header on line \(line) malformed)"
                }
            }
            return "submit \(sale) --file [\(lines.joined(separator: " "))]" + (skipInvalid ? " --skip-invalid" : "")
        case .plant(let request): return "plant \(Self.words(request))"
        case .book(let request): return "book \(Self.words(request))"
        case .confirm(let sale, let nth, let byItsUser): return "confirm \(sale) booking #\(nth)" + (byItsUser ? " --user" : "")
        case .cancel(let sale, let nth, let force): return "cancel \(sale) booking #\(nth)" + (force ? " --force" : "")
        case .change(let sale, let command): return "\(command.rawValue) \(sale)"
        case .seed(let sale, let count, let exactly): return "seed-inventory \(sale) \(count)" + (exactly ? " --set" : "")
        case .sweep(let sale): return "sweep" + (sale.map { " \($0)" } ?? "")
        case .block(let block): return "block \(Self.words(block))"
        case .unblock(let block): return "unblock \(Self.words(block))"
        case .process(let sale, let batch): return "process \(sale) --batch \(batch)"
        }
    }

    private static func words(_ block: Block) -> String {
        "\(block.kind.rawValue) \(block.value)" + (block.contains ? " --contains" : "") + (block.sale.map { " --sale \($0)" } ?? "")
    }

    private static func words(_ request: BookingRequest) -> String {
        "\(request.sale) \(request.user)" + (request.ip.map { " --ip \($0)" } ?? "")
            + (request.userAgent.map { " --user-agent \($0)" } ?? "") + (request.key.map { " --key \($0)" } ?? "")
    }
}
