import FlashSaleCore

/// The durable FIFO queue: `submit` puts requests in a sale's line, `process` decides them
/// from the head, each exactly once, with the decision `book` would take.
extension Engine {
    // MARK: - Submit

    public enum SubmitOutcome: Equatable, Sendable {
        case queued(RequestID)
        /// The request's key was seen before in this sale: its first request id.
        case repeated(RequestID)

        public var id: RequestID {
            switch self {
            case .queued(let id), .repeated(let id): id
            }
        }
    }

    /// `submit SALE USER`: enqueue one request durably. A queued request counts as an
    /// attempt when it is submitted, the time its requester acted, which is what tells a
    /// burst; `process` counts its decline, if it declines it.
    public func submit(_ request: BookingRequest, clock: Instant) throws -> SubmitOutcome {
        try write(inSale: request.sale) { try submit(request, clock: clock, $0) }
    }

    /// `submit` inside the caller's write transaction.
    func submit(_ request: BookingRequest, clock: Instant, _ transaction: any StoreTransaction) throws -> SubmitOutcome {
        let sale = try transaction.requireSale(request.sale)
        let now = sale.decisionTime(clock: clock)
        let outcome = try enqueue(request, transaction, at: now)
        var attempts = AttemptTally()
        attempts.add(user: request.user, ip: request.ip, userAgent: request.userAgent, declined: nil, at: now)
        try transaction.addAttempts(attempts, of: sale.id)
        // A repeated key queues nothing, and moves the sale's time no more than a decline
        // does: from a host whose clock ran an hour ahead, a safe retry expired every live
        // hold of the sale (found by probing).
        if case .queued = outcome { try transaction.raiseHighWater(of: sale.id, to: now) }
        return outcome
    }

    public struct SubmitReport: Sendable {
        public var enqueued: Int64 = 0
        public var repeated: Int64 = 0
        public var firstID: RequestID?
        public var lastID: RequestID?
        /// Malformed records left out, each told to `submit`'s `skipping` as it was found.
        public var skipped: Int64 = 0

        mutating func add(_ ids: ClosedRange<RequestID>) {
            enqueued += ids.upperBound.value - ids.lowerBound.value + 1
            firstID = firstID ?? ids.lowerBound
            lastID = ids.upperBound
        }
    }

    /// One key, one request: the same key again is the first request; another user's is
    /// refused, whether it came by `submit` or by `book`.
    func enqueue(_ request: BookingRequest, _ transaction: any StoreTransaction, at now: Instant) throws -> SubmitOutcome {
        if let first = try firstRequest(sharingKeyOf: request, transaction) { return .repeated(first) }
        return .queued(try transaction.enqueue(request, at: now))
    }

    /// The stored request whose key `request` gives again; nil when it gives none, or one
    /// new to the sale. A key another user gave first, to a request or a booking, is refused.
    func firstRequest(sharingKeyOf request: BookingRequest, _ transaction: any StoreTransaction) throws -> RequestID? {
        guard let key = request.key else { return nil }
        if let first = try transaction.request(withKey: key, in: request.sale) {
            if let refusal = refusal(of: key, ownedBy: first.user, to: request) { throw refusal }
            return first.id
        }
        if let refusal = try refusal(of: key, ownedBy: transaction.booking(withKey: key, in: request.sale)?.user, to: request) {
            throw refusal
        }
        return nil
    }

    // MARK: - Process

    public struct ProcessReport: Sendable {
        public var accepted: Int64 = 0
        public var rejected: Int64 = 0
        /// Sales whose head of line waits: for a held item to come back (waitlist), or for
        /// the sale to open or resume.
        public var waiting: [SaleID] = []

        public var decided: Int64 { accepted + rejected }

        public init() {}
    }

    /// Decides up to `batch` queued requests of one sale, oldest first, in one transaction:
    /// each exactly once, as if one at a time. Stops early at a request that must wait
    /// (waitlist), and decides nothing while the sale is scheduled or paused.
    /// Its COMMIT unanswered (`UnansweredBatch`), a batch may stand or not.
    public func processBatch(of saleID: SaleID, batch: Int64, clock: Instant) throws -> ProcessReport {
        var decided = ProcessReport()
        var lastHold: BookingID?
        var cursor: RequestID?
        do {
            return try store.write { transaction in
                // Run again after a conflict: what an attempt rolled back is no witness
                // (review).
                (decided, lastHold, cursor) = (ProcessReport(), nil, nil)
                var line = try Line(sale: transaction.requireSale(saleID), transaction: transaction)
                let now = line.sale.decisionTime(clock: clock)
                var report = ProcessReport()
                if Rules.queueWaits(line.sale, at: now) {
                    report.waiting.append(saleID)
                    return report
                }
                let facts = TransactionFacts()
                try decide(&line, batch: batch, at: now, facts: facts, into: &report, lastHold: &lastHold)
                try facts.writeCounters(of: saleID, to: transaction)
                if report.decided > 0 {
                    try transaction.moveLineCursor(of: saleID, to: line.cursor, at: now)
                    cursor = line.cursor
                }
                decided = report
                return report
            }
        } catch {
            guard case .commitUnanswered? = StoreFailure.of(error) else { throw error }
            let witness: CommitWitness = if let lastHold { .hold(lastHold, in: saleID) }
                else if let cursor { .lineCursor(cursor, of: saleID) } else { .none }
            throw UnansweredBatch(report: decided, witness: witness, cause: error)
        }
    }

    /// A batch whose COMMIT went unanswered (the connection lost once it was sent), and
    /// what it decided, had it committed: a follower that goes on counts that once the
    /// engine says it stands (`stands(_:)`), where before the batch was neither counted
    /// nor decided again, and `--limit` was passed by it (found by probing). It fails a
    /// command as its cause does.
    public struct UnansweredBatch: StoreError {
        public let report: ProcessReport
        /// What shows that it stands: its last hold, else its line cursor.
        let witness: CommitWitness
        public let cause: any Error

        public var failure: StoreFailure? { StoreFailure.of(cause) }
    }

    /// One sale's line inside a write transaction: the sale as committed so far, and the
    /// last request decided.
    struct Line {
        var sale: Sale
        var cursor: RequestID
        let transaction: any StoreTransaction

        init(sale: Sale, transaction: any StoreTransaction) throws {
            self.sale = sale
            self.transaction = transaction
            cursor = try transaction.lineCursor(of: sale.id)
        }

        mutating func reject(_ id: RequestID, user: UserID, reason: String, at now: Instant) throws {
            try transaction.appendEvent(NewEvent(at: now, sale: sale.id.text, kind: .rejected, user: user, request: id,
                                                 detail: reason))
            cursor = id
        }
    }

    /// Decides up to `batch` requests from the head of the sale's line: one by one while
    /// someone could get an item, then as a run once nobody can, except a request whose key
    /// already has a booking, which gets that booking. The requests decided one by one are
    /// read `rowsAtOnce` at a time (without the bulk paths, one): queued requests never
    /// change, and nobody else can add to the line while this transaction holds the write lock.
    private func decide(_ line: inout Line, batch: Int64, at now: Instant, facts: TransactionFacts,
                        into report: inout ProcessReport, lastHold: inout BookingID?) throws {
        let transaction = line.transaction
        var ahead: ArraySlice<(RequestID, BookingRequest)> = []
        while report.decided < batch {
            if bulkPaths, let reasons = try reasonsIfNobodyCanHold(line.sale, transaction, at: now, facts: facts) {
                let run = try transaction.rejectableRun(of: line.sale.id, after: line.cursor, limit: batch - report.decided)
                if let last = run.last {
                    let rejected = try transaction.rejectRun(
                        of: line.sale.id, after: line.cursor, through: last, atLimit: reasons.atLimit,
                        otherwise: reasons.otherwise, perUser: line.sale.perUser, at: now)
                    facts.countRejected(reasons.atLimit.code, count: rejected.atLimit)
                    facts.countRejected(reasons.otherwise.code, count: rejected.otherwise)
                    report.rejected += rejected.atLimit + rejected.otherwise
                    line.cursor = last
                    ahead = []
                    // A store may end a run sooner than asked: the next run goes on from it.
                    if !run.stoppedAtKey { continue }
                } else if !run.stoppedAtKey {
                    return
                }
            }
            if ahead.isEmpty {
                let limit = bulkPaths ? min(Int64(transaction.rowsAtOnce), batch - report.decided) : 1
                ahead = try transaction.lineHeads(of: line.sale.id, after: line.cursor, limit: limit)[...]
                try readAhead(for: ahead.lazy.map(\.1), in: line.sale, transaction, at: now)
            }
            guard let (id, request) = ahead.popFirst() else { return }
            switch try decide(request, in: &line.sale, transaction, at: now, fromQueue: id, facts: facts) {
            case .decided(.held(let booking)):
                // The hold's 'held' event names the request: that event is its decision.
                lastHold = booking.id
                line.cursor = id
                report.accepted += 1
            case .decided(.repeated(let booking)):
                try transaction.appendEvent(NewEvent(at: now, sale: line.sale.id.text, kind: .accepted, booking: booking.id,
                                                     user: request.user, request: id))
                line.cursor = id
                report.accepted += 1
            case .decided(.declined(let decline)):
                try line.reject(id, user: request.user, reason: decline.reason.rawValue, at: now)
                report.rejected += 1
            case .decided(.refused(let refusal)):
                // Its key belongs to another user's booking: refused before anything was
                // written, and rejected with the refusal's code (conflict).
                try line.reject(id, user: request.user, reason: refusal.code.rawValue, at: now)
                report.rejected += 1
            case .waiting:
                report.waiting.append(line.sale.id)
                return
            }
        }
    }

    /// When no queued request of this sale can get an item now, whoever asks, the reasons
    /// each is rejected with (by `Rules.declineWhenNobodyCanHold`); else nil. Then the rest
    /// of a batch is decided as one run instead of one request at a time.
    private func reasonsIfNobodyCanHold(_ sale: Sale, _ transaction: any StoreTransaction, at now: Instant,
                                        facts: TransactionFacts) throws -> (atLimit: DeclineReason, otherwise: DeclineReason)? {
        // Block lists and the per-IP limit come before the user limit and sold out in the
        // order of checks: with either in force, every request is decided on its own.
        let blocks = try facts.blocks { try transaction.blocks(applyingTo: sale.id) }
        if sale.perIP != nil || !blocks.isEmpty { return nil }
        return try Rules.declineWhenNobodyCanHold(
            sale, at: now,
            hasOverdueHold: { try facts.hasOverdueHold(at: now) { try transaction.earliestHoldExpiry(in: sale.id) } })
    }

    /// The sales that have queued requests, in id order.
    public func salesWithQueue() throws -> [SaleID] {
        try store.read { try $0.salesWithQueuedRequests() }
    }

    /// The earliest time after `clock` at which a sale with queued requests (`sale` alone,
    /// if given) opens or ends: its queue may then be decided, or must be rejected, though
    /// nothing was committed to say so. nil if none will.
    public func nextQueueStateChange(in sale: SaleID?, clock: Instant) throws -> Instant? {
        try store.read { reading in
            try (sale.map { [$0] } ?? reading.salesWithQueuedRequests()).compactMap { id in
                let sale = try reading.requireSale(id)
                return sale.nextTimedStateChange(after: sale.decisionTime(clock: clock))
            }.min()
        }
    }

    /// Whether a hold of the sale is overdue at its decision time: an item may come back
    /// to a line that waits for one.
    public func hasOverdueHold(_ saleID: SaleID, clock: Instant) throws -> Bool {
        try store.read { reading in
            let now = try reading.requireSale(saleID).decisionTime(clock: clock)
            return try reading.earliestHoldExpiry(in: saleID).map { Rules.isExpired(expiresAt: $0, at: now) } ?? false
        }
    }
}
