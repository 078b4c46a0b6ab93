import FlashSaleCore

/// The one place with business SQL. Each public method is one transaction: it loads what
/// the rules need, asks `Rules`, and writes the booking, the sale's counters and an event
/// row together, so `total = available + held + booked` holds after every commit.
public final class SaleStore {
    let db: Connection
    private var prepared: RowStatements?

    /// The statements run once per request, prepared on first use.
    var rowStatements: RowStatements {
        get throws {
            if let prepared { return prepared }
            let statements = try RowStatements(db)
            prepared = statements
            return statements
        }
    }

    /// Opens and migrates the database at `path`. With `createIfMissing`, a missing file is
    /// created (mode 0600) and given the schema; without, a path with no flashsale database
    /// is refused (MissingDatabase) and nothing is created.
    public init(path: String, busyTimeout: Span, createIfMissing: Bool = false) throws {
        try DatabaseFile.prepare(path, create: createIfMissing)
        db = try Connection(path: path, busyTimeout: busyTimeout)
        try Schema.migrate(db, create: createIfMissing)
    }

    // MARK: - Sales

    public func createSale(_ definition: SaleDefinition, clock: Instant) throws -> SaleStatus {
        try db.writeTransaction {
            if try loadSale(definition.id) != nil {
                throw FlashSaleError.conflict("sale \(definition.id) already exists")
            }
            try db.execute(
                """
                INSERT INTO sale (id, name, state, total, available, held, booked, hold_ms, per_user,
                                  per_ip, waitlist, starts_at, ends_at, created_at, high_water)
                VALUES (:id, :name, 'open', :inventory, :inventory, 0, 0, :hold_ms, :per_user,
                        :per_ip, :waitlist, :starts_at, :ends_at, :now, :now)
                """,
                [":id": .text(definition.id.text), ":name": .text(definition.name),
                 ":inventory": .integer(definition.inventory), ":hold_ms": .integer(definition.hold.milliseconds),
                 ":per_user": .integer(definition.perUser), ":waitlist": .integer(definition.waitlist ? 1 : 0),
                 ":per_ip": .integer(definition.perIP),
                 ":starts_at": .integer(definition.startsAt.milliseconds),
                 ":ends_at": .integer(definition.endsAt?.milliseconds), ":now": .integer(clock.milliseconds)])
            try appendEvent(at: clock, sale: definition.id, kind: "sale_created",
                            detail: "inventory \(definition.inventory)")
            return try status(of: requireSale(definition.id), clock: clock)
        }
    }

    /// `seed-inventory`: add `count` items, or with `exactly` make the total `count`.
    public func seedInventory(_ id: SaleID, count: Int64, exactly: Bool, clock: Instant) throws -> SaleStatus {
        try db.writeTransaction {
            var sale = try requireSale(id)
            let now = sale.decisionTime(clock: clock)
            let total: Int64
            if exactly {
                // Overdue holds are expired: they must not keep a lower total from being set.
                if try expireOverdueHolds(of: sale, at: now, limit: nil, by: "seed-inventory") > 0 {
                    sale = try requireSale(id)
                }
                let committed = sale.counters.held + sale.counters.booked
                guard count >= committed else {
                    throw FlashSaleError.conflict(
                        "sale \(id) has \(committed) items held or booked; the total cannot go below that")
                }
                total = count
            } else {
                guard count <= maximumInventory - sale.counters.total else {
                    throw FlashSaleError.conflict("sale \(id) would have more than \(maximumInventory) items")
                }
                total = sale.counters.total + count
            }
            try db.execute(
                """
                UPDATE sale SET total = :total, available = :total - held - booked,
                                high_water = max(high_water, :now)
                WHERE id = :sale
                """,
                [":total": .integer(total), ":now": .integer(now.milliseconds), ":sale": .text(id.text)])
            try appendEvent(at: now, sale: id, kind: "inventory_seeded",
                            detail: exactly ? "set \(count)" : "add \(count)")
            return try status(of: requireSale(id), clock: now)
        }
    }

    /// `pause`, `resume`, `close`.
    public func change(_ id: SaleID, by command: OperatorCommand, clock: Instant) throws -> SaleStatus {
        try db.writeTransaction {
            let sale = try requireSale(id)
            let now = sale.decisionTime(clock: clock)
            guard let next = try Rules.change(sale, by: command, at: now) else {
                return try status(of: sale, clock: now)
            }
            try db.execute(
                "UPDATE sale SET state = :state, high_water = max(high_water, :now) WHERE id = :sale",
                [":state": .text(next.rawValue), ":now": .integer(now.milliseconds), ":sale": .text(id.text)])
            try appendEvent(at: now, sale: id, kind: "sale_\(command.pastTense)")
            return try status(of: requireSale(id), clock: now)
        }
    }

    /// The sale's row (exit 3 if there is none), without the counts `status` adds.
    public func sale(_ id: SaleID) throws -> Sale {
        try db.readTransaction { try requireSale(id) }
    }

    public func status(_ id: SaleID, clock: Instant) throws -> SaleStatus {
        try db.readTransaction {
            try status(of: requireSale(id), clock: clock)
        }
    }

    public func sales(clock: Instant) throws -> [SaleStatus] {
        try db.readTransaction {
            try allSales().map { try status(of: $0, clock: clock) }
        }
    }

    // MARK: - Bookings

    /// What `book` decided, when it did not decline.
    public enum BookOutcome: Sendable {
        case held(Booking)
        /// The request's key was seen before: its first booking, unchanged.
        case repeated(Booking)
    }

    /// `book`: one transaction decides, and a decline writes nothing (so costs no fsync).
    public func book(_ request: BookingRequest, clock: Instant) throws -> BookOutcome {
        try db.writeTransaction {
            let sale = try requireSale(request.sale)
            switch try decideHold(request, in: sale, at: sale.decisionTime(clock: clock), fromQueue: nil) {
            case .held(let booking): return .held(booking)
            case .repeated(let booking): return .repeated(booking)
            case .declined(let decline): throw decline.error
            case .waiting: throw FlashSaleError.internalFailure("a direct booking was told to wait")
            }
        }
    }

    /// What one booking request came to.
    enum HoldDecision {
        case held(Booking)
        case repeated(Booking)
        case declined(Decline)
        /// Only for queued requests of a waitlisted sale: leave it in the queue.
        case waiting
    }

    /// Decides one request inside the caller's write transaction: the one decision that
    /// `book`, `book --stream` and `process` share. `sale` must be as committed so far in
    /// this transaction. `fromQueue` is the id of the queued request being decided, or nil
    /// for a direct booking. A key makes either idempotent: the booking it already has is
    /// the answer, whichever path made it.
    func decideHold(_ request: BookingRequest, in sale: Sale, at now: Instant, fromQueue requestID: Int64?,
                    facts: TransactionFacts = TransactionFacts()) throws -> HoldDecision {
        if let key = request.key, let first = try booking(of: sale.id, key: key) {
            guard first.user == request.user else {
                throw FlashSaleError.conflict("key \(Quoted(key)) was already used by another user in sale \(sale.id)")
            }
            return .repeated(first.seen(at: now))
        }
        let admission = try Rules.admit(
            sale, at: now, fromQueue: requestID != nil,
            blockedBecause: { try blockedBecause(request, in: sale, at: now, facts: facts) },
            activeBookings: { try activeBookings(of: request.user, in: sale.id, at: now) },
            hasOverdueHold: { try facts.hasOverdueHold(at: now) { try nextHoldExpiry(of: sale.id) } },
            isLineWaiting: { try queuedRequests(in: sale.id) > 0 })
        switch admission {
        case .decline(let decline):
            return .declined(decline)
        case .wait:
            return .waiting
        case .reclaimOverdueHold:
            try expireOverdueHolds(of: sale, at: now, limit: 1, by: requestID == nil ? "book" : "process")
        case .hold:
            break
        }
        facts.holdsChanged()
        return .held(try insertHold(request, sale: sale, at: now, requestID: requestID))
    }

    /// `confirm`: held → booked. Returns the booking as it is now.
    public func confirm(_ id: BookingID, in saleID: SaleID, user: String?, clock: Instant) throws -> Booking {
        try db.writeTransaction {
            let (sale, booking) = try requireBooking(id, in: saleID, user: user)
            let now = sale.decisionTime(clock: clock)
            switch Rules.confirmation(of: booking, at: now) {
            case .refuse(let error): throw error
            case .unchanged: return booking.seen(at: now)
            case .move(let status): return try move(booking, to: status, at: now, by: "confirm")
            }
        }
    }

    /// `cancel`: the item goes back to stock. Returns the booking as it is now.
    public func cancel(_ id: BookingID, in saleID: SaleID, user: String?, force: Bool, clock: Instant) throws -> Booking {
        try db.writeTransaction {
            let (sale, booking) = try requireBooking(id, in: saleID, user: user)
            let now = sale.decisionTime(clock: clock)
            switch Rules.cancellation(of: booking, force: force, at: now) {
            case .refuse(let error): throw error
            case .unchanged: return booking.seen(at: now)
            case .move(let status):
                return try move(booking, to: status, at: now, by: force && booking.status == .booked ? "cancel --force" : "cancel")
            }
        }
    }

    public func booking(_ id: BookingID, in saleID: SaleID, clock: Instant) throws -> Booking {
        try db.readTransaction {
            let (sale, booking) = try requireBooking(id, in: saleID, user: nil)
            return booking.seen(at: sale.decisionTime(clock: clock))
        }
    }

    /// `bookings` and `export`: a sale's bookings in the order they were made, as they look
    /// now (a hold past its expiry is expired, by the one rule of Core), optionally only one
    /// status or one user's, handed to `body` as SQLite reads them. One read transaction:
    /// one consistent snapshot, and a million bookings take no more memory than one.
    /// Returns how many were handed over.
    @discardableResult
    public func forEachBooking(of saleID: SaleID, status: BookingStatus?, user: String?, clock: Instant,
                               _ body: (Booking) throws -> Void) throws -> Int64 {
        try db.readTransaction {
            let now = try requireSale(saleID).decisionTime(clock: clock)
            var handed: Int64 = 0
            try db.forEachRow(
                """
                SELECT \(bookingColumns) FROM booking
                WHERE sale = :sale AND (:user IS NULL OR user = :user) ORDER BY rowid
                """,
                [":sale": .text(saleID.text), ":user": .text(user)]
            ) { row in
                let booking = try decodeBooking(row).seen(at: now)
                if status == nil || booking.status == status {
                    try body(booking)
                    handed += 1
                }
            }
            return handed
        }
    }

    public func bookings(of saleID: SaleID, status: BookingStatus?, user: String?, clock: Instant) throws -> [Booking] {
        var result: [Booking] = []
        try forEachBooking(of: saleID, status: status, user: user, clock: clock) { result.append($0) }
        return result
    }

    // MARK: - Sweep

    public struct SweepReport: Sendable {
        /// Per sale, in id order, the holds expired (or that would be, on a dry run).
        public var expired: [(sale: SaleID, count: Int64)] = []
        public var total: Int64 { expired.reduce(0) { $0 + $1.count } }
    }

    /// `sweep`: expire every overdue hold (oldest first, at most `limit`), items back to stock.
    public func sweep(_ saleID: SaleID?, limit: Int64?, dryRun: Bool, clock: Instant) throws -> SweepReport {
        dryRun
            ? try db.readTransaction { try sweepSales(saleID, limit: limit, dryRun: true, clock: clock) }
            : try db.writeTransaction { try sweepSales(saleID, limit: limit, dryRun: false, clock: clock) }
    }

    /// Each sale decides at its own time (its high-water mark), so each one's overdue holds
    /// are gathered first; then the longest overdue across all sales go first, so that
    /// `--limit` means the same for one sale or many.
    private func sweepSales(_ saleID: SaleID?, limit: Int64?, dryRun: Bool, clock: Instant) throws -> SweepReport {
        let sales = try saleID.map { [try requireSale($0)] } ?? allSales()
        var candidates: [(hold: Booking, now: Instant)] = []
        for sale in sales {
            let now = sale.decisionTime(clock: clock)
            candidates += try oldestOverdueHolds(of: sale.id, at: now, limit: limit).map { ($0, now) }
        }
        candidates.sort { ($0.hold.expiresAt, $0.hold.id.text) < ($1.hold.expiresAt, $1.hold.id.text) }
        var expired: [SaleID: Int64] = [:]
        for (hold, now) in candidates.prefix(limit.map { Int($0) } ?? candidates.count) {
            if !dryRun { try move(hold, to: .expired, at: now, by: "sweep") }
            expired[hold.sale, default: 0] += 1
        }
        var report = SweepReport()
        for sale in sales where expired[sale.id] != nil || saleID != nil {
            report.expired.append((sale.id, expired[sale.id] ?? 0))
        }
        return report
    }

    // MARK: - Verify

    /// Recounts every sale's bookings against its counters and checks every invariant.
    /// Returns the violations found, each naming what is wrong; empty means all is well.
    public func verify(_ saleID: SaleID?, clock: Instant) throws -> [String] {
        try db.readTransaction {
            var violations: [String] = []
            for sale in try saleID.map({ [try requireSale($0)] }) ?? allSales() {
                violations += try violationsOf(sale, at: sale.decisionTime(clock: clock))
            }
            if saleID == nil {
                let orphans = try count("SELECT count(*) FROM booking WHERE sale NOT IN (SELECT id FROM sale)", [:])
                if orphans > 0 { violations.append("\(orphans) bookings belong to no sale") }
                let check = try db.rows("PRAGMA quick_check") { $0.text(0) }
                if check != ["ok"] { violations.append("database structure: " + check.prefix(3).joined(separator: "; ")) }
            }
            return violations
        }
    }

    private func violationsOf(_ sale: Sale, at now: Instant) throws -> [String] {
        var violations: [String] = []
        let c = sale.counters
        let name = "sale \(sale.id)"
        if !c.balances {
            violations.append("\(name): total \(c.total) != available \(c.available) + held \(c.held) + booked \(c.booked)")
        }
        for (counter, value) in [("available", c.available), ("held", c.held), ("booked", c.booked)] where value < 0 {
            violations.append("\(name): \(counter) is negative (\(value))")
        }
        var counted: [BookingStatus: Int64] = [:]
        try db.forEachRow("SELECT status, count(*) FROM booking WHERE sale = :sale GROUP BY status",
                          [":sale": .text(sale.id.text)]) { row in
            if let status = BookingStatus(rawValue: row.text(0)) {
                counted[status] = row.int64(1)
            } else {
                violations.append("\(name): \(row.int64(1)) bookings have the unknown status '\(Quoted(row.text(0)))'")
            }
        }
        for (status, counter) in [(BookingStatus.held, c.held), (.booked, c.booked), (.cancelled, c.cancelled), (.expired, c.expired)] {
            let found = counted[status] ?? 0
            if found != counter {
                violations.append("\(name): counter \(status.rawValue) is \(counter) but \(found) bookings are \(status.rawValue)")
            }
        }
        try db.forEachRow(
            """
            SELECT user, count(*) FROM booking WHERE sale = :sale AND \(activeBooking)
            GROUP BY user HAVING count(*) > :per_user ORDER BY user LIMIT 5
            """,
            [":sale": .text(sale.id.text), ":now": .integer(now.milliseconds), ":per_user": .integer(sale.perUser)]
        ) { row in
            violations.append("\(name): user '\(Quoted(row.text(0)))' has \(row.int64(1)) active bookings, over the limit of \(sale.perUser)")
        }
        let malformed = try count(
            """
            SELECT count(*) FROM booking WHERE sale = :sale AND (expires_at <= created_at
                OR (status = 'booked' AND confirmed_at IS NULL)
                OR (status = 'cancelled' AND cancelled_at IS NULL)
                OR (status = 'expired' AND expired_at IS NULL))
            """, [":sale": .text(sale.id.text)])
        if malformed > 0 {
            violations.append("\(name): \(malformed) bookings lack the time of their status, or expire before they were made")
        }
        // The runs of the line hold exactly the sale's requests: each request lies in a run
        // of its sale, and the runs are no longer than the requests are many.
        let outsideTheLine = try count(
            """
            SELECT count(*) FROM request
            WHERE sale = :sale AND coalesce((SELECT first_id FROM request_run AS run WHERE run.sale = :sale
                                             AND run.last_id >= request.id ORDER BY run.last_id LIMIT 1) <= request.id, 0) = 0
            """, [":sale": .text(sale.id.text)])
        let inRuns = try count("SELECT coalesce(sum(last_id - first_id + 1), 0) FROM request_run WHERE sale = :sale",
                               [":sale": .text(sale.id.text)])
        let requests = try count("SELECT count(*) FROM request WHERE sale = :sale", [":sale": .text(sale.id.text)])
        if outsideTheLine > 0 || inRuns != requests {
            violations.append("\(name): its line holds \(inRuns) requests, but it has \(requests), \(outsideTheLine) of them outside the line")
        }
        // Every request up to the sale's cursor has exactly one decision, none after it; an
        // acceptance names a booking of the same user, a rejection a reason.
        let inconsistentRequests = try count(
            """
            SELECT count(*) FROM request JOIN sale ON sale.id = request.sale
            LEFT JOIN event AS decision ON decision.request = request.id
            WHERE request.sale = :sale AND (
                (decision.seq IS NULL) != (request.id > sale.decided_through)
                OR decision.sale != request.sale
                OR decision.kind NOT IN ('held', 'accepted', 'rejected')
                OR (decision.kind = 'rejected') != (decision.detail IS NOT NULL)
                OR (decision.kind != 'rejected' AND NOT EXISTS (SELECT 1 FROM booking
                    WHERE booking.id = decision.booking AND booking.sale = request.sale AND booking.user = request.user)))
            """, [":sale": .text(sale.id.text)])
        if inconsistentRequests > 0 {
            violations.append("\(name): \(inconsistentRequests) requests whose decision does not fit the line, or names no booking or reason")
        }
        let bookings = counted.values.reduce(0, +)
        let holdEvents = try count("SELECT count(*) FROM event WHERE sale = :sale AND kind = 'held'", [":sale": .text(sale.id.text)])
        if holdEvents != bookings {
            violations.append("\(name): \(bookings) bookings but \(holdEvents) 'held' events")
        }
        return violations
    }

    // MARK: - Shared steps (inside a caller's transaction)

    func loadSale(_ id: SaleID) throws -> Sale? {
        try db.firstRow(selectSale, [":id": .text(id.text)], decodeSale)
    }

    func allSales() throws -> [Sale] {
        try db.rows("SELECT \(saleColumns) FROM sale ORDER BY id", [:], decodeSale)
    }

    func requireSale(_ id: SaleID) throws -> Sale {
        guard let sale = try loadSale(id) else {
            throw FlashSaleError.notFound("no sale \(id); 'flashsale sales' lists them")
        }
        return sale
    }

    /// The booking `id` of sale `saleID`; with `user`, only if it is that user's. Not found,
    /// whichever part is missing, so a wrong user learns nothing about other users' bookings.
    private func requireBooking(_ id: BookingID, in saleID: SaleID, user: String?) throws -> (Sale, Booking) {
        let sale = try requireSale(saleID)
        guard let booking = try db.firstRow("SELECT \(bookingColumns) FROM booking WHERE id = :id AND sale = :sale",
                                            [":id": .text(id.text), ":sale": .text(saleID.text)], decodeBooking),
              user == nil || booking.user == user
        else {
            throw FlashSaleError.notFound("no booking \(id) in sale \(saleID)" + (user.map { " for user '\(Quoted($0))'" } ?? ""))
        }
        return (sale, booking)
    }

    private func booking(of sale: SaleID, key: String) throws -> Booking? {
        try db.firstRow(selectBookingByKey,
                        [":sale": .text(sale.text), ":key": .text(key)], decodeBooking)
    }

    func activeBookings(of user: String, in sale: SaleID, at now: Instant) throws -> Int64 {
        try rowStatements.countActiveBookings.run(.text(sale.text), .text(user), .integer(now.milliseconds)) ?? 0
    }

    /// When the earliest hold of a sale expires (or expired); nil when none is held.
    public func nextHoldExpiry(of sale: SaleID) throws -> Instant? {
        try db.firstRow(firstHoldExpiry, [":sale": .text(sale.text)]) { $0.optionalInt64(0).map(Instant.init) } ?? nil
    }

    /// Overdue holds of a sale, the longest overdue first; all of them when `limit` is nil.
    func oldestOverdueHolds(of sale: SaleID, at now: Instant, limit: Int64?) throws -> [Booking] {
        try db.rows(selectOverdueHolds,
                    [":sale": .text(sale.text), ":now": .integer(now.milliseconds), ":limit": .integer(limit ?? -1)],
                    decodeBooking)
    }

    /// Expires overdue holds, their items back to stock; returns how many.
    @discardableResult
    func expireOverdueHolds(of sale: Sale, at now: Instant, limit: Int64?, by command: String) throws -> Int64 {
        let overdue = try oldestOverdueHolds(of: sale.id, at: now, limit: limit)
        for hold in overdue {
            try move(hold, to: .expired, at: now, by: command)
        }
        return Int64(overdue.count)
    }

    private func insertHold(_ request: BookingRequest, sale: Sale, at now: Instant, requestID: Int64?) throws -> Booking {
        let booking = Booking(
            id: BookingID.random(), sale: sale.id, user: request.user, status: .held, createdAt: now,
            expiresAt: now.adding(sale.hold), confirmedAt: nil, cancelledAt: nil, expiredAt: nil,
            ip: request.ip, userAgent: request.userAgent, key: request.key)
        try db.execute(
            """
            INSERT INTO booking (id, sale, user, status, created_at, expires_at, ip, ip_canonical, user_agent, key)
            VALUES (:id, :sale, :user, 'held', :created_at, :expires_at, :ip, :ip_canonical, :user_agent, :key)
            """,
            [":id": .text(booking.id.text), ":sale": .text(sale.id.text), ":user": .text(booking.user),
             ":created_at": .integer(booking.createdAt.milliseconds), ":expires_at": .integer(booking.expiresAt.milliseconds),
             ":ip": .text(booking.ip), ":ip_canonical": .text(booking.ip.flatMap(IPAddress.init)?.canonical),
             ":user_agent": .text(booking.userAgent), ":key": .text(booking.key)])
        try adjustCounters(of: sale.id, available: -1, held: 1, at: now)
        try appendEvent(at: now, sale: sale.id, kind: "held", booking: booking.id, user: booking.user, request: requestID)
        return booking
    }

    /// Moves a booking to `status` and the sale's counters with it, with its event.
    /// An item leaving held or booked for a final state goes back to `available`.
    @discardableResult
    func move(_ booking: Booking, to status: BookingStatus, at now: Instant, by command: String) throws -> Booking {
        try db.execute(
            """
            UPDATE booking SET status = :status,
                confirmed_at = CASE :status WHEN 'booked' THEN :now ELSE confirmed_at END,
                cancelled_at = CASE :status WHEN 'cancelled' THEN :now ELSE cancelled_at END,
                expired_at = CASE :status WHEN 'expired' THEN expires_at ELSE expired_at END
            WHERE id = :id AND status = :from
            """,
            [":status": .text(status.rawValue), ":now": .integer(now.milliseconds),
             ":id": .text(booking.id.text), ":from": .text(booking.status.rawValue)])
        // The row was read in this same write transaction; anything else is a bug.
        guard db.changes == 1 else {
            throw FlashSaleError.internalFailure("booking \(booking.id) changed under a write lock")
        }
        var delta: [BookingStatus: Int64] = [booking.status: -1]
        delta[status, default: 0] += 1
        let returnsItem = status == .cancelled || status == .expired
        try adjustCounters(of: booking.sale, available: returnsItem ? 1 : 0, held: delta[.held] ?? 0,
                           booked: delta[.booked] ?? 0, cancelled: delta[.cancelled] ?? 0,
                           expired: delta[.expired] ?? 0, at: now)
        try appendEvent(at: now, sale: booking.sale, kind: status.rawValue, booking: booking.id,
                        user: booking.user, detail: command)
        return try db.firstRow("SELECT \(bookingColumns) FROM booking WHERE id = :id",
                               [":id": .text(booking.id.text)], decodeBooking) ?? booking
    }

    func adjustCounters(of sale: SaleID, available: Int64 = 0, held: Int64 = 0, booked: Int64 = 0,
                                cancelled: Int64 = 0, expired: Int64 = 0, at now: Instant) throws {
        try db.execute(
            """
            UPDATE sale SET available = available + :available, held = held + :held,
                booked = booked + :booked, cancelled = cancelled + :cancelled,
                expired = expired + :expired, high_water = max(high_water, :now)
            WHERE id = :sale
            """,
            [":available": .integer(available), ":held": .integer(held), ":booked": .integer(booked),
             ":cancelled": .integer(cancelled), ":expired": .integer(expired),
             ":now": .integer(now.milliseconds), ":sale": .text(sale.text)])
    }

    func appendEvent(at now: Instant, sale: SaleID, kind: String, booking: BookingID? = nil,
                     user: String? = nil, request: Int64? = nil, detail: String? = nil) throws {
        try rowStatements.appendEvent.run(.integer(now.milliseconds), .text(sale.text), .text(kind), .text(booking?.text),
                                          .text(user), .integer(request), .text(detail))
    }

    func status(of sale: Sale, clock: Instant) throws -> SaleStatus {
        let now = sale.decisionTime(clock: clock)
        let overdue = try count("SELECT count(*) FROM booking WHERE sale = :sale AND \(overdueHold)",
                                [":sale": .text(sale.id.text), ":now": .integer(now.milliseconds)])
        return SaleStatus(sale: sale, at: now, overdue: overdue, queued: try queuedRequests(in: sale.id))
    }

    func count(_ sql: String, _ parameters: KeyValuePairs<String, SQLValue>) throws -> Int64 {
        try db.firstRow(sql, parameters) { $0.int64(0) } ?? 0
    }
}

/// What one write transaction has learnt about a sale, true until this process changes
/// its holds (others cannot write meanwhile): a run of declines in a sold-out sale then
/// asks the database once whether a hold is overdue, not once per request.
final class TransactionFacts {
    /// The earliest expiry among the sale's holds (.some(nil): none held); nil: not known.
    private var firstHoldExpiry: Instant??

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

    func holdsChanged() {
        firstHoldExpiry = nil
    }

    /// The blocks in force for the sale, read once per transaction.
    private var blocks: [Block]?

    func blocks(load: () throws -> [Block]) rethrows -> [Block] {
        if let blocks { return blocks }
        let loaded = try load()
        blocks = loaded
        return loaded
    }
}

/// The statements a sale day runs once per request, bound by position (see RowStatement).
struct RowStatements {
    let countActiveBookings: RowStatement
    let countActiveFromAddress: RowStatement
    let appendEvent: RowStatement
    let insertRequest: RowStatement
    let insertRequests: RowStatement

    init(_ db: Connection) throws {
        countActiveBookings = try RowStatement(
            db, "SELECT count(*) FROM booking WHERE sale = :sale AND user = :user AND \(activeBooking)",
            parameters: [":sale", ":user", ":now"])
        countActiveFromAddress = try RowStatement(
            db, "SELECT count(*) FROM booking WHERE sale = :sale AND ip_canonical = :ip AND \(activeBooking)",
            parameters: [":sale", ":ip", ":now"])
        appendEvent = try RowStatement(
            db, """
                INSERT INTO event (at, sale, kind, booking, user, request, detail)
                VALUES (:at, :sale, :kind, :booking, :user, :request, :detail)
                """,
            parameters: [":at", ":sale", ":kind", ":booking", ":user", ":request", ":detail"])
        insertRequest = try RowStatement(
            db, """
                INSERT INTO request (sale, user, ip, user_agent, key, submitted_at)
                VALUES (:sale, :user, :ip, :user_agent, :key, :now)
                """,
            parameters: [":sale", ":user", ":ip", ":user_agent", ":key", ":now"])
        insertRequests = try RowStatement(db, SaleStore.RequestRows.insert(rows: SaleStore.RequestRows.perStatement),
                                          parameters: SaleStore.RequestRows.parameters(rows: SaleStore.RequestRows.perStatement))
    }
}

// MARK: - SQL shared by several statements

/// The expiry boundary of `Rules.isExpired`, mirrored once in SQL: a hold is overdue
/// from the instant `:now >= expires_at`.
let overdueHold = "(status = 'held' AND expires_at <= :now)"
/// What counts against the per-user limit: booked, or held and not yet expired.
let activeBooking = "(status IN ('held', 'booked') AND NOT \(overdueHold))"

// The statements a busy sale runs for every request, spelled once: a statement's text is
// its key in the connection's cache of prepared statements.
let selectSale = "SELECT \(saleColumns) FROM sale WHERE id = :id"
let selectBookingByKey = "SELECT \(bookingColumns) FROM booking WHERE sale = :sale AND key = :key"
let firstHoldExpiry = "SELECT min(expires_at) FROM booking WHERE sale = :sale AND status = 'held'"
let selectOverdueHolds = """
    SELECT \(bookingColumns) FROM booking WHERE sale = :sale AND \(overdueHold)
    ORDER BY expires_at, id LIMIT :limit
    """

let saleColumns = """
    id, name, state, total, available, held, booked, cancelled, expired, hold_ms, per_user,
    starts_at, ends_at, created_at, high_water, waitlist, per_ip
    """
let bookingColumns = """
    id, sale, user, status, created_at, expires_at, confirmed_at, cancelled_at, expired_at,
    ip, user_agent, key
    """

// MARK: - Rows

func decodeSale(_ row: Row) throws -> Sale {
    guard let state = OperatorState(rawValue: row.text(2)) else {
        throw FlashSaleError.cantOpen("sale \(Quoted(row.text(0))) has the unknown state '\(Quoted(row.text(2)))'")
    }
    return Sale(
        id: SaleID(trusted: row.text(0)), name: row.text(1), operatorState: state,
        counters: Counters(total: row.int64(3), available: row.int64(4), held: row.int64(5),
                           booked: row.int64(6), cancelled: row.int64(7), expired: row.int64(8)),
        hold: Span(milliseconds: row.int64(9)), perUser: row.int64(10), perIP: row.optionalInt64(16), waitlist: row.int64(15) != 0,
        startsAt: Instant(milliseconds: row.int64(11)), endsAt: row.optionalInt64(12).map(Instant.init),
        createdAt: Instant(milliseconds: row.int64(13)), highWater: Instant(milliseconds: row.int64(14)))
}

func decodeBooking(_ row: Row) throws -> Booking {
    guard let status = BookingStatus(rawValue: row.text(3)) else {
        throw FlashSaleError.cantOpen("booking \(Quoted(row.text(0))) has the unknown status '\(Quoted(row.text(3)))'")
    }
    return Booking(
        id: BookingID(trusted: row.text(0)), sale: SaleID(trusted: row.text(1)), user: row.text(2), status: status,
        createdAt: Instant(milliseconds: row.int64(4)), expiresAt: Instant(milliseconds: row.int64(5)),
        confirmedAt: row.optionalInt64(6).map(Instant.init), cancelledAt: row.optionalInt64(7).map(Instant.init),
        expiredAt: row.optionalInt64(8).map(Instant.init),
        ip: row.optionalText(9), userAgent: row.optionalText(10), key: row.optionalText(11))
}

private extension OperatorCommand {
    var pastTense: String {
        switch self {
        case .pause: "paused"
        case .resume: "resumed"
        case .close: "closed"
        }
    }
}
