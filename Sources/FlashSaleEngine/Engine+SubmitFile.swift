import FlashSaleCore

extension Engine {
    /// `submit SALE --file`: every record of the input in one transaction, all or nothing.
    /// A malformed record rolls everything back (bad input, naming its line), unless there is
    /// `skipping`, which leaves it out and is told of it as it is found (a report kept of
    /// them all grew with the input: 336 MB for a million bad lines, found by probing). A
    /// key another user already used is not malformed input: it refuses the whole input even
    /// then.
    ///
    /// Tried once: the records are read as the transaction goes, so a transaction run again
    /// after a lost conflict (PostgreSQL's deadlocks and serialization failures) would have
    /// queued the rest of the input without what the first run had read, and reported its
    /// skipped lines twice (found by review). Such a conflict fails the command (busy):
    /// nothing is queued, and it can be run again.
    public func submit(to saleID: SaleID, clock: Instant, skipping: ((_ line: Int, _ reason: String) -> Void)?,
                       records next: () throws -> ReadOutcome?) throws -> SubmitReport {
        try namingMissingSale(saleID) { try store.writeOnce { transaction in
            let now = try transaction.requireSale(saleID).decisionTime(clock: clock)
            var submission = FileSubmission(engine: self, sale: saleID, transaction: transaction, now: now,
                                            skipping: skipping)
            if bulkPaths, transaction.wantsReadAhead {
                try submission.takeInRuns(next)
            } else {
                while let outcome = try next() { try submission.take(outcome) }
            }
            return try submission.finish()
        } }
    }
}

/// One `submit --file` in its transaction. The requests new to the sale go to the store
/// `rowsAtOnce` at a time (`enqueue(new:)`), keyed or not; without the bulk paths, one at
/// a time. A key given again before its request is stored is known by `waiting`; one
/// stored already, by the store (which may have read the run's keys ahead, `takeInRuns`).
struct FileSubmission {
    let engine: Engine
    let sale: SaleID
    let transaction: any StoreTransaction
    let now: Instant
    let skipping: ((_ line: Int, _ reason: String) -> Void)?
    private var report = Engine.SubmitReport()
    private var attempts = AttemptTally()
    private let batch: Int
    /// Requests new to the sale, not handed to the store yet.
    private var fresh: [RequestRecord] = []
    /// The users of the keys in `fresh`.
    private var waiting: [ExactText: UserID] = [:]

    init(engine: Engine, sale: SaleID, transaction: any StoreTransaction, now: Instant,
         skipping: ((_ line: Int, _ reason: String) -> Void)?) {
        self.engine = engine
        self.sale = sale
        self.transaction = transaction
        self.now = now
        self.skipping = skipping
        batch = transaction.rowsAtOnce
        fresh.reserveCapacity(batch)
    }

    mutating func take(_ outcome: ReadOutcome) throws {
        let record: RequestRecord
        switch outcome {
        case .malformed(let line, let reason):
            guard let skipping else { throw SaleError.malformedRecord(line: line, reason: reason) }
            skipping(line, reason)
            report.skipped += 1
            return
        case .malformedHeader(let line, let reason):
            throw SaleError.malformedHeader(line: line, reason: reason)
        case .record(let read):
            record = read
        }
        attempts.add(user: UserID(trusted: record.user), ip: record.ip, userAgent: record.userAgent, declined: nil, at: now)
        do {
            if !engine.bulkPaths {
                switch try engine.enqueue(request(record), transaction, at: now) {
                case .queued(let id): report.add(id...id)
                case .repeated: report.repeated += 1
                }
            } else if let key = record.key, try isRepeat(record, key: key) {
                report.repeated += 1
            } else {
                fresh.append(record)
                if fresh.count == batch { try flush() }
            }
        } catch let refusal as SaleError {
            throw SaleError.inRecord(line: record.line, refusal)
        }
    }

    /// `take`s the input `rowsAtOnce` records at a time, each run's keys read ahead at
    /// once (`StoreTransaction.readAhead`): for a store that pays a round trip a lookup.
    mutating func takeInRuns(_ next: () throws -> ReadOutcome?) throws {
        var run: [ReadOutcome] = []
        run.reserveCapacity(batch)
        repeat {
            run.removeAll(keepingCapacity: true)
            var readError: (any Error)?
            do {
                while run.count < batch, let outcome = try next() { run.append(outcome) }
            } catch {
                readError = error
            }
            let keys = run.compactMap { outcome in if case .record(let record) = outcome { record.key } else { nil } }
            if !keys.isEmpty {
                try transaction.readAhead(activeBookingsOf: [], fromAddresses: [], keys: keys, in: sale, at: now)
            }
            for outcome in run { try take(outcome) }
            // After the records before it, as when they are taken one at a time.
            if let readError { throw readError }
        } while run.count == batch
    }

    /// The rest to the store, and the attempts counted.
    mutating func finish() throws -> Engine.SubmitReport {
        try flush()
        try transaction.addAttempts(attempts, of: sale)
        // As for one `submit`: a file that queues nothing leaves the sale's time alone.
        if report.enqueued > 0 { try transaction.raiseHighWater(of: sale, to: now) }
        return report
    }

    /// Whether `record` gives again the `key` its user gave before (another user's is
    /// refused); a key new to the sale is noted in `waiting`.
    private mutating func isRepeat(_ record: RequestRecord, key: String) throws -> Bool {
        let keyed = request(record)
        if let owner = waiting[ExactText(key)] {
            if let refusal = engine.refusal(of: key, ownedBy: owner, to: keyed) { throw refusal }
            return true
        }
        guard try engine.firstRequest(sharingKeyOf: keyed, transaction) == nil else { return true }
        waiting[ExactText(key)] = keyed.user
        return false
    }

    private mutating func flush() throws {
        guard !fresh.isEmpty else { return }
        report.add(try transaction.enqueue(new: fresh[...], in: sale, at: now))
        fresh.removeAll(keepingCapacity: true)
        waiting.removeAll(keepingCapacity: true)
    }

    private func request(_ record: RequestRecord) -> BookingRequest {
        BookingRequest(sale: sale, user: UserID(trusted: record.user), ip: record.ip, userAgent: record.userAgent, key: record.key)
    }
}
