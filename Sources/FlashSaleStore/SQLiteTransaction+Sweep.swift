import FlashSaleCore
import FlashSaleEngine

/// A hold's place in line to be expired (`HoldKey`): its expiry, then its rowid. Bookings
/// are appended in the order they are made, and an entry of the partial index
/// `booking_held_by_expiry (sale, expires_at)` ends with its rowid, so the index holds a
/// sale's line in exactly this order: SQLite walks it without sorting, and a batch of the
/// line is a run of neighbouring rows rather than pages from all over the table (holds of
/// one instant, which a fixed clock or a `process` batch makes by the thousand, included).
let holdOrder = "expires_at, rowid"

/// The sale's line of overdue holds, `:limit` of them (-1: all).
private let overdueLine = """
    FROM booking WHERE sale = :sale AND \(overdueHold) ORDER BY \(holdOrder) LIMIT :limit
    """

extension SQLiteTransaction {
    /// Two ranges of the index: the rest of the key's instant, then the later instants.
    /// As one range, `(expires_at, rowid) > (...)`, SQLite would seek by instant only and
    /// step through every earlier hold of that instant on each call.
    func overdueHoldKeys(in sale: SaleID, at now: Instant, after key: HoldKey?, limit: Int64) throws -> [HoldKey] {
        let decode = { (row: Row) throws in HoldKey(expiresAt: Instant(milliseconds: try row.int64("expires_at")), made: try row.int64("made")) }
        var keys: [HoldKey] = []
        if let key, Rules.isExpired(expiresAt: key.expiresAt, at: now) {
            // The instant's holds are overdue with it. `overdueHold`'s own range here would
            // make SQLite prefer it to the (instant, rowid) seek, and sort.
            keys = try db.rows(
                """
                SELECT expires_at, rowid AS made FROM booking
                WHERE sale = :sale AND status = 'held' AND expires_at = :expires_at AND rowid > :made
                ORDER BY rowid LIMIT :limit
                """,
                [":sale": .text(sale.text), ":expires_at": .integer(key.expiresAt.milliseconds), ":made": .integer(key.made),
                 ":limit": .integer(limit)], decode)
        }
        guard keys.count < limit else { return keys }
        return keys + (try db.rows(
            """
            SELECT expires_at, rowid AS made FROM booking
            WHERE sale = :sale AND \(overdueHold) AND expires_at > :after
            ORDER BY \(holdOrder) LIMIT :limit
            """,
            [":sale": .text(sale.text), ":now": .integer(now.milliseconds),
             ":after": .integer(key?.expiresAt.milliseconds ?? .min), ":limit": .integer(limit - Int64(keys.count))], decode))
    }

    /// Three statements for the whole batch: the events, in line order, the holds expiring
    /// in each second, then the rows they name. All select the same first `limit` of the
    /// line: nothing else writes between them.
    func expireOverdueHolds(in sale: SaleID, at now: Instant, limit: Int64?, by cause: ChangeCause) throws -> Int64 {
        forgetKnownBookings()
        try db.execute(
            "INSERT INTO event (at, sale, kind, booking, user, detail) SELECT :now, sale, :kind, id, user, :detail \(overdueLine)",
            [":sale": .text(sale.text), ":now": .integer(now.milliseconds), ":limit": .integer(limit ?? -1),
             ":kind": .text(EventKind.expired.rawValue), ":detail": .text(cause.rawValue)])
        let expired = db.changes
        try db.forEachRow(
            "SELECT min(expires_at) AS expires_at, count(*) AS holds FROM (SELECT expires_at \(overdueLine)) GROUP BY expires_at / 1000",
            [":sale": .text(sale.text), ":now": .integer(now.milliseconds), ":limit": .integer(limit ?? -1)]
        ) { row in
            countHeld(-(try row.int64("holds")), of: sale, expiringAt: try row.int64("expires_at"))
        }
        // expired_at is the expiry itself, as `setStatus` records it.
        try db.execute(
            "UPDATE booking SET status = :expired, expired_at = expires_at WHERE rowid IN (SELECT rowid \(overdueLine))",
            [":sale": .text(sale.text), ":now": .integer(now.milliseconds), ":limit": .integer(limit ?? -1),
             ":expired": .text(BookingStatus.expired.rawValue)])
        guard db.changes == expired else {
            throw FlashSaleError.internalFailure("sale \(sale): \(expired) expiry events but \(db.changes) holds expired")
        }
        return expired
    }
}
