import FlashSaleCore

/// Where sales are kept: a database that runs transactions one writer at a time per sale.
/// A store implements these protocols and nothing else: it holds no rule of the sale
/// (`Engine` asks it for facts and tells it what to write), so a second store, or a second
/// front end, never copies one.
public protocol Store: AnyObject {
    /// Opens a write transaction that holds the write lock (of the whole database, or of
    /// the sales it touches) from the start: two writers never both read and then collide.
    /// Waits for the lock up to the store's busy timeout, then throws the busy error.
    func beginWrite() throws -> any StoreTransaction

    /// Runs `body` on one consistent snapshot, writing nothing.
    func read<T>(_ body: (any StoreReading) throws -> T) throws -> T

    /// A way to learn, cheaply and without holding anything open, whether another process
    /// has committed since the watcher last looked: followers (`events --follow`, `process
    /// --follow`, live updates) sleep between looks and ask it.
    func changeWatcher() throws -> any ChangeWatcher

    /// Whether this connection has committed a change: a command whose output then fails
    /// says that its change stands.
    var hasChanged: Bool { get }

    /// Whether a lock that keeps a write waiting may keep a read waiting as long: not in
    /// SQLite's WAL, where readers never wait for the writer; on PostgreSQL a table's lock
    /// (`LOCK TABLE`, `VACUUM FULL`) does.
    var readsWaitForWriters: Bool { get }

    /// Whether the transaction whose COMMIT went unanswered (`error`, a `commitUnanswered`
    /// failure: the connection lost once the COMMIT was sent) committed after all, asked
    /// once the database answers again; nil when that cannot be told. A follower that
    /// goes on after such a loss counts what that transaction decided only if it stands.
    func committed(unanswered error: any Error) throws -> Bool?

    /// `verify`'s part in the store's own terms: every invariant recounted independently of
    /// the engine, for one sale or all, in a database that has every table and index of its
    /// schema. The violations found, each naming what is wrong; none when all is well.
    func recount(_ sale: SaleID?, clock: Instant) throws -> [String]

    /// The tables, columns and indexes (on PostgreSQL, sequences too) of the schema that the
    /// database lacks, each as `table block` or `column block.reason`, sorted; none when it
    /// has them all. One dropped by hand leaves a database that `book` cannot use, which
    /// `verify` and `init` say.
    func missingSchemaObjects() throws -> [String]

    /// `suspects`: the sale's requesters, agents and users that look like bots, highest
    /// score first, from its attempt counters and stored attempts (one snapshot).
    func suspects(of sale: SaleID, thresholds: SuspicionThresholds) throws -> [Suspect]
}

extension Store {
    /// `verify`: the database's schema, then the store's recount (`recount`). A database
    /// that lacks a table or index is not recounted, whole or for one sale: what is left of
    /// it is for a backup to replace (found by probing: with a table dropped by hand, the
    /// recount read the rest and said ok, of a database `book` could not use).
    public func verify(_ sale: SaleID?, clock: Instant) throws -> [String] {
        let missing = try missingSchemaObjects()
        guard missing.isEmpty else { return ["database structure: missing " + missing.joined(separator: ", ")] }
        return try recount(sale, clock: clock)
    }
}

/// Says whether anything was committed since the last call (or since it was made).
public protocol ChangeWatcher {
    mutating func hasChanged() throws -> Bool
}

/// What a decision may read, inside a write transaction or a read snapshot. Counts and
/// lists are as committed so far in the transaction, this one's writes included.
public protocol StoreReading: AnyObject {
    func sale(_ id: SaleID) throws -> Sale?
    /// Every sale, in id order.
    func allSales() throws -> [Sale]

    func booking(_ id: BookingID, in sale: SaleID) throws -> Booking?
    /// The booking a request with `key` made in `sale`, whichever path made it.
    func booking(withKey key: String, in sale: SaleID) throws -> Booking?
    /// Bookings of `user` that count against the per-user limit at `now`: booked, or held
    /// and not expired by `Rules.isExpired`.
    func activeBookings(of user: UserID, in sale: SaleID, at now: Instant) throws -> Int64
    /// Bookings from the address (by its `IPAddress.perIPKey`: an IPv6 address's /64) that
    /// count at `now`.
    func activeBookings(fromAddress address: String, in sale: SaleID, at now: Instant) throws -> Int64
    /// When the earliest hold of the sale expires (or expired); nil when none is held.
    func earliestHoldExpiry(in sale: SaleID) throws -> Instant?
    /// Holds expired at `now` (`Rules.isExpired`) but still held, in `HoldKey` order (the
    /// longest overdue first); all of them when `limit` is nil.
    func overdueHolds(in sale: SaleID, at now: Instant, limit: Int64?) throws -> [Booking]
    /// The keys of the sale's overdue holds at `now` after `key` (from the first when nil),
    /// in order, at most `limit`: a sweep merges sales by them without loading a booking.
    func overdueHoldKeys(in sale: SaleID, at now: Instant, after key: HoldKey?, limit: Int64) throws -> [HoldKey]
    /// How many holds of the sale are overdue at `now`.
    func overdueHoldCount(in sale: SaleID, at now: Instant) throws -> Int64

    /// The sale's bookings in the order they were made (only `user`'s, if given), as
    /// stored, handed to `body` one at a time: a million take no more memory than one.
    func forEachBooking(of sale: SaleID, user: UserID?, _ body: (Booking) throws -> Void) throws
    /// At most `limit` of `user`'s bookings of the sale in the order they were made, from
    /// the one after `after` (from the first without), as stored; nil when `after` is none
    /// of the user's bookings of the sale. Read by the user's index from that booking on:
    /// a page costs its own rows, however long the history before it.
    func bookings(of user: UserID, in sale: SaleID, after: BookingID?, limit: Int) throws -> [Booking]?

    /// The events with `seq > after` (of one sale, or of all), oldest first, at most `limit`.
    /// A reader that has seen `seq` N must never be shown a later commit below N.
    func events(after: Int64, sale: SaleID?, limit: Int64) throws -> [Event]
    /// The highest `seq` in the log, 0 when it is empty: where a follower from now starts.
    func latestEventSeq() throws -> Int64

    /// The blocks in force; with a sale, those that apply to it (its own and global ones).
    func blocks(applyingTo sale: SaleID?) throws -> [Block]

    /// The last request of the sale's line that was decided (0 before the first).
    func lineCursor(of sale: SaleID) throws -> RequestID
    /// The first `limit` requests of the sale's line after `cursor`, in line order.
    func lineHeads(of sale: SaleID, after cursor: RequestID, limit: Int64) throws -> [(RequestID, BookingRequest)]
    /// How many requests of the sale are still queued.
    func queuedRequests(in sale: SaleID) throws -> Int64
    /// How many requests of the sale are queued up to `last`: for a queued request, its
    /// place in line.
    func queuedRequests(in sale: SaleID, through last: RequestID) throws -> Int64
    /// When the first request of the sale's line was submitted; nil for an empty line.
    func oldestQueuedSubmission(in sale: SaleID) throws -> Instant?
    /// The request with its decision, if decided (`position` left nil).
    func request(_ id: RequestID) throws -> QueuedRequest?
    /// The sales with queued requests, in id order.
    func salesWithQueuedRequests() throws -> [SaleID]
    /// The request a `submit` with `key` made in `sale`, and whose it is.
    func request(withKey key: String, in sale: SaleID) throws -> (id: RequestID, user: UserID)?

    /// The sale's attempts in all (`AttemptTotals`), as counted so far.
    func attemptTotals(of sale: SaleID) throws -> AttemptTotals
    /// The attempts the sale's counters of `kind` hold for `value`, over every bucket.
    func attempts(by kind: SuspectKind, _ value: String, in sale: SaleID) throws -> Int64
}

/// The writes a decision is made of. Each is one row's change; the engine calls them in an
/// order that keeps `total = available + held + booked` at every commit.
public protocol StoreTransaction: StoreReading {
    /// Inserts the sale; false, writing nothing, when a sale of its id exists, another
    /// process's included: on PostgreSQL under READ COMMITTED it may commit after this
    /// transaction began, and the insert waits for it.
    func insertSale(_ definition: SaleDefinition, at now: Instant) throws -> Bool
    /// Sets the sale's total, its available items following (`total - held - booked`).
    func setTotal(of sale: SaleID, to total: Int64, at now: Instant) throws
    func setOperatorState(of sale: SaleID, to state: OperatorState, at now: Instant) throws
    /// Adds the changes to the sale's counters. Every write to a sale's row also raises its
    /// high-water clock to `now`: time never runs backwards for a sale.
    func adjustCounters(of sale: SaleID, by change: CounterChange, at now: Instant) throws
    /// A submission is part of the sale's history too (see `Sale.decisionTime`).
    func raiseHighWater(of sale: SaleID, to now: Instant) throws
    /// Takes every sale's write lock, waiting for each sale's writers, as a change that
    /// every sale's decisions read (a block of every sale) must: those read it once per
    /// transaction, under their sale's lock. Nothing more where the write lock is the
    /// whole database's.
    func lockEverySale() throws

    /// With `countedByAddress` (in a sale with a per-IP limit, fixed when it is created),
    /// the hold counts in `activeBookings(fromAddress:)` by its address's
    /// `IPAddress.perIPKey`; without, that is never asked.
    func insertHold(_ hold: Booking, countedByAddress: Bool) throws
    /// Moves `booking` from its status to `status`, stamping the time the new status
    /// records (confirmed, cancelled at `now`; expired at its `expiresAt`). A booking that
    /// is no longer in the status it was read with is a bug: throw.
    func setStatus(of booking: Booking, to status: BookingStatus, at now: Instant) throws

    func appendEvent(_ event: NewEvent) throws

    /// A bulk fast path: expires the sale's overdue holds at `now` in `HoldKey` order, at
    /// most `limit` (all when nil), each with its `expired` event at `now` with `cause` as
    /// detail, exactly as one `setStatus` and `appendEvent` per hold in that order would.
    /// The sale's counters are the caller's. Returns how many.
    func expireOverdueHolds(in sale: SaleID, at now: Instant, limit: Int64?, by cause: ChangeCause) throws -> Int64

    /// Adds one request to the end of the sale's line.
    func enqueue(_ request: BookingRequest, at now: Instant) throws -> RequestID
    /// How many rows the engine hands the store, or asks it for, at once where it may
    /// choose (a file's submits, reads of the line ahead): a few dozen for a store whose
    /// statements cost microseconds, thousands for one that pays a round trip for each.
    var rowsAtOnce: Int { get }
    /// Adds requests new to the sale to the end of its line, in order: a bulk fast path
    /// (consecutive ids, one statement for many rows). Their keys, where they give one, are
    /// new to the sale and to each other: the engine has made sure. Returns the ids given.
    func enqueue(new records: ArraySlice<RequestRecord>, in sale: SaleID, at now: Instant) throws -> ClosedRange<RequestID>
    /// Moves the sale's cursor forward to `cursor` (never back: throw).
    func moveLineCursor(of sale: SaleID, to cursor: RequestID, at now: Instant) throws
    /// How far from the head the line may be rejected as a run: at most `limit` requests
    /// after `cursor` (a store may take fewer: the engine asks again), stopping before the
    /// first whose key already has a booking (it gets that booking). `last` is nil when that
    /// leaves none.
    func rejectableRun(of sale: SaleID, after cursor: RequestID, limit: Int64) throws -> (last: RequestID?, stoppedAtKey: Bool)
    /// A bulk fast path for a run where nobody can hold: rejects every request after
    /// `cursor` through `last`, each with `atLimit` when its user has `perUser` active
    /// bookings at `now`, else `otherwise`, with one 'rejected' event each in line order.
    /// Returns how many with each reason. It must decide exactly as one `reject` per
    /// request would.
    func rejectRun(of sale: SaleID, after cursor: RequestID, through last: RequestID,
                   atLimit: DeclineReason, otherwise: DeclineReason, perUser: Int64,
                   at now: Instant) throws -> (atLimit: Int64, otherwise: Int64)

    /// Adds a block; false when the same block (kind, value, match, sale) is there already.
    func insertBlock(_ block: Block) throws -> Bool
    /// Removes a block; false when there is none such.
    func deleteBlock(kind: BlockKind, value: String, contains: Bool, sale: SaleID?) throws -> Bool

    /// Adds a transaction's tally of the sale's attempts to its counters, at the latest
    /// when the transaction commits; a rollback drops it. Telemetry, not a decision.
    func addAttempts(_ tally: AttemptTally, of sale: SaleID) throws

    /// Whether `readAhead` does anything: false (the default) spares the caller gathering
    /// what it would be told.
    var wantsReadAhead: Bool { get }
    /// A hint before a run of decisions in `sale` at `now` or later: the users, and the
    /// addresses (canonical), that they will ask `activeBookings` about, the keys they will
    /// ask `booking(withKey:)` and `request(withKey:)` about, and the sale's `blocks` they
    /// will ask for. A store whose every read is a round trip to a server reads them all at
    /// once; one whose reads cost microseconds ignores it (the default). For `book`, a run
    /// of one, it comes before the sale is read: the store may then lock and read the sale's
    /// row with it, as the transaction's first read of the sale would.
    func readAhead(activeBookingsOf users: [UserID], fromAddresses addresses: [String], keys: [String], in sale: SaleID,
                   at now: Instant) throws

    /// Commits. With `.decisions`, everything is durable when it returns; a failure rolls
    /// everything back, and so does `rollback`.
    func commit(_ content: CommitContent) throws
    func rollback()
}

extension StoreTransaction {
    public var wantsReadAhead: Bool { false }

    public func readAhead(activeBookingsOf users: [UserID], fromAddresses addresses: [String], keys: [String],
                          in sale: SaleID, at now: Instant) throws {}
}

/// What a commit carries, and so what it must survive.
public enum CommitContent: Sendable {
    /// Decisions (and anything else): durable before the commit returns.
    case decisions
    /// Only attempt counts (`addAttempts`): telemetry, which decides nothing, and which a
    /// crash may lose. The store may commit it without a disk sync, the cost of a commit
    /// that a decline, which writes nothing else, never paid. (Should anything else have
    /// been written, it is committed durably all the same.)
    case telemetryOnly
}


/// A change of a sale's counters.
public struct CounterChange: Sendable, Equatable {
    public var available: Int64 = 0
    public var held: Int64 = 0
    public var booked: Int64 = 0
    public var cancelled: Int64 = 0
    public var expired: Int64 = 0

    public init(available: Int64 = 0, held: Int64 = 0, booked: Int64 = 0, cancelled: Int64 = 0, expired: Int64 = 0) {
        self.available = available
        self.held = held
        self.booked = booked
        self.cancelled = cancelled
        self.expired = expired
    }

    /// Adds `change` to this one: two changes written as their sum come to the same row.
    public mutating func add(_ change: CounterChange) {
        available += change.available
        held += change.held
        booked += change.booked
        cancelled += change.cancelled
        expired += change.expired
    }
}

/// Where an overdue hold stands in line to be expired: the longest overdue first, and of
/// holds that expire at the same instant, the first made first. `made` is the store's own
/// count of holds made, in the order it made them, comparable across sales.
public struct HoldKey: Comparable, Hashable, Sendable {
    public let expiresAt: Instant
    public let made: Int64

    public init(expiresAt: Instant, made: Int64) {
        self.expiresAt = expiresAt
        self.made = made
    }

    public static func < (a: HoldKey, b: HoldKey) -> Bool {
        (a.expiresAt, a.made) < (b.expiresAt, b.made)
    }
}

/// How many times a transaction that lost a conflict is tried in all.
private let maxConflictAttempts = 100

extension Store {
    /// One write transaction: committed when `body` returns, rolled back when it throws.
    /// Run again from the start when it lost to another transaction (`StoreError.isTransient`).
    public func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        try retryingConflicts { try writeOnce(body) }
    }

    /// `write`, tried once: for a `body` that cannot be run again, as one that reads its
    /// input as it goes (run again, it would go on from where the input stood, without
    /// what the first run read). A lost conflict is the caller's failure (busy: retry).
    public func writeOnce<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        let transaction = try beginWrite()
        let result: T
        do {
            result = try body(transaction)
            try transaction.commit(.decisions)
        } catch {
            transaction.rollback()
            throw error
        }
        return result
    }

    /// Runs `attempt`, a whole transaction, again while it fails with a transient conflict
    /// (a deadlock between two sales' transactions, say), which rolled it back: nothing of
    /// it stands, and the next attempt reads everything anew. Bounded, so that a store that
    /// called everything transient could not spin forever.
    public func retryingConflicts<T>(_ attempt: () throws -> T) throws -> T {
        var attempts = 1
        while true {
            do {
                return try attempt()
            } catch let error as any StoreError where error.isTransient && attempts < maxConflictAttempts {
                attempts += 1
            }
        }
    }
}
