import FlashSaleCore
import FlashSaleEngine

/// A hold's place in line to be expired (`HoldKey`): its expiry, then `made`, the order
/// holds were made in; the partial index `booking_held_by_expiry (sale, expires_at, made)`
/// holds a sale's line in exactly this order.
extension PostgresTransaction {
    func earliestHoldExpiry(in sale: SaleID) throws -> Instant? {
        try session.firstRow("SELECT min(expires_at) AS first FROM booking WHERE sale = $1 AND status = 'held'",
                             [.text(sale.text)]) { try $0.optionalInt64("first").map(Instant.init) } ?? nil
    }

    /// All of them for a nil `limit` (LIMIT NULL).
    func overdueHolds(in sale: SaleID, at now: Instant, limit: Int64?) throws -> [Booking] {
        try session.rows(
            """
            SELECT \(bookingColumns) FROM booking WHERE sale = $1 AND \(overdueHold(now: "$2"))
            ORDER BY expires_at, made LIMIT $3
            """, [.text(sale.text), .int(now.milliseconds), .int(limit)], decodeBooking)
    }

    func overdueHoldKeys(in sale: SaleID, at now: Instant, after key: HoldKey?, limit: Int64) throws -> [HoldKey] {
        try session.rows(
            """
            SELECT expires_at, made FROM booking
            WHERE sale = $1 AND \(overdueHold(now: "$2")) AND (expires_at, made) > ($3, $4)
            ORDER BY expires_at, made LIMIT $5
            """,
            [.text(sale.text), .int(now.milliseconds), .int(key?.expiresAt.milliseconds ?? .min), .int(key?.made ?? .min),
             .int(limit)]
        ) { HoldKey(expiresAt: Instant(milliseconds: try $0.int64("expires_at")), made: try $0.int64("made")) }
    }

    func overdueHoldCount(in sale: SaleID, at now: Instant) throws -> Int64 {
        try session.count("SELECT count(*) FROM booking WHERE sale = $1 AND \(overdueHold(now: "$2"))",
                          [.text(sale.text), .int(now.milliseconds)])
    }

    /// The first `limit` of the line expire (all of them for nil), their events in line
    /// order. Held back to the commit, as every other event is, not numbered in the
    /// statement (as `rejectRun` numbers its run's), which would take the seq counter's row
    /// lock here: a decision expires a hold of its sale before it decides, and a group of
    /// `serve`'s that then locked another sale's row could deadlock with a group holding
    /// that sale and waiting for the counter at its commit. With no limit (`seed-inventory --exactly`,
    /// which may find a million overdue holds, and locks no other sale) a run of
    /// `rowsAtOnce` at a time, each run's events numbered and sent before the next
    /// (`sendHeldEventsNumbered`): never all of them in memory at once.
    func expireOverdueHolds(in sale: SaleID, at now: Instant, limit: Int64?, by cause: ChangeCause) throws -> Int64 {
        if let limit { return try expireRun(in: sale, at: now, limit: limit, by: cause) }
        let runLength = Int64(rowsAtOnce)
        var expired: Int64 = 0
        while true {
            let run = try expireRun(in: sale, at: now, limit: runLength, by: cause)
            expired += run
            try sendHeldEventsNumbered()
            if run < runLength { return expired }
        }
    }

    /// One statement: the first `limit` of the line expire (expired_at is the expiry
    /// itself, as `setStatus` records it), their events held back. The holds are found by
    /// key (`= ANY` of the line's ids): as a join, the planner hashed the line and read the
    /// whole booking table for it, every batch (48 ms of a batch's 186 for a sale of
    /// 200,000; a sweep's time grew with the square of the holds).
    private func expireRun(in sale: SaleID, at now: Instant, limit: Int64, by cause: ChangeCause) throws -> Int64 {
        bookingsReadAhead = nil
        wrote = true
        let expired = try session.rows(
            """
            WITH line AS (SELECT id FROM booking WHERE sale = $1 AND \(overdueHold(now: "$2"))
                          ORDER BY expires_at, made LIMIT $3),
                 expired AS (UPDATE booking SET status = 'expired', expired_at = expires_at
                             WHERE booking.id = ANY (ARRAY(SELECT id FROM line))
                             RETURNING booking.id, booking.user_id, booking.expires_at, booking.made)
            SELECT id, user_id FROM expired ORDER BY expires_at, made
            """,
            [.text(sale.text), .int(now.milliseconds), .int(limit)]
        ) { (BookingID(trusted: try $0.text("id")), UserID(trusted: try $0.text("user_id"))) }
        for (booking, user) in expired {
            heldBack.events.append(NewEvent(at: now, sale: sale.text, kind: .expired, booking: booking, user: user,
                                            detail: cause.rawValue))
        }
        return Int64(expired.count)
    }
}
