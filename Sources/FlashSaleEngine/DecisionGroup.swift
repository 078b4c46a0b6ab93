import FlashSaleCore

/// Requests of many buyers, for any sales, decided one by one in the order they are given,
/// in one write transaction, and made durable by one commit (one disk sync for all):
/// `book --stream`, and `serve`'s group commit across connections. The caller answers a
/// request only after `commit()` returned: what was answered is durable, and a crash loses
/// only unanswered decisions, which roll back.
///
/// A `SaleError` thrown by one request is that request's answer: the group goes on, and
/// commits what the request wrote before it (a confirm past expiry writes the expiry). Any
/// other error (busy, disk) means the transaction is lost: `abandon()` and answer every
/// request of the group with it; but for a group that decided nothing, only declined, whose
/// attempt counts a database that cannot take the write loses instead (`commit`). A group
/// decided through `commit(deciding:)` is not lost to a transient conflict (a deadlock with
/// another group that locks the same sales in another order): it is decided again.
public final class DecisionGroup {
    private let engine: Engine
    private var transaction: (any StoreTransaction)?
    /// The sales booked in so far, each as written in the transaction, with what the
    /// transaction has learnt about it. Few: a linear search is the fastest lookup.
    private var booking: [OpenSale] = []
    /// Whether a confirm, cancel or submit has written: their sales' facts are gone from
    /// `booking`, and the commit must be durable whatever the others say.
    private var settledDecisions = false

    /// Whether the attempts a group counts (`AttemptTally`) are carried over to later groups
    /// instead of being committed with it, until a commit `withTelemetry` or
    /// `writeTelemetry()`. False: each group commits its own. `serve` carries them: under
    /// load its groups are a handful of requests each, and committing the counts of a few
    /// buyers wrote pages of counters for each group; carried, a burst's counts add up in
    /// memory and a crowd seen once each writes no counter (the tally's bound). Attempts
    /// of a confirm's, cancel's or submit's sale are committed with it all the same.
    public var carriesTelemetry = false
    /// Attempts of committed groups not handed to the store yet, by sale.
    private var carried: [SaleID: AttemptTally] = [:]
    /// The counters of each kind a carried tally keeps. It holds the attempts of many
    /// groups (a second of `serve`'s, 20,000 or so here), and a tally loses up to its
    /// attempts / (capacity + 1) of each counter: with a transaction's 256, a thousand
    /// requesters trying 20 times a second each would keep no counter; with this many,
    /// each requester seen more than about 5 times in 20,000 attempts keeps one. Singles
    /// in a crowd are still dropped, and what is written stays bounded.
    public static let carriedCounters = 4_096
    /// This group's attempts, to be carried once it has committed.
    private var groupAttempts: [(sale: SaleID, tally: AttemptTally)] = []

    /// Whether attempts are carried that the store has not been given yet.
    public var isCarryingTelemetry: Bool { !carried.isEmpty }

    private struct OpenSale {
        var sale: Sale
        let facts: TransactionFacts
    }

    public init(engine: Engine) {
        self.engine = engine
    }

    /// Whether a transaction is open: there are decisions to commit.
    public var isOpen: Bool { transaction != nil }

    /// `book`: a hold, the key's first booking, a decline or a refusal.
    public func book(_ request: BookingRequest, clock: Instant) throws -> BookingOutcome {
        let transaction = try openTransaction()
        let index = try openSale(request.sale, in: transaction)
        let now = booking[index].sale.decisionTime(clock: clock)
        return try engine.decideDirect(request, in: &booking[index].sale, transaction, at: now,
                                       facts: booking[index].facts)
    }

    /// Before booking `requests` one by one: lets the store read at once what their
    /// decisions will ask it (`StoreTransaction.readAhead`). `others` are the sales of the
    /// group's other changes (confirms, cancels, submits), read (and so locked) with the
    /// bookings' sales. Sales that do not exist are left for each change to refuse.
    public func expect(_ requests: some Collection<BookingRequest>, alsoLocking others: some Sequence<SaleID> = [],
                       clock: Instant) throws {
        let booked = Set(requests.map(\.sale))
        let all = booked.union(others)
        guard !all.isEmpty else { return }
        let transaction = try openTransaction()
        guard transaction.wantsReadAhead else { return }
        // In id order, the same in every process: a store that locks a sale's row as it is
        // read (PostgreSQL) would otherwise lock a group's sales in the order of a Set,
        // which Swift seeds per process, and two servers' groups deadlocked (found by
        // probing: 10 in a run, each retried after PostgreSQL's deadlock_timeout, a second).
        // A confirm's sale too, which it locked when it came, after the bookings' sales.
        for sale in all.sorted(by: { $0.text.utf8.lexicographicallyPrecedes($1.text.utf8) }) {
            let index: Int
            if let open = booking.firstIndex(where: { $0.sale.id == sale }) {
                index = open
            } else {
                guard let read = try transaction.sale(sale) else { continue }
                booking.append(OpenSale(sale: read, facts: TransactionFacts(carriedAttempts: carried[sale])))
                index = booking.count - 1
            }
            guard booked.contains(sale) else { continue }
            let open = booking[index].sale
            try engine.readAhead(for: requests, in: open, transaction, at: open.decisionTime(clock: clock))
        }
    }

    /// `confirm`, as the engine's own.
    public func confirm(_ id: BookingID, in sale: SaleID, user: UserID?, clock: Instant) throws -> Booking {
        try engine.confirm(id, in: sale, user: user, clock: clock, settle(sale)).get()
    }

    /// `cancel`, as the engine's own.
    public func cancel(_ id: BookingID, in sale: SaleID, user: UserID?, force: Bool, clock: Instant) throws -> Booking {
        try engine.cancel(id, in: sale, user: user, force: force, clock: clock, settle(sale)).get()
    }

    /// `submit`, as the engine's own.
    public func submit(_ request: BookingRequest, clock: Instant) throws -> Engine.SubmitOutcome {
        try engine.submit(request, clock: clock, settle(request.sale))
    }

    /// Makes every decision so far durable. On failure all of them are rolled back.
    /// `withTelemetry`: the attempts carried so far (`carriesTelemetry`) are committed too.
    /// A group of declines writes only their counts: telemetry, committed without a sync,
    /// and not written rather than failing the declines when the database cannot take it
    /// (a full disk, a read-only file), as for a single `book`; the group's own counts are
    /// then lost, and the carried ones kept for a later commit. Returns whether the counts
    /// were written.
    @discardableResult
    public func commit(withTelemetry: Bool = true) throws -> Bool {
        guard let transaction else { return true }
        self.transaction = nil
        let carrying = carriesTelemetry && !withTelemetry
        let decided = settledDecisions || booking.contains { $0.facts.commitContent == .decisions }
        var countsWritten = true
        do {
            for open in booking {
                if carrying { groupAttempts.append((open.sale.id, open.facts.takeAttempts())) }
                try open.facts.writeCounters(of: open.sale.id, to: transaction)
            }
            if !carrying {
                for (sale, tally) in carried { try transaction.addAttempts(tally, of: sale) }
            }
            // The facts go before the carried tallies change: they share their storage.
            clearGroup()
            try transaction.commit(decided ? .decisions : .telemetryOnly)
        } catch {
            transaction.rollback()
            clearGroup()
            // A COMMIT whose answer was lost with the connection may or may not have stood:
            // for counts, no matter (found by review: a sold-out stream's groups of
            // declines could not be told, and it stopped).
            let failure = StoreFailure.of(error)
            let countsAlone: Bool = if case .commitUnanswered? = failure { true } else { failure?.refusedTheWrite == true }
            guard !decided, countsAlone else {
                groupAttempts.removeAll(keepingCapacity: true)
                throw error
            }
            countsWritten = false
        }
        if carrying {
            for (sale, tally) in groupAttempts { carried[sale, default: AttemptTally(capacity: Self.carriedCounters)].absorb(tally) }
        } else if countsWritten {
            carried.removeAll()
        }
        groupAttempts.removeAll(keepingCapacity: true)
        return countsWritten
    }

    /// Commits the attempts carried so far (`carriesTelemetry`) in a transaction of their
    /// own, which decides nothing and so costs no disk sync. Between groups only.
    public func writeTelemetry() throws {
        guard !carried.isEmpty, transaction == nil else { return }
        try engine.store.retryingConflicts {
            let transaction = try engine.store.beginWrite()
            do {
                for (sale, tally) in carried { try transaction.addAttempts(tally, of: sale) }
                try transaction.commit(.telemetryOnly)
            } catch {
                transaction.rollback()
                throw error
            }
        }
        carried.removeAll()
    }

    /// Decides a whole group with `decide` and makes it durable. When the store lost a
    /// conflict to another transaction (`StoreError.isTransient`), it rolled everything back:
    /// `decide` runs again, the same requests in the same order, in a new transaction, as
    /// `Store.write` runs a single decision again. `decide` therefore starts its answers anew
    /// each time; only those of the run that committed stand.
    @discardableResult
    public func commit(withTelemetry: Bool = true, deciding decide: () throws -> Void) throws -> Bool {
        try engine.store.retryingConflicts {
            do {
                try decide()
                return try commit(withTelemetry: withTelemetry)
            } catch {
                abandon()
                throw error
            }
        }
    }

    /// Rolls back what is not committed.
    public func abandon() {
        transaction?.rollback()
        transaction = nil
        clearGroup()
        groupAttempts.removeAll(keepingCapacity: true)
    }

    private func clearGroup() {
        booking.removeAll(keepingCapacity: true)
        settledDecisions = false
    }

    private func openTransaction() throws -> any StoreTransaction {
        if let transaction { return transaction }
        let opened = try engine.store.beginWrite()
        transaction = opened
        return opened
    }

    /// The sale's place in `booking`, read into it on first use.
    private func openSale(_ id: SaleID, in transaction: any StoreTransaction) throws -> Int {
        if let index = booking.firstIndex(where: { $0.sale.id == id }) { return index }
        booking.append(OpenSale(sale: try transaction.requireSale(id), facts: TransactionFacts(carriedAttempts: carried[id])))
        return booking.count - 1
    }

    /// The transaction, with the sale's pending counters written and its copy dropped:
    /// confirm, cancel and submit change the sale's row themselves, and a booking after
    /// them reads it anew.
    private func settle(_ sale: SaleID) throws -> any StoreTransaction {
        let transaction = try openTransaction()
        settledDecisions = true
        if let index = booking.firstIndex(where: { $0.sale.id == sale }) {
            try booking[index].facts.writeCounters(of: sale, to: transaction)
            booking.remove(at: index)
        }
        return transaction
    }
}
