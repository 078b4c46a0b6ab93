import FlashSaleCore

/// What operators and other programs read: bookings, requests, the event log and the
/// gauges for monitoring, each as it looks at the sale's decision time.
extension Engine {
    /// `bookings` and `export`: a sale's bookings in the order they were made, as they look
    /// now (a hold past its expiry is expired, by the one rule of Core), optionally only one
    /// status or one user's, handed to `body` one at a time from one consistent snapshot.
    /// Returns how many were handed over.
    @discardableResult
    public func forEachBooking(of saleID: SaleID, status: BookingStatus?, user: UserID?, clock: Instant,
                               _ body: (Booking) throws -> Void) throws -> Int64 {
        try store.read { reading in
            let now = try reading.requireSale(saleID).decisionTime(clock: clock)
            var handed: Int64 = 0
            try reading.forEachBooking(of: saleID, user: user) { stored in
                let booking = stored.seen(at: now)
                if status == nil || booking.status == status {
                    try body(booking)
                    handed += 1
                }
            }
            return handed
        }
    }

    public func bookings(of saleID: SaleID, status: BookingStatus?, user: UserID?, clock: Instant) throws -> [Booking] {
        var result: [Booking] = []
        try forEachBooking(of: saleID, status: status, user: user, clock: clock) { result.append($0) }
        return result
    }

    /// At most `limit` of `user`'s bookings of a sale, in the order they were made, from
    /// the one after `after` (from the first without), as they look now; and whether more
    /// follow. A page for a client that pages through a history which may be thousands
    /// long, each page read from where the last ended. An `after` that names none of the
    /// user's bookings of the sale is `bookingNotFound`.
    public func bookingPage(of saleID: SaleID, user: UserID, after: BookingID?, limit: Int, clock: Instant) throws -> BookingPage {
        try store.read { reading in
            let now = try reading.requireSale(saleID).decisionTime(clock: clock)
            // One more than the page: whether any follow.
            let stored = try reading.bookings(of: user, in: saleID, after: after, limit: limit + 1)
            if let after, stored == nil { throw SaleError.bookingNotFound(after, sale: saleID, user: user) }
            let rows = stored ?? []
            return BookingPage(bookings: rows.prefix(limit).map { $0.seen(at: now) }, more: rows.count > limit)
        }
    }

    /// `request ID`: a queued request with its place in line, or its decision.
    public func request(_ id: RequestID) throws -> QueuedRequest {
        try store.read { reading in
            guard let request = try reading.request(id) else {
                throw SaleError.requestNotFound(id)
            }
            guard request.status == .queued else { return request }
            return request.placed(at: try reading.queuedRequests(in: request.sale, through: id))
        }
    }

    /// The events with `seq > after` (of one sale, or of all), oldest first, at most `limit`.
    public func events(after: Int64, sale: SaleID?, limit: Int64) throws -> [Event] {
        try store.read { reading in
            if let sale { _ = try reading.requireSale(sale) }
            return try reading.events(after: after, sale: sale, limit: limit)
        }
    }

    /// The event with `seq` (the first after it, were there none): what a follower checks
    /// is still the one it reached, which a log gone back under it has lost (a database
    /// restored in place from an older backup).
    public func event(_ seq: Int64) throws -> Event? {
        try events(after: seq - 1, sale: nil, limit: 1).first
    }

    /// Whether the log still holds `event` under its seq. A follower's last event gone, or
    /// another in its place, is the log gone back under it (its database restored in place
    /// from an older backup, and maybe written to since): waiting for seqs past it would
    /// skip the new events numbered up to it, silent. `events --follow` and serve's live
    /// updates both ask this.
    public func logStillHas(_ event: Event) throws -> Bool {
        try self.event(event.seq) == event
    }

    /// The highest event `seq` so far (0 for none): a follower that starts now starts there.
    public func latestEventSeq() throws -> Int64 {
        try store.read { try $0.latestEventSeq() }
    }

    /// A health check's read: the rows every buyer's request reads, the sales', and the
    /// log's tail that followers read, counting nothing (a check comes every few seconds,
    /// and a sale may have a million holds to count).
    public func checkReadable() throws {
        try store.read { reading in
            _ = try reading.allSales()
            _ = try reading.latestEventSeq()
        }
    }

    /// The gauges of one sale for `metrics`.
    public struct SaleMetrics: Sendable {
        public let status: SaleStatus
        /// How long the head of the sale's queue has waited at the sale's decision time;
        /// zero when nothing is queued.
        public let oldestQueued: Span
        /// Every booking attempt counted in the sale, and the declined ones by code.
        public let attempts: AttemptTotals
    }

    /// The gauges of one sale, or of every sale in id order (not found for no such sale),
    /// all from one snapshot.
    public func metrics(of saleID: SaleID?, clock: Instant) throws -> [SaleMetrics] {
        try store.read { reading in
            let sales = try saleID.map { [try reading.requireSale($0)] } ?? reading.allSales()
            return try sales.map { sale in
                let status = try status(of: sale, in: reading, clock: clock)
                let submitted = status.queued == 0 ? nil : try reading.oldestQueuedSubmission(in: sale.id)
                let waited = submitted.map { max(0, sale.decisionTime(clock: clock).milliseconds - $0.milliseconds) } ?? 0
                return SaleMetrics(status: status, oldestQueued: Span(milliseconds: waited),
                                   attempts: try reading.attemptTotals(of: sale.id))
            }
        }
    }
}

private extension QueuedRequest {
    /// The same request, with its place in line.
    func placed(at position: Int64) -> QueuedRequest {
        QueuedRequest(id: id, sale: sale, user: user, ip: ip, userAgent: userAgent, key: key, status: status,
                      reason: reason, booking: booking, submittedAt: submittedAt, decidedAt: decidedAt, position: position)
    }
}

/// A page of a user's bookings (`Engine.bookingPage`).
public struct BookingPage: Sendable {
    public var bookings: [Booking]
    /// Whether bookings follow the page's last.
    public var more: Bool
}
