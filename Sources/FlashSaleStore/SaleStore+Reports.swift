import FlashSaleCore

/// What operators and other programs read out of a sale: the event log (`events`) and the
/// gauges for monitoring (`metrics`); `export` reads with `forEachBooking`. Read-only; an extension
/// of SaleStore, so that business SQL stays in one type.
extension SaleStore {
    // MARK: - Events

    /// One row of the event log, as it was appended with its state change.
    public struct Event: Sendable, Equatable {
        public let seq: Int64
        public let at: Instant
        /// Text, not a SaleID: blocks of every sale are logged with sale `*`.
        public let sale: String
        public let kind: String
        public let booking: String?
        public let user: String?
        public let request: Int64?
        public let detail: String?
    }

    /// The events with `seq > after` (of one sale, or of all), oldest first, at most `limit`.
    ///
    /// Reading in pages by `seq` loses and repeats nothing, because the event table is
    /// written only inside write transactions, which SQLite runs one at a time: `seq`
    /// (AUTOINCREMENT, never reused) grows in commit order, so once a reader has seen
    /// `seq` N, no transaction can still commit an event below N. A page is read whole
    /// before the caller writes it anywhere, so a slow reader of the output never keeps a
    /// read transaction (and so the WAL) open.
    public func events(after: Int64, sale: SaleID?, limit: Int64) throws -> [Event] {
        // Two statements rather than `(:sale IS NULL OR sale = :sale)`, which would keep
        // SQLite from using the index event_by_sale (sale, seq) for one sale.
        if let sale {
            _ = try requireSale(sale)
            return try db.rows(
                """
                SELECT seq, at, sale, kind, booking, user, request, detail FROM event
                WHERE sale = :sale AND seq > :after ORDER BY seq LIMIT :limit
                """,
                [":sale": .text(sale.text), ":after": .integer(after), ":limit": .integer(limit)], decodeEvent)
        }
        return try db.rows(
            """
            SELECT seq, at, sale, kind, booking, user, request, detail FROM event
            WHERE seq > :after ORDER BY seq LIMIT :limit
            """,
            [":after": .integer(after), ":limit": .integer(limit)], decodeEvent)
    }

    // MARK: - Metrics

    /// The gauges of one sale for `metrics`.
    public struct SaleMetrics: Sendable {
        public let status: SaleStatus
        /// How long the head of the sale's queue has waited at the sale's decision time;
        /// zero when nothing is queued.
        public let oldestQueued: Span
    }

    /// The gauges of one sale, or of every sale in id order (exit 3 for no such sale).
    public func metrics(of saleID: SaleID?, clock: Instant) throws -> [SaleMetrics] {
        // One read transaction: every gauge of a scrape comes from the same snapshot.
        try db.readTransaction {
            let sales = try saleID.map { [try requireSale($0)] } ?? allSales()
            return try sales.map { sale in try metrics(of: status(of: sale, clock: clock), clock: clock) }
        }
    }

    private func metrics(of status: SaleStatus, clock: Instant) throws -> SaleMetrics {
        let now = status.sale.decisionTime(clock: clock)
        // The head of the line, where min(submitted_at) would read every queued request.
        let submitted = status.queued == 0 ? nil : try headSubmittedAt(in: status.sale.id)
        let waited = submitted.map { max(0, now.milliseconds - $0.milliseconds) } ?? 0
        return SaleMetrics(status: status, oldestQueued: Span(milliseconds: waited))
    }
}

private func decodeEvent(_ row: Row) throws -> SaleStore.Event {
    SaleStore.Event(
        seq: row.int64(0), at: Instant(milliseconds: row.int64(1)), sale: row.text(2), kind: row.text(3),
        booking: row.optionalText(4), user: row.optionalText(5), request: row.optionalInt64(6), detail: row.optionalText(7))
}
