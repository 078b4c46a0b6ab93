import FlashSaleCore
import FlashSaleEngine

/// What a run of decisions will ask about one sale's bookings, read in one statement or two
/// where one decision at a time costs a round trip each: the active bookings of its users
/// and addresses, and the booking and queued request each of its keys already has. It turns
/// `book --stream`, `process` and `serve` from a round trip per request into a few per group.
///
/// Exact while this transaction holds the sale's row lock, which every writer of the sale's
/// bookings and requests takes first; kept so by this transaction's own holds (`add`) and
/// requests (`addRequest`), and forgotten on any other change to bookings (`setStatus`,
/// `expireOverdueHolds`).
struct BookingsReadAhead {
    let sale: SaleID
    private var users: ActiveBookingEnds
    private var addresses: ActiveBookingEnds
    /// The keys read, by their bytes (`ExactText`), as the tables compare them, and what
    /// each has (none, when absent).
    private let keys: Set<ExactText>
    private var bookingsByKey: [ExactText: Booking]
    private var requestsByKey: [ExactText: (id: RequestID, user: UserID)]

    init(sale: SaleID, readAt: Instant, users: [ExactText: [Instant?]], addresses: [ExactText: [Instant?]],
         keys: Set<ExactText>, bookingsByKey: [ExactText: Booking], requestsByKey: [ExactText: (id: RequestID, user: UserID)]) {
        self.sale = sale
        self.users = ActiveBookingEnds(sale: sale, readAt: readAt, ends: users)
        self.addresses = ActiveBookingEnds(sale: sale, readAt: readAt, ends: addresses)
        self.keys = keys
        self.bookingsByKey = bookingsByKey
        self.requestsByKey = requestsByKey
    }

    /// The user's active bookings at `now`, or nil when not read ahead.
    func count(ofUser user: String, in sale: SaleID, at now: Instant) -> Int64? {
        users.count(of: user, in: sale, at: now)
    }

    func count(ofAddress address: String, in sale: SaleID, at now: Instant) -> Int64? {
        addresses.count(of: address, in: sale, at: now)
    }

    /// Whether `booking(withKey:)` and `request(withKey:)` know the key's answer.
    func knows(key: String, in sale: SaleID) -> Bool {
        sale == self.sale && keys.contains(ExactText(key))
    }

    /// The booking a known key has, if any.
    func booking(withKey key: String) -> Booking? {
        bookingsByKey[ExactText(key)]
    }

    /// The queued request a known key has, if any.
    func request(withKey key: String) -> (id: RequestID, user: UserID)? {
        requestsByKey[ExactText(key)]
    }

    /// A hold this transaction made.
    mutating func add(_ hold: Booking, address: String?) {
        guard hold.sale == sale else { return }
        users.add(hold, owner: hold.user.text)
        if let address { addresses.add(hold, owner: address) }
        if let key = hold.key.map(ExactText.init), keys.contains(key) { bookingsByKey[key] = hold }
    }

    /// A keyed request this transaction queued.
    mutating func addRequest(_ id: RequestID, key: String, user: UserID, in sale: SaleID) {
        let key = ExactText(key)
        guard sale == self.sale, keys.contains(key) else { return }
        requestsByKey[key] = (id, user)
    }
}

extension PostgresTransaction {
    var wantsReadAhead: Bool { true }

    /// Reads ahead only under the sale's row lock: without it another writer could change
    /// the counts meanwhile. One statement for the users' and addresses' bookings and the
    /// sale's blocks. When the transaction has not read the sale yet (`book`), its row is
    /// locked and read by a statement sent just before, with one wait for both
    /// (`PostgresSession.rowsOfEach`): the read-ahead's snapshot is taken once the lock is
    /// held, and `book` waits once for both (see `commit`).
    func readAhead(activeBookingsOf users: [UserID], fromAddresses addresses: [String], keys: [String], in sale: SaleID,
                   at now: Instant) throws {
        guard isWrite else { return }
        let keys = Set(keys.map(ExactText.init))
        // A run may ask about a user or an address more than once.
        var users = Dictionary(users.map { (ExactText($0.text), [Instant?]()) }, uniquingKeysWith: { first, _ in first })
        var addresses = Dictionary(addresses.map { (ExactText($0), [Instant?]()) }, uniquingKeysWith: { first, _ in first })
        // A probe of its index for each user and each address (`OFFSET 0` keeps each probe
        // a subquery of its own, which the planner cannot turn into a join): `= ANY($2)`
        // leaves the planner free to read every booking of the sale instead, which it does
        // while the table has no statistics (filled since autovacuum last analyzed it,
        // as on a sale's first minute), so that each group read more than the one before.
        // One value (a single `book`) is looked up directly: a new connection's server,
        // which plans every statement from scratch, planned the join in about twice the
        // time (0.5 ms of a single `book`'s 17). None (a sale with no per-IP limit): no
        // probe at all.
        func probe(_ what: String, _ column: String, of wanted: String, count: Int) -> String {
            let endsAt = "CASE WHEN status = 'held' THEN expires_at END"
            switch count {
            case 0:
                return ""
            case 1:
                return """
                    UNION ALL
                    SELECT '\(what)', \(column), \(endsAt), NULL, NULL, NULL, NULL, NULL, NULL FROM booking
                    WHERE sale = $1 AND \(column) = (\(wanted)::text[])[1] AND \(activeBooking(now: "$4"))
                    """
            default:
                return """
                    UNION ALL
                    SELECT '\(what)', wanted.value, found.ends_at, NULL, NULL, NULL, NULL, NULL, NULL
                    FROM unnest(\(wanted)::text[]) AS wanted (value) CROSS JOIN LATERAL (
                        SELECT \(endsAt) AS ends_at FROM booking
                        WHERE sale = $1 AND \(column) = wanted.value AND \(activeBooking(now: "$4")) OFFSET 0) AS found
                    """
            }
        }
        // The sale's blocks first, where the columns get their names and types.
        let readAhead = (sql: """
            SELECT 'block' AS what, value, NULL::bigint AS ends_at, id, kind, contains, sale, reason, created_at
            FROM block WHERE sale IS NULL OR sale = $1
            \(probe("user", "user_id", of: "$2", count: users.count))
            \(probe("address", "ip_canonical", of: "$3", count: addresses.count))
            """, values: [SQLValue.text(sale.text), .texts(users.keys.map(\.text)), .texts(addresses.keys.map(\.text)), .int(now.milliseconds)])
        // Each key's booking and queued request, if any: one row per key, a probe of each
        // key's index (`PostgresKeys`).
        let keysRead = keys.isEmpty ? [] : [(sql: """
            SELECT wanted.value, found.*, queued.id AS request_id, queued.user_id AS request_user
            FROM unnest($2::text[]) AS wanted (value)
            LEFT JOIN LATERAL (\(PostgresKeys.lookup(bookingColumns, in: "booking", key: "wanted.value", sale: "$1"))) AS found ON true
            LEFT JOIN LATERAL (\(PostgresKeys.lookup("id, user_id", in: "request", key: "wanted.value", sale: "$1"))) AS queued ON true
            """, values: [SQLValue.text(sale.text), .texts(keys.map(\.text))])]
        let found: [Row]
        let foundByKey: [Row]
        // This transaction's holds not sent yet: their COPY goes after the read-ahead, to be
        // stored while the caller decides the run (W2's `process` spent 1.9 s of its 7.0 in
        // COPYs and 1.2 s deciding, one after the other), and they are counted here instead.
        var unsent: [(hold: Booking, address: String?)] = []
        // A file's submits ask for keys only: no counts, nor blocks.
        let countsWanted = !users.isEmpty || !addresses.isEmpty
        if hasLocked(sale) {
            guard countsWanted || !keys.isEmpty else { return }
            unsent = heldBack.holds
            let asked = try ((countsWanted ? [readAhead] : []) + keysRead).map { try store.session.ask($0.sql, $0.values) }
            try sendHeldBack()
            let answers = try asked.map { try store.session.rows(answering: $0) }
            found = countsWanted ? answers[0] : []
            foundByKey = keys.isEmpty ? [] : answers[answers.count - 1]
        } else {
            let answers = try session.rowsOfEach([(Self.lockingSaleRead, [.text(sale.text)]), readAhead] + keysRead)
            guard let row = answers[0].first else { return }
            lockedAhead = try decodeSale(row)
            didLock(sale)
            found = answers[1]
            foundByKey = answers.count > 2 ? answers[2] : []
        }
        var blocks: [(id: Int64, block: Block)] = []
        for row in found {
            switch try row.text("what") {
            case "block": blocks.append((try row.int64("id"), try decodeBlock(row)))
            case "user": users[ExactText(try row.text("value")), default: []].append(try row.optionalInt64("ends_at").map(Instant.init))
            default: addresses[ExactText(try row.text("value")), default: []].append(try row.optionalInt64("ends_at").map(Instant.init))
            }
        }
        var bookingsByKey: [ExactText: Booking] = [:]
        var requestsByKey: [ExactText: (id: RequestID, user: UserID)] = [:]
        for row in foundByKey {
            let key = ExactText(try row.text("value"))
            if try row.optionalText("id") != nil { bookingsByKey[key] = try decodeBooking(row) }
            if let id = try row.optionalInt64("request_id") {
                requestsByKey[key] = (RequestID(id), UserID(trusted: try row.text("request_user")))
            }
        }
        var known = BookingsReadAhead(sale: sale, readAt: now, users: users, addresses: addresses, keys: keys,
                                      bookingsByKey: bookingsByKey, requestsByKey: requestsByKey)
        for (hold, address) in unsent { known.add(hold, address: address) }
        bookingsReadAhead = known
        if countsWanted { readAheadBlocks = (sale, blocks.sorted { $0.id < $1.id }.map(\.block)) }
    }
}
