import FlashSaleCore
import FlashSaleEngine

/// The active bookings of the users and addresses a run of decisions will ask about, read
/// in one statement each where one decision at a time costs a round trip each: what turns
/// `book --stream`, `process` and `serve` from a round trip per request into a few per group.
///
/// Exact while this transaction holds the sale's row lock, which every writer of the sale's
/// bookings takes first; kept so by this transaction's own holds (`add`), and forgotten on
/// any other change to bookings (`setStatus`, `expireOverdueHolds`). Each booking is kept as the instant it
/// stops counting (a hold's expiry; never, booked), so the counts hold at any later `now`:
/// a stream's clock moves between its decisions.
struct ActiveBookingsReadAhead {
    let sale: SaleID
    /// When it was read: a count before then would need the holds that had expired by it.
    let readAt: Instant
    private var users: [String: [Instant?]]
    private var addresses: [String: [Instant?]]

    init(sale: SaleID, readAt: Instant, users: [String: [Instant?]], addresses: [String: [Instant?]]) {
        self.sale = sale
        self.readAt = readAt
        self.users = users
        self.addresses = addresses
    }

    /// The user's active bookings at `now`, or nil when not read ahead.
    func count(ofUser user: String, in sale: SaleID, at now: Instant) -> Int64? {
        count(users, user, in: sale, at: now)
    }

    func count(ofAddress address: String, in sale: SaleID, at now: Instant) -> Int64? {
        count(addresses, address, in: sale, at: now)
    }

    /// A hold this transaction made.
    mutating func add(_ hold: Booking, address: String?) {
        guard hold.sale == sale else { return }
        users[hold.user.text]?.append(hold.expiresAt)
        if let address { addresses[address]?.append(hold.expiresAt) }
    }

    private func count(_ known: [String: [Instant?]], _ key: String, in sale: SaleID, at now: Instant) -> Int64? {
        guard sale == self.sale, now >= readAt, let ends = known[key] else { return nil }
        // `Rules.isExpired`: a hold stops counting from its expiry on.
        return Int64(ends.count { $0.map { now < $0 } ?? true })
    }
}

extension PostgresTransaction {
    var wantsReadAhead: Bool { true }

    /// Reads ahead only under the sale's row lock (taken when the sale was read in this
    /// transaction): without it another writer could change the counts meanwhile.
    func readAhead(activeBookingsOf users: [UserID], fromAddresses addresses: [String], in sale: SaleID,
                   at now: Instant) throws {
        guard isWrite, hasLocked(sale) else { return }
        readAheadCounts = ActiveBookingsReadAhead(
            sale: sale, readAt: now,
            users: try activeBookingEnds(column: "user_id", of: users.map(\.text), in: sale, at: now),
            addresses: try activeBookingEnds(column: "ip_canonical", of: addresses, in: sale, at: now))
    }

    /// For each of `values` (none left out), when each of its active bookings at `now` stops
    /// counting: a hold's expiry, or nil for booked.
    private func activeBookingEnds(column: String, of values: [String], in sale: SaleID,
                                   at now: Instant) throws -> [String: [Instant?]] {
        var ends: [String: [Instant?]] = [:]
        guard !values.isEmpty else { return ends }
        ends.reserveCapacity(values.count)
        for value in values { ends[value] = [] }
        let rows = try session.rows(
            """
            SELECT \(column) AS value, CASE WHEN status = 'held' THEN expires_at END AS ends_at
            FROM booking WHERE sale = $1 AND \(column) = ANY($2) AND \(activeBooking(now: "$3"))
            """, [.text(sale.text), .texts(Array(ends.keys)), .int(now.milliseconds)]) { row in
            (try row.text("value"), try row.optionalInt64("ends_at").map(Instant.init(milliseconds:)))
        }
        for (value, end) in rows { ends[value, default: []].append(end) }
        return ends
    }
}
