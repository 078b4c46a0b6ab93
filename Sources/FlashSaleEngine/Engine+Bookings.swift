import FlashSaleCore

/// What became of one booking request, on every path: `book`, `book --stream`, `process`
/// and `serve`.
public enum BookingOutcome: Sendable {
    /// A new hold.
    case held(Booking)
    /// The request's key was seen before: its first booking, unchanged.
    case repeated(Booking)
    case declined(Decline)
    /// Refused before anything was written, for a reason of its own (a key another user
    /// used): a stream or a queue goes on with the next request.
    case refused(SaleError)
}

extension Engine {
    /// `book`: one transaction decides. A decline writes nothing but its attempt's count,
    /// which is committed as telemetry, so costs no sync, and is lost rather than the
    /// decline when the database cannot take it (found by probing: on a full disk, sold
    /// out was exit 74). A hold or its key's booking comes back; a decline or a refusal is
    /// thrown.
    public func book(_ request: BookingRequest, clock: Instant) throws -> Booking {
        let outcome: BookingOutcome = try namingMissingSale(request.sale) { try store.retryingConflicts {
            let transaction = try store.beginWrite()
            do {
                try readAhead(for: request, transaction, at: clock)
                var sale = try transaction.requireSale(request.sale)
                let now = sale.decisionTime(clock: clock)
                let facts = TransactionFacts()
                let outcome = try decideDirect(request, in: &sale, transaction, at: now, facts: facts)
                do {
                    try facts.writeCounters(of: sale.id, to: transaction)
                    try transaction.commit(facts.commitContent)
                } catch where facts.commitContent == .telemetryOnly && StoreFailure.of(error)?.refusedTheWrite == true {
                    transaction.rollback()
                }
                return outcome
            } catch {
                transaction.rollback()
                throw error
            }
        } }
        switch outcome {
        case .held(let booking), .repeated(let booking): return booking
        case .declined(let decline): throw SaleError.declined(decline)
        case .refused(let error): throw error
        }
    }

    /// `decide` for a direct booking (`book`, `book --stream`), which never waits: only a
    /// queued request keeps its place in a waitlisted sale.
    func decideDirect(_ request: BookingRequest, in sale: inout Sale, _ transaction: any StoreTransaction,
                      at now: Instant, facts: TransactionFacts) throws -> BookingOutcome {
        switch try decide(request, in: &sale, transaction, at: now, fromQueue: nil, facts: facts) {
        case .decided(let outcome): return outcome
        case .waiting: throw FlashSaleError.internalFailure("a direct booking was told to wait")
        }
    }

    /// A decision, or for the head of a waitlisted sale's line, none yet.
    enum Decision {
        case decided(BookingOutcome)
        /// Leave the request in the queue until an item comes back.
        case waiting

        /// For a decision, the code it declined with (`.some(nil)`: none, an item held).
        var declineCode: ErrorCode?? {
            switch self {
            case .decided(.held), .decided(.repeated): .some(nil)
            case .decided(.declined(let decline)): decline.reason.code
            case .decided(.refused(let refusal)): refusal.code
            case .waiting: nil
            }
        }
    }

    /// Decides one request inside the caller's write transaction: the one decision that
    /// `book`, `book --stream` and `process` share. `sale` must be as written so far in
    /// this transaction, and is left so: the next decision needs no read of it. The change
    /// a hold makes to the sale's counters waits in `facts` (with the bulk paths), which the
    /// caller writes before it commits, and so does the attempt's count. `requestID` is the
    /// queued request being decided, or nil for a direct booking. A key makes either
    /// idempotent: the booking it already has is the answer, whichever path made it.
    func decide(_ request: BookingRequest, in sale: inout Sale, _ transaction: any StoreTransaction, at now: Instant,
                fromQueue requestID: RequestID?, facts: TransactionFacts) throws -> Decision {
        let decision = try decideUncounted(request, in: &sale, transaction, at: now, fromQueue: requestID, facts: facts)
        if let declined = decision.declineCode {
            facts.count(request, declined: declined, fromQueue: requestID != nil, at: now)
        }
        return decision
    }

    private func decideUncounted(_ request: BookingRequest, in sale: inout Sale, _ transaction: any StoreTransaction,
                                 at now: Instant, fromQueue requestID: RequestID?, facts: TransactionFacts) throws -> Decision {
        if let key = request.key {
            if let first = try transaction.booking(withKey: key, in: sale.id) {
                if let refusal = refusal(of: key, ownedBy: first.user, to: request) { return .decided(.refused(refusal)) }
                return .decided(.repeated(first.seen(at: now)))
            }
            // A queued request's key is its user's too, before it has a booking.
            if requestID == nil, let refusal = try refusal(of: key, ownedBy: transaction.request(withKey: key, in: sale.id)?.user,
                                                           to: request) {
                return .decided(.refused(refusal))
            }
        }
        let admission = try Rules.admit(
            sale, at: now, fromQueue: requestID != nil,
            blockedBecause: { try blockedBecause(request, in: sale, transaction, at: now, counted: requestID != nil,
                                                 facts: facts) },
            activeBookings: { try transaction.activeBookings(of: request.user, in: sale.id, at: now) },
            hasOverdueHold: { try facts.hasOverdueHold(at: now) { try transaction.earliestHoldExpiry(in: sale.id) } },
            isLineWaiting: { try facts.isLineWaiting { try transaction.queuedRequests(in: sale.id) > 0 } })
        switch admission {
        case .decline(let decline):
            return .decided(.declined(decline))
        case .wait:
            return .waiting
        case .reclaimOverdueHold:
            // move() writes the counters at once, on top of the row: the row gets this
            // transaction's holds first, and is read back after (a reclaim is rare).
            try facts.writeCounters(of: sale.id, to: transaction)
            try expireOverdueHolds(of: sale, in: transaction, at: now, limit: 1, by: requestID == nil ? .book : .process)
            sale = try transaction.requireSale(sale.id)
        case .hold:
            break
        }
        facts.holdsChanged()
        let hold = try insertHold(request, sale: sale, transaction, at: now, requestID: requestID)
        sale = sale.adjusted(by: Engine.holdChange, at: now)
        facts.changeCounters(by: Engine.holdChange, at: now)
        if !bulkPaths { try facts.writeCounters(of: sale.id, to: transaction) }
        return .decided(.held(hold))
    }

    /// Tells the store what the decisions of `requests` in `sale` will ask it (see
    /// `StoreTransaction.readAhead`): their users' counts, their addresses' where the sale
    /// limits them, and their keys. Not for a sale that is not open, whose decisions ask for
    /// no counts (`Rules.admit`), and few keys.
    func readAhead(for requests: some Sequence<BookingRequest>, in sale: Sale, _ transaction: any StoreTransaction,
                   at now: Instant) throws {
        guard transaction.wantsReadAhead, sale.state(at: now) == .open else { return }
        var users: [UserID] = []
        var addresses: [String] = []
        var keys: [String] = []
        for request in requests where request.sale == sale.id {
            users.append(request.user)
            if sale.perIP != nil, let address = request.ip.flatMap(IPAddress.init)?.perIPKey { addresses.append(address) }
            if let key = request.key { keys.append(key) }
        }
        guard !users.isEmpty else { return }
        try transaction.readAhead(activeBookingsOf: users, fromAddresses: addresses, keys: keys, in: sale.id, at: now)
    }

    /// `book`'s read-ahead, before its sale is read, so that a store may lock and read the
    /// sale in the same wait: the request's user, its address (counted only if the sale
    /// limits addresses, which is not known yet) and its key.
    private func readAhead(for request: BookingRequest, _ transaction: any StoreTransaction, at clock: Instant) throws {
        guard transaction.wantsReadAhead else { return }
        let address = request.ip.flatMap(IPAddress.init)?.perIPKey
        try transaction.readAhead(activeBookingsOf: [request.user], fromAddresses: address.map { [$0] } ?? [],
                                  keys: request.key.map { [$0] } ?? [], in: request.sale, at: clock)
    }

    /// A sale has one set of keys for `book` and `submit`: a key is the user's who gave it
    /// first, through either (`owner`), and another user's request with it is refused.
    func refusal(of key: String, ownedBy owner: UserID?, to request: BookingRequest) -> SaleError? {
        guard let owner, owner != request.user else { return nil }
        return .keyUsedByAnotherUser(key: key, sale: request.sale)
    }

    /// `confirm`: held → booked. Returns the booking as it is now. A hold found past its
    /// expiry is refused, and written expired for good (committed before the refusal), so
    /// that a clock stepped back cannot make it confirmable again.
    public func confirm(_ id: BookingID, in saleID: SaleID, user: UserID?, clock: Instant) throws -> Booking {
        try write(inSale: saleID) { try confirm(id, in: saleID, user: user, clock: clock, $0) }.get()
    }

    /// `confirm` inside the caller's write transaction; a refusal comes back, not thrown,
    /// because what the transaction wrote before it (an overdue hold expired) is to commit.
    func confirm(_ id: BookingID, in saleID: SaleID, user: UserID?, clock: Instant,
                 _ transaction: any StoreTransaction) throws -> Result<Booking, SaleError> {
        let (sale, booking) = try requireBooking(id, in: saleID, user: user, transaction)
        let now = sale.decisionTime(clock: clock)
        return try apply(Rules.confirmation(of: booking, at: now), to: booking, in: transaction, at: now, by: .confirm)
    }

    /// `cancel`: the item goes back to stock. Returns the booking as it is now.
    public func cancel(_ id: BookingID, in saleID: SaleID, user: UserID?, force: Bool, clock: Instant) throws -> Booking {
        try write(inSale: saleID) { try cancel(id, in: saleID, user: user, force: force, clock: clock, $0) }.get()
    }

    /// `cancel` inside the caller's write transaction, as `confirm` is.
    func cancel(_ id: BookingID, in saleID: SaleID, user: UserID?, force: Bool, clock: Instant,
                _ transaction: any StoreTransaction) throws -> Result<Booking, SaleError> {
        let (sale, booking) = try requireBooking(id, in: saleID, user: user, transaction)
        let now = sale.decisionTime(clock: clock)
        return try apply(Rules.cancellation(of: booking, force: force, at: now), to: booking, in: transaction, at: now,
                         by: force && booking.status == .booked ? .forcedCancel : .cancel)
    }

    /// Carries out what the rules said for `booking` inside the caller's write transaction.
    /// The booking as it is now, or a refusal to throw once the transaction has committed
    /// (a plain refusal has written nothing, so committing it changes nothing).
    private func apply(_ transition: Transition, to booking: Booking, in transaction: any StoreTransaction,
                       at now: Instant, by cause: ChangeCause) throws -> Result<Booking, SaleError> {
        switch transition {
        case .unchanged:
            return .success(booking.seen(at: now))
        case .move(let status):
            return .success(try move(booking, to: status, in: transaction, at: now, by: cause))
        case .refuse(let refusal):
            return .failure(refusal)
        case .moveThenRefuse(let status, let refusal):
            try move(booking, to: status, in: transaction, at: now, by: cause)
            return .failure(refusal)
        }
    }

    public func booking(_ id: BookingID, in saleID: SaleID, clock: Instant) throws -> Booking {
        try store.read { reading in
            let (sale, booking) = try requireBooking(id, in: saleID, user: nil, reading)
            return booking.seen(at: sale.decisionTime(clock: clock))
        }
    }

    // MARK: - Sweep

    public struct SweepReport: Sendable {
        /// Per sale, in id order, the holds expired (or that would be, on a dry run).
        public var expired: [(sale: SaleID, count: Int64)] = []
        public var total: Int64 { expired.reduce(0) { $0 + $1.count } }

        /// The sales with a count, in id order; `named`, the sale asked for, even without.
        init(_ counts: [SaleID: Int64], named: SaleID?) {
            let sales = named.map { [$0] } ?? counts.keys.sorted { $0.text < $1.text }
            expired = sales.map { ($0, counts[$0] ?? 0) }
        }
    }

    /// What a sweep does: looks for overdue holds (reading), waits for the write lock (and
    /// on PostgreSQL its sales' rows) to expire the next batch of them, nothing under way,
    /// or expires them under the lock.
    public enum SweepPhase: Sendable {
        case looking, waitingForTheLock, expiring
    }

    /// A sweep stopped by `cause` (the database busy past the timeout, a full disk) after
    /// some of its batches had committed: what they expired, `done`, stays expired.
    public struct SweepInterrupted: Error {
        public let done: SweepReport
        public let cause: any Error
    }

    /// `sweep`: expire every overdue hold (oldest first, at most `limit`), items back to
    /// stock, a batch of `sweepBatch` holds per transaction: the write lock is let go
    /// between batches, so that the sale goes on while a million holds expire, and memory
    /// stays that of one batch. Each batch is the next part of one line across the sales
    /// (each sale at its own decision time, the longest overdue first), so `limit` means
    /// the same for one sale or many. `phase` hears what the sweep does next (a command
    /// stopped by a signal may stop at once while it waits for the lock); `progress` how
    /// many each batch expired, once it is committed; what it throws stops the sweep there
    /// (`SweepInterrupted`).
    public func sweep(_ saleID: SaleID?, limit: Int64?, dryRun: Bool, clock: Instant, phase: (SweepPhase) -> Void = { _ in },
                      progress: (Int64) throws -> Void = { _ in }) throws -> SweepReport {
        if dryRun {
            return try store.read { try overdueCounts(saleID, in: $0, limit: limit, clock: clock) }
        }
        var counts: [SaleID: Int64] = [:]
        var total: Int64 = 0
        do {
            while limit.map({ total < $0 }) ?? true {
                // Looked for first without the write lock, so that a sweep with nothing (left)
                // to expire, cron's every minute or after a last full batch, never waits for
                // another process's lock, nor fails for it after doing everything.
                phase(.looking)
                guard try store.read({ try !overdueLine(saleID, in: $0, clock: clock).parts.isEmpty }) else { break }
                let size = min(sweepBatch, (limit ?? .max) - total)
                phase(.waitingForTheLock)
                let batch: [(sale: SaleID, expired: Int64)] = try store.write { transaction in
                    // Said again in each attempt: one run again after a conflict (PostgreSQL's
                    // deadlock or serialization failure) waits for its sales' rows anew, and a
                    // stop signal waited for that wait to end (found by review).
                    phase(.waitingForTheLock)
                    // Its sales read for writing: their locks held (PostgreSQL's rows; SQLite's
                    // whole database since the transaction began).
                    var line = try overdueLine(saleID, in: transaction, clock: clock)
                    phase(.expiring)
                    return try line.take(size).map { share in
                        (share.sale.id, try expireOverdueHolds(of: share.sale, in: transaction, at: share.now,
                                                               limit: share.count, by: .sweep))
                    }
                }
                let expired = batch.reduce(0) { $0 + $1.expired }
                guard expired > 0 else { break }
                for share in batch where share.expired > 0 { counts[share.sale, default: 0] += share.expired }
                total += expired
                try progress(expired)
                guard expired == size else { break }
            }
        } catch {
            guard total > 0 else { throw error }
            throw SweepInterrupted(done: SweepReport(counts, named: saleID), cause: error)
        }
        return SweepReport(counts, named: saleID)
    }

    /// A dry run: what `sweep` would expire, counted without loading a booking.
    private func overdueCounts(_ saleID: SaleID?, in reading: any StoreReading, limit: Int64?,
                               clock: Instant) throws -> SweepReport {
        var line = try overdueLine(saleID, in: reading, clock: clock)
        var counts: [SaleID: Int64] = [:]
        for part in line.parts {
            counts[part.sale.id] = try reading.overdueHoldCount(in: part.sale.id, at: part.now)
        }
        if let limit, counts.values.reduce(0, +) > limit {
            counts = Dictionary(uniqueKeysWithValues: try line.take(limit).map { ($0.sale.id, $0.count) })
        }
        return SweepReport(counts, named: saleID)
    }

    /// The sales (one, or all) that have overdue holds, each at its own decision time.
    private func overdueLine(_ saleID: SaleID?, in reading: any StoreReading, clock: Instant) throws -> OverdueLine {
        let sales = try saleID.map { [try reading.requireSale($0)] } ?? reading.allSales()
        var parts: [OverdueLine.Part] = []
        for sale in sales {
            let now = sale.decisionTime(clock: clock)
            if let first = try reading.earliestHoldExpiry(in: sale.id), Rules.isExpired(expiresAt: first, at: now) {
                parts.append(OverdueLine.Part(sale: sale, now: now))
            }
        }
        return OverdueLine(parts: parts, reading: reading)
    }

    // MARK: - Steps inside a caller's transaction

    /// The booking `id` of sale `saleID`; with `user`, only if it is that user's. Not found,
    /// whichever part is missing, so a wrong user learns nothing about other users' bookings.
    private func requireBooking(_ id: BookingID, in saleID: SaleID, user: UserID?,
                                _ reading: any StoreReading) throws -> (Sale, Booking) {
        let sale = try reading.requireSale(saleID)
        guard let booking = try reading.booking(id, in: saleID), user == nil || booking.user == user else {
            throw SaleError.bookingNotFound(id, sale: saleID, user: user)
        }
        return (sale, booking)
    }

    /// Expires overdue holds, the longest overdue first, their items back to stock; returns
    /// how many. Set-based in the store, or one `move` per hold without the bulk paths.
    @discardableResult
    func expireOverdueHolds(of sale: Sale, in transaction: any StoreTransaction, at now: Instant, limit: Int64?,
                            by cause: ChangeCause) throws -> Int64 {
        guard bulkPaths else {
            let overdue = try transaction.overdueHolds(in: sale.id, at: now, limit: limit)
            for hold in overdue {
                try move(hold, to: .expired, in: transaction, at: now, by: cause)
            }
            return Int64(overdue.count)
        }
        let expired = try transaction.expireOverdueHolds(in: sale.id, at: now, limit: limit, by: cause)
        if expired > 0 {
            try transaction.adjustCounters(of: sale.id, by: CounterChange(moving: .held, to: .expired, count: expired), at: now)
        }
        return expired
    }

    private func insertHold(_ request: BookingRequest, sale: Sale, _ transaction: any StoreTransaction, at now: Instant,
                            requestID: RequestID?) throws -> Booking {
        let hold = Booking(
            id: newBookingID(now), sale: sale.id, user: request.user, status: .held, createdAt: now,
            expiresAt: now.adding(sale.hold), confirmedAt: nil, cancelledAt: nil, expiredAt: nil,
            ip: request.ip, userAgent: request.userAgent, key: request.key)
        try transaction.insertHold(hold, countedByAddress: sale.perIP != nil)
        try transaction.appendEvent(NewEvent(at: now, sale: sale.id.text, kind: .held, booking: hold.id,
                                             user: hold.user, request: requestID))
        return hold
    }

    /// Moves a booking to `status` and the sale's counters with it, with its event.
    @discardableResult
    func move(_ booking: Booking, to status: BookingStatus, in transaction: any StoreTransaction, at now: Instant,
              by cause: ChangeCause) throws -> Booking {
        try transaction.setStatus(of: booking, to: status, at: now)
        try transaction.adjustCounters(of: booking.sale, by: CounterChange(moving: booking.status, to: status), at: now)
        try transaction.appendEvent(NewEvent(at: now, sale: booking.sale.text, kind: EventKind(movedTo: status),
                                             booking: booking.id, user: booking.user, detail: cause.rawValue))
        return try transaction.booking(booking.id, in: booking.sale) ?? booking
    }

    /// Why `request` may not hold in `sale` (check 9), or nil: a matching block, or its
    /// address at the sale's per-IP limit, with the attempts from its requester, this one
    /// included (`counted`: a queued request was counted when it was submitted).
    private func blockedBecause(_ request: BookingRequest, in sale: Sale, _ transaction: any StoreTransaction,
                                at now: Instant, counted: Bool, facts: TransactionFacts) throws -> BlockedBecause? {
        let blocks = try facts.blocks { try transaction.blocks(applyingTo: sale.id) }
        if let block = blocks.first(where: { $0.matches(request) }) {
            return .block(block)
        }
        guard sale.perIP != nil, let ip = request.ip, let parsed = IPAddress(ip)?.unmapped else { return nil }
        let active = try transaction.activeBookings(fromAddress: parsed.perIPKey, in: sale.id, at: now)
        guard Rules.exceedsIPLimit(sale, activeFromAddress: active), let requester = AttemptCounter.requester(of: ip) else {
            return nil
        }
        let attempts = try transaction.attempts(by: requester.kind, requester.value, in: sale.id)
            + facts.unstoredAttempts(fromRequesterOf: ip) + (counted ? 0 : 1)
        // Told as people write it (RFC 5952), not in the expanded spelling the limit counts by.
        return .perIPLimit(requester: requester.value, kind: requester.kind, active: active, attempts: attempts)
    }
}

extension Engine {
    /// What a new hold does to its sale's counters.
    static let holdChange = CounterChange(available: -1, held: 1)
}

extension Sale {
    /// The sale as `StoreTransaction.adjustCounters(of:by:at:)` leaves it. Wrapping rather
    /// than trapping on counters set by hand past any stock (found by review: `book`
    /// crashed): the store's write of them refuses what no check of the schema allows.
    func adjusted(by change: CounterChange, at now: Instant) -> Sale {
        Sale(id: id, name: name, operatorState: operatorState,
             counters: Counters(total: counters.total, available: counters.available &+ change.available,
                                held: counters.held &+ change.held, booked: counters.booked &+ change.booked,
                                cancelled: counters.cancelled &+ change.cancelled, expired: counters.expired &+ change.expired),
             hold: hold, perUser: perUser, perIP: perIP, waitlist: waitlist, startsAt: startsAt, endsAt: endsAt,
             createdAt: createdAt, highWater: max(highWater, now))
    }
}

extension CounterChange {
    /// `count` bookings moved from one status to another. An item leaving held or booked
    /// for a final state goes back to `available`.
    init(moving from: BookingStatus, to status: BookingStatus, count: Int64 = 1) {
        self.init()
        self[from] -= count
        self[status] += count
        if status == .cancelled || status == .expired { available += count }
    }

    /// The counter of bookings in `status`.
    subscript(status: BookingStatus) -> Int64 {
        get {
            switch status {
            case .held: held
            case .booked: booked
            case .cancelled: cancelled
            case .expired: expired
            }
        }
        set {
            switch status {
            case .held: held = newValue
            case .booked: booked = newValue
            case .cancelled: cancelled = newValue
            case .expired: expired = newValue
            }
        }
    }
}

/// What one write transaction has learnt about a sale, true until this process changes
/// its holds (others cannot write meanwhile): a run of declines in a sold-out sale then
/// asks the store once whether a hold is overdue, not once per request. And what its
/// holds did to the sale's counters that the row does not show yet: one update of the row
/// per transaction, where one per hold was a tenth of a hold.
final class TransactionFacts {
    /// The earliest expiry among the sale's holds (.some(nil): none held); nil: not known.
    private var firstHoldExpiry: Instant??
    /// Attempts in the sale counted by earlier transactions and not in the store yet
    /// (`DecisionGroup.carriesTelemetry`).
    private let carriedAttempts: AttemptTally?
    /// The blocks in force for the sale, read once per transaction.
    private var blocks: [Block]?

    init(carriedAttempts: AttemptTally? = nil) {
        self.carriedAttempts = carriedAttempts
    }

    /// Whether any hold is overdue at `now`, by the one expiry rule of `Rules`.
    func hasOverdueHold(at now: Instant, earliestExpiry: () throws -> Instant?) rethrows -> Bool {
        let expiry: Instant?
        if let known = firstHoldExpiry {
            expiry = known
        } else {
            expiry = try earliestExpiry()
            firstHoldExpiry = .some(expiry)
        }
        return expiry.map { Rules.isExpired(expiresAt: $0, at: now) } ?? false
    }

    /// Whether the sale has queued requests, asked once per transaction: a direct booking
    /// changes none, and whatever does (`submit`, `process`) locks the sale first, so the
    /// answer holds until this transaction's own next submit (after which `DecisionGroup`
    /// reads the sale anew, these facts with it). Asked per request, it was a query each
    /// (found by probing: a stream of 20,000 on a waitlisted sale on PostgreSQL held its
    /// lock for seconds, every hold written by itself to answer it).
    private var lineWaiting: Bool?

    func isLineWaiting(_ ask: () throws -> Bool) rethrows -> Bool {
        if let known = lineWaiting { return known }
        let waiting = try ask()
        lineWaiting = waiting
        return waiting
    }

    /// This transaction wrote a decision (a hold, an overdue hold expired), and so must
    /// commit it durably.
    func holdsChanged() {
        firstHoldExpiry = nil
        wroteDecisions = true
    }

    private var wroteDecisions = false

    /// What this transaction's commit carries, as far as this sale's decisions go.
    var commitContent: CommitContent { wroteDecisions ? .decisions : .telemetryOnly }

    /// The attempts decided in this transaction, not yet handed to the store.
    private(set) var attempts = AttemptTally()

    /// Counts a decided request, `declined` with that code or not: a direct one as an
    /// attempt; a queued one, counted as an attempt when it was submitted, only if it was
    /// declined.
    func count(_ request: BookingRequest, declined: ErrorCode?, fromQueue: Bool, at now: Instant) {
        if fromQueue {
            if let declined { attempts.addDeclines(declined, count: 1) }
        } else {
            attempts.add(user: request.user, ip: request.ip, userAgent: request.userAgent, declined: declined, at: now)
        }
    }

    /// The attempts from `ip`'s requester counted and not in the store yet.
    func unstoredAttempts(fromRequesterOf ip: String) -> Int64 {
        attempts.attempts(fromRequesterOf: ip) + (carriedAttempts?.attempts(fromRequesterOf: ip) ?? 0)
    }

    /// The attempts counted so far, taken out for the caller to hand to the store.
    func takeAttempts() -> AttemptTally {
        defer { attempts = AttemptTally() }
        return attempts
    }

    /// Queued requests rejected as a run (`StoreTransaction.rejectRun`).
    func countRejected(_ code: ErrorCode, count: Int64) {
        attempts.addDeclines(code, count: count)
    }

    /// Counter changes not yet written, and the latest of their decision times.
    private var unwritten = CounterChange()
    private var unwrittenAt: Instant?

    func changeCounters(by change: CounterChange, at now: Instant) {
        unwritten.add(change)
        unwrittenAt = max(unwrittenAt ?? now, now)
    }

    /// Writes what is not written yet to the sale's row, and hands the attempts counted so
    /// far to the store: before the transaction commits, and before anything else reads or
    /// changes the sale's counters.
    func writeCounters(of sale: SaleID, to transaction: any StoreTransaction) throws {
        if !attempts.isEmpty {
            try transaction.addAttempts(attempts, of: sale)
            attempts = AttemptTally()
        }
        guard let at = unwrittenAt else { return }
        try transaction.adjustCounters(of: sale, by: unwritten, at: at)
        unwritten = CounterChange()
        unwrittenAt = nil
    }

    func blocks(load: () throws -> [Block]) rethrows -> [Block] {
        if let blocks { return blocks }
        let loaded = try load()
        blocks = loaded
        return loaded
    }
}
