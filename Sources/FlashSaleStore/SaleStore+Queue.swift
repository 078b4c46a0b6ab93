import FlashSaleCore

/// The durable FIFO queue (`submit`, `process`, `request`) and the streaming path
/// (`book --stream`). An extension of SaleStore, so that business SQL stays in one type.
extension SaleStore {
    // MARK: - Submit

    public enum SubmitOutcome: Equatable, Sendable {
        case queued(Int64)
        /// The request's key was seen before in this sale: its first request id.
        case repeated(Int64)

        public var id: Int64 {
            switch self {
            case .queued(let id), .repeated(let id): id
            }
        }
    }

    /// `submit SALE USER`: enqueue one request durably.
    public func submit(_ request: BookingRequest, clock: Instant) throws -> SubmitOutcome {
        try db.writeTransaction {
            let sale = try requireSale(request.sale)
            let now = sale.decisionTime(clock: clock)
            let outcome = try enqueue(request, at: now)
            try raiseHighWater(of: sale.id, to: now)
            return outcome
        }
    }

    public struct SubmitReport: Sendable {
        public var enqueued: Int64 = 0
        public var repeated: Int64 = 0
        public var firstID: Int64?
        public var lastID: Int64?
        public var skipped: [(line: Int, reason: String)] = []

        mutating func add(_ first: Int64, _ last: Int64) {
            enqueued += last - first + 1
            firstID = firstID ?? first
            lastID = last
        }
    }

    /// Key-less requests of a bulk submit, inserted `RequestRows.perStatement` at a time by one
    /// multi-row INSERT: per-statement work in SQLite, not the row itself, is most of the
    /// cost of inserting a row at a time.
    struct RequestRows {
        static let perStatement = 64
        private let store: SaleStore
        private let sale: SaleID
        private let now: Instant
        private var values: [SQLValue] = []

        init(store: SaleStore, sale: SaleID, at now: Instant) {
            self.store = store
            self.sale = sale
            self.now = now
            values.reserveCapacity(RequestRows.perStatement * 5)
        }

        mutating func append(_ record: RequestRecord, into report: inout SubmitReport) throws {
            values += [.text(record.user), .text(record.ip), .text(record.userAgent), .text(sale.text), .integer(now.milliseconds)]
            if values.count == RequestRows.perStatement * 5 { try flush(into: &report) }
        }

        mutating func flush(into report: inout SubmitReport) throws {
            let rows = values.count / 5
            guard rows > 0 else { return }
            let statement = rows == RequestRows.perStatement
                ? try store.rowStatements.insertRequests
                : try RowStatement(store.db, RequestRows.insert(rows: rows), parameters: RequestRows.parameters(rows: rows))
            try statement.run(values)
            values.removeAll(keepingCapacity: true)
            // Appended in one statement with no explicit ids: consecutive rowids.
            let last = store.db.lastInsertedRowID
            report.add(last - Int64(rows) + 1, last)
        }

        static func insert(rows: Int) -> String {
            "INSERT INTO request (user, ip, user_agent, sale, submitted_at) VALUES "
                + (0..<rows).map { "(:u\($0), :i\($0), :a\($0), :s\($0), :t\($0))" }.joined(separator: ", ")
        }

        static func parameters(rows: Int) -> [String] {
            (0..<rows).flatMap { [":u\($0)", ":i\($0)", ":a\($0)", ":s\($0)", ":t\($0)"] }
        }
    }

    /// `submit SALE --file`: every record of the input in one transaction, all or nothing.
    /// A malformed record rolls everything back (exit 65 naming its line), unless
    /// `skipInvalid`, which leaves it out and reports it.
    public func submit(to saleID: SaleID, clock: Instant, skipInvalid: Bool,
                       records next: () throws -> ReadOutcome?) throws -> SubmitReport {
        try db.writeTransaction {
            let now = try requireSale(saleID).decisionTime(clock: clock)
            var report = SubmitReport()
            var rows = RequestRows(store: self, sale: saleID, at: now)
            while let outcome = try next() {
                switch outcome {
                case .malformed(let line, let reason):
                    guard skipInvalid else {
                        throw FlashSaleError.badInput("line \(line): \(reason); nothing was enqueued (--skip-invalid leaves such lines out)")
                    }
                    report.skipped.append((line, reason))
                case .record(let record) where record.key == nil:
                    try rows.append(record, into: &report)
                case .record(let record):
                    // A key must be looked up, and the rows before it must be in first.
                    try rows.flush(into: &report)
                    let request = BookingRequest(sale: saleID, user: record.user, ip: record.ip,
                                                 userAgent: record.userAgent, key: record.key)
                    do {
                        switch try enqueue(request, at: now) {
                        case .queued(let id): report.add(id, id)
                        case .repeated: report.repeated += 1
                        }
                    } catch let conflict as FlashSaleError where conflict.exitCode == 4 {
                        // A key another user holds: with --skip-invalid a bad line like any other.
                        guard skipInvalid else {
                            throw FlashSaleError.conflict("line \(record.line): \(conflict.message); nothing was enqueued")
                        }
                        report.skipped.append((record.line, conflict.message))
                    }
                }
            }
            try rows.flush(into: &report)
            try raiseHighWater(of: saleID, to: now)
            return report
        }
    }

    /// A submission is part of the sale's history too: without this, a process whose clock
    /// is behind (read before it waited for the lock, or FLASHSALE_NOW stepped back) would
    /// decide a request at a time before the request was submitted.
    private func raiseHighWater(of sale: SaleID, to now: Instant) throws {
        try db.execute("UPDATE sale SET high_water = max(high_water, :now) WHERE id = :sale",
                       [":now": .integer(now.milliseconds), ":sale": .text(sale.text)])
    }

    private func enqueue(_ request: BookingRequest, at now: Instant) throws -> SubmitOutcome {
        if let key = request.key,
           let (id, user) = try db.firstRow("SELECT id, user FROM request WHERE sale = :sale AND key = :key",
                                            [":sale": .text(request.sale.text), ":key": .text(key)],
                                            { ($0.int64(0), $0.text(1)) }) {
            guard user == request.user else {
                throw FlashSaleError.conflict("key \(Quoted(key)) was already used by another user in sale \(request.sale)")
            }
            return .repeated(id)
        }
        try rowStatements.insertRequest.run(.text(request.sale.text), .text(request.user), .text(request.ip),
                                            .text(request.userAgent), .text(request.key), .integer(now.milliseconds))
        return .queued(db.lastInsertedRowID)
    }

    // MARK: - Process

    public struct ProcessReport: Sendable {
        public var accepted: Int64 = 0
        public var rejected: Int64 = 0
        /// Sales whose head of line waits for a held item to come back (waitlist).
        public var waiting: [SaleID] = []

        public var decided: Int64 { accepted + rejected }

        public init() {}
    }

    /// The sales that have queued requests, in id order: one index probe per sale, where
    /// DISTINCT over the queue would read every queued request.
    public func salesWithQueue() throws -> [SaleID] {
        try db.rows(
            """
            SELECT id FROM sale
            WHERE EXISTS (SELECT 1 FROM request WHERE request.sale = sale.id AND request.status = 'queued')
            ORDER BY id
            """) { SaleID(trusted: $0.text(0)) }
    }

    /// Decides up to `batch` queued requests of one sale, oldest first, in one transaction:
    /// each exactly once, as if one at a time. Stops early at a request that must wait
    /// (waitlist), and decides nothing while the sale is scheduled or paused.
    public func processBatch(of saleID: SaleID, batch: Int64, clock: Instant) throws -> ProcessReport {
        try db.writeTransaction {
            var sale = try requireSale(saleID)
            let now = sale.decisionTime(clock: clock)
            var report = ProcessReport()
            let facts = TransactionFacts()
            // A queue in front of a sale that has not opened yet, or is paused, keeps its
            // place: those states pass. Ended and closed sales reject (not_open).
            if [.scheduled, .paused].contains(sale.state(at: now)) {
                report.waiting.append(saleID)
                return report
            }
            try decideLine(&sale, batch: batch, at: now, facts: facts, into: &report)
            if report.decided > 0 {
                try db.execute("UPDATE sale SET high_water = max(high_water, :now) WHERE id = :sale",
                               [":now": .integer(now.milliseconds), ":sale": .text(saleID.text)])
            }
            return report
        }
    }

    /// Decides up to `batch` requests from the head of the sale's line: one by one while
    /// someone could get an item, then set-based once nobody can, except a request whose key
    /// already has a booking, which gets that booking.
    private func decideLine(_ sale: inout Sale, batch: Int64, at now: Instant, facts: TransactionFacts,
                        into report: inout ProcessReport) throws {
        while report.decided < batch {
            if try nobodyCanHold(sale, at: now, facts: facts) {
                let run = try rejectableRun(of: sale.id, limit: batch - report.decided)
                if run.count > 0 { try rejectAtOnce(sale, count: run.count, at: now, into: &report) }
                if !run.stoppedAtKey { return }
            }
            guard let (id, request) = try db.firstRow(
                """
                SELECT id, user, ip, user_agent, key FROM request
                WHERE sale = :sale AND status = 'queued' ORDER BY id LIMIT 1
                """, [":sale": .text(sale.id.text)],
                { [id = sale.id] row in
                    (row.int64(0), BookingRequest(sale: id, user: row.text(1), ip: row.optionalText(2),
                                                  userAgent: row.optionalText(3), key: row.optionalText(4)))
                })
            else { return }
            let decision: HoldDecision
            do {
                decision = try decideHold(request, in: sale, at: now, fromQueue: id, facts: facts)
            } catch let conflict as FlashSaleError where conflict.exitCode == 4 {
                // Its key belongs to another user's booking: refused before anything was written.
                try reject(id, user: request.user, sale: sale.id, reason: conflict.code, at: now)
                report.rejected += 1
                continue
            }
            switch decision {
            case .held(let booking), .repeated(let booking):
                try decide(id, status: .accepted, reason: nil, booking: booking.id, at: now)
                report.accepted += 1
                sale = try requireSale(sale.id)
            case .declined(let decline):
                try reject(id, user: request.user, sale: sale.id, reason: decline.reason.rawValue, at: now)
                report.rejected += 1
            case .waiting:
                report.waiting.append(sale.id)
                return
            }
        }
    }

    /// How many requests from the head of the line the set-based rejection may take: up to
    /// `limit`, stopping before the first whose key already has a booking.
    private func rejectableRun(of sale: SaleID, limit: Int64) throws -> (count: Int64, stoppedAtKey: Bool) {
        try db.firstRow(
            """
            WITH line AS (SELECT id, key FROM request WHERE sale = :sale AND status = 'queued' ORDER BY id LIMIT :limit),
                 stop AS (SELECT min(id) AS id FROM line WHERE key IS NOT NULL
                          AND EXISTS (SELECT 1 FROM booking WHERE booking.sale = :sale AND booking.key = line.key))
            SELECT (SELECT count(*) FROM line WHERE stop.id IS NULL OR line.id < stop.id), stop.id IS NOT NULL FROM stop
            """, [":sale": .text(sale.text), ":limit": .integer(limit)]
        ) { ($0.int64(0), $0.int64(1) != 0) } ?? (0, false)
    }

    /// True when no queued request of this sale can get an item now, whoever asks: the
    /// sale has ended or closed, or nothing is available, overdue or (waitlist) still held.
    /// Then the rest of a batch is decided by one statement instead of one per request.
    private func nobodyCanHold(_ sale: Sale, at now: Instant, facts: TransactionFacts) throws -> Bool {
        // Block lists and the per-IP limit come before the user limit and sold out in the
        // order of checks: with either in force, every request is decided on its own.
        let blocks = try facts.blocks { try self.blocks(in: sale.id) }
        if sale.perIP != nil || !blocks.isEmpty { return false }
        if sale.state(at: now) != .open { return true }
        if sale.counters.available > 0 || (sale.waitlist && sale.counters.held > 0) { return false }
        return try !facts.hasOverdueHold(at: now) { try nextHoldExpiry(of: sale.id) }
    }

    /// Rejects the first `count` queued requests of a sale where nobody can hold: not_open,
    /// else user_limit for a user at the limit, else sold_out — the reasons one-at-a-time
    /// decisions would give, since no booking changes among them. Set-based: three
    /// statements for the whole run instead of two per request.
    private func rejectAtOnce(_ sale: Sale, count: Int64, at now: Instant, into report: inout ProcessReport) throws {
        // Decisions are taken strictly in FIFO order, so the sale's requests between the
        // first and last of these ids are exactly these: still queued, all of them.
        guard let (first, last) = try db.firstRow(
            """
            SELECT min(id), max(id) FROM
                (SELECT id FROM request WHERE sale = :sale AND status = 'queued' ORDER BY id LIMIT :count)
            """, [":sale": .text(sale.id.text), ":count": .integer(count)],
            { row in row.optionalInt64(0).map { ($0, row.int64(1)) } }) ?? nil
        else { return }
        let range: KeyValuePairs<String, SQLValue> = [":sale": .text(sale.id.text), ":first": .integer(first), ":last": .integer(last),
                                                      ":now": .integer(now.milliseconds)]
        try db.execute(
            """
            UPDATE request SET status = 'rejected', decided_at = :now,
                reason = CASE
                    WHEN :open = 0 THEN 'not_open'
                    WHEN (SELECT count(*) FROM booking
                          WHERE booking.sale = request.sale AND booking.user = request.user AND \(activeBooking)) >= :per_user
                        THEN 'user_limit'
                    ELSE 'sold_out' END
            WHERE sale = :sale AND status = 'queued' AND id BETWEEN :first AND :last
            """,
            [":sale": .text(sale.id.text), ":first": .integer(first), ":last": .integer(last), ":now": .integer(now.milliseconds),
             ":open": .integer(sale.state(at: now) == .open ? 1 : 0), ":per_user": .integer(sale.perUser)])
        let rejected = db.changes
        try db.execute(
            """
            INSERT INTO event (at, sale, kind, user, request, detail)
            SELECT :now, sale, 'rejected', user, id, reason FROM request
            WHERE sale = :sale AND id BETWEEN :first AND :last AND status = 'rejected' AND decided_at = :now
            """, range)
        guard db.changes == rejected else {
            throw FlashSaleError.internalFailure("rejected \(rejected) requests but logged \(db.changes)")
        }
        report.rejected += rejected
    }

    private func reject(_ id: Int64, user: String, sale: SaleID, reason: String, at now: Instant) throws {
        try decide(id, status: .rejected, reason: reason, booking: nil, at: now)
        try appendEvent(at: now, sale: sale, kind: "rejected", user: user, request: id, detail: reason)
    }

    private func decide(_ id: Int64, status: RequestStatus, reason: String?, booking: BookingID?, at now: Instant) throws {
        try rowStatements.decideRequest.run(.text(status.rawValue), .text(reason), .text(booking?.text),
                                            .integer(now.milliseconds), .integer(id))
        // Read in this same write transaction: a request decided twice would be a bug.
        guard db.changes == 1 else {
            throw FlashSaleError.internalFailure("request \(id) was already decided")
        }
    }

    /// Changes whenever another process commits: `process --follow` waits on it.
    public func dataVersion() throws -> Int64 {
        try db.dataVersion()
    }


    // MARK: - Request

    public func request(_ id: Int64) throws -> QueuedRequest {
        try db.readTransaction {
            guard let request = try db.firstRow(
                """
                SELECT id, sale, user, ip, user_agent, key, status, reason, booking, submitted_at, decided_at,
                    CASE status WHEN 'queued' THEN
                        (SELECT count(*) FROM request AS ahead
                         WHERE ahead.sale = request.sale AND ahead.status = 'queued' AND ahead.id <= request.id)
                    END
                FROM request WHERE id = :id
                """, [":id": .integer(id)], decodeRequest)
            else {
                throw FlashSaleError.notFound("no request \(id)")
            }
            return request
        }
    }
}

private func decodeRequest(_ row: Row) throws -> QueuedRequest {
    guard let status = RequestStatus(rawValue: row.text(6)) else {
        throw FlashSaleError.cantOpen("request \(row.int64(0)) has the unknown status '\(Quoted(row.text(6)))'")
    }
    return QueuedRequest(
        id: row.int64(0), sale: SaleID(trusted: row.text(1)), user: row.text(2), ip: row.optionalText(3),
        userAgent: row.optionalText(4), key: row.optionalText(5), status: status, reason: row.optionalText(7),
        booking: row.optionalText(8).map(BookingID.init(trusted:)), submittedAt: Instant(milliseconds: row.int64(9)),
        decidedAt: row.optionalInt64(10).map(Instant.init), position: row.optionalInt64(11))
}
