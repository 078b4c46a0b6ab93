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
    /// cost of inserting a row at a time. The sale and the time, the same for every row,
    /// are bound once per statement.
    struct RequestRows {
        static let perStatement = 64
        private static let perRow = 3
        private let store: SaleStore
        private let sale: SaleID
        private let now: Instant
        /// user, ip, user agent of each row so far, then the sale and the time.
        private var values: [SQLValue] = []

        init(store: SaleStore, sale: SaleID, at now: Instant) {
            self.store = store
            self.sale = sale
            self.now = now
            values.reserveCapacity(RequestRows.perStatement * RequestRows.perRow + 2)
        }

        mutating func append(_ record: RequestRecord, into report: inout SubmitReport) throws {
            values.append(.text(record.user))
            values.append(.text(record.ip))
            values.append(.text(record.userAgent))
            if values.count == RequestRows.perStatement * RequestRows.perRow { try flush(into: &report) }
        }

        mutating func flush(into report: inout SubmitReport) throws {
            let rows = values.count / RequestRows.perRow
            guard rows > 0 else { return }
            let statement = rows == RequestRows.perStatement
                ? try store.rowStatements.insertRequests
                : try RowStatement(store.db, RequestRows.insert(rows: rows), parameters: RequestRows.parameters(rows: rows))
            values.append(.text(sale.text))
            values.append(.integer(now.milliseconds))
            try statement.run(values)
            values.removeAll(keepingCapacity: true)
            // Appended in one statement with no explicit ids: consecutive rowids.
            let last = store.db.lastInsertedRowID
            let first = last - Int64(rows) + 1
            try store.extendLine(of: sale, from: first, through: last)
            report.add(first, last)
        }

        /// OR FAIL: a failing row would keep the rows before it instead of undoing the
        /// statement, so SQLite keeps no statement journal (a copy of every page the
        /// statement changes); the whole transaction rolls back on any error anyway.
        static func insert(rows: Int) -> String {
            "INSERT OR FAIL INTO request (user, ip, user_agent, sale, submitted_at) VALUES "
                + (0..<rows).map { "(:u\($0), :i\($0), :a\($0), :sale, :now)" }.joined(separator: ", ")
        }

        static func parameters(rows: Int) -> [String] {
            (0..<rows).flatMap { [":u\($0)", ":i\($0)", ":a\($0)"] } + [":sale", ":now"]
        }
    }

    /// `submit SALE --file`: every record of the input in one transaction, all or nothing.
    /// A malformed record rolls everything back (exit 65 naming its line), unless
    /// `skipInvalid`, which leaves it out and reports it. A key of another user rolls
    /// everything back (exit 4 naming its line) in any case.
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
                        // A key another user holds is no malformed line: --skip-invalid does not
                        // make it one, and the file as a whole is refused.
                        throw FlashSaleError.conflict("line \(record.line): \(conflict.message); nothing was enqueued")
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
        if let key = request.key {
            if let first = try keyedRequest(of: request.sale, key: key) {
                try requireKey(key, ownedBy: first.user, for: request)
                return .repeated(first.id)
            }
            // A direct booking's key is its user's too.
            try requireKey(key, ownedBy: booking(of: request.sale, key: key)?.user, for: request)
        }
        try rowStatements.insertRequest.run(.text(request.sale.text), .text(request.user), .text(request.ip),
                                            .text(request.userAgent), .text(request.key), .integer(now.milliseconds))
        let id = db.lastInsertedRowID
        try extendLine(of: request.sale, from: id, through: id)
        return .queued(id)
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

    /// The sales that have queued requests, in id order: one probe of the line per sale,
    /// where DISTINCT over the queue would read every queued request.
    public func salesWithQueue() throws -> [SaleID] {
        try db.rows(
            """
            SELECT id FROM sale
            WHERE EXISTS (SELECT 1 FROM request_run AS run WHERE run.sale = sale.id AND run.last_id > sale.decided_through)
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
            // A queue in front of a sale that has not opened yet, or is paused, keeps its
            // place: those states pass. Ended and closed sales reject (not_open).
            if [.scheduled, .paused].contains(sale.state(at: now)) {
                report.waiting.append(saleID)
                return report
            }
            var line = try Line(of: saleID, in: self)
            try decide(&line, of: &sale, batch: batch, at: now, facts: TransactionFacts(), into: &report)
            if report.decided > 0 {
                try line.commitCursor(at: now)
            }
            return report
        }
    }

    /// Decides up to `batch` requests from the head of the sale's line: one by one while
    /// someone could get an item, then set-based once nobody can, except a request whose key
    /// already has a booking, which gets that booking.
    private func decide(_ line: inout Line, of sale: inout Sale, batch: Int64, at now: Instant, facts: TransactionFacts,
                        into report: inout ProcessReport) throws {
        while report.decided < batch {
            if try nobodyCanHold(sale, at: now, facts: facts) {
                let run = try line.rejectableRun(limit: batch - report.decided)
                if let last = run.last {
                    report.rejected += try line.rejectAtOnce(through: last, in: sale, at: now)
                }
                if !run.stoppedAtKey { return }
            }
            guard let (id, request) = try line.head() else { return }
            let decision: HoldDecision
            do {
                decision = try decideHold(request, in: sale, at: now, fromQueue: id, facts: facts)
            } catch let conflict as FlashSaleError where conflict.exitCode == 4 {
                // Its key belongs to another user's booking: refused before anything was written.
                try line.reject(id, user: request.user, reason: conflict.code, at: now)
                report.rejected += 1
                continue
            }
            switch decision {
            case .held:
                // The hold's 'held' event names the request: that event is its decision.
                line.passed(id)
                report.accepted += 1
                sale = try requireSale(sale.id)
            case .repeated(let booking):
                try line.accept(id, user: request.user, booking: booking.id, at: now)
                report.accepted += 1
            case .declined(let decline):
                try line.reject(id, user: request.user, reason: decline.reason.rawValue, at: now)
                report.rejected += 1
            case .waiting:
                report.waiting.append(sale.id)
                return
            }
        }
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

    /// Changes whenever another process commits: `process --follow` waits on it.
    public func dataVersion() throws -> Int64 {
        try db.dataVersion()
    }


    // MARK: - Request

    public func request(_ id: Int64) throws -> QueuedRequest {
        try db.readTransaction {
            guard let (request, cursor) = try db.firstRow(
                """
                SELECT request.id, request.sale, request.user, request.ip, request.user_agent, request.key,
                    decision.kind, decision.detail, decision.booking, request.submitted_at, decision.at,
                    sale.decided_through
                FROM request JOIN sale ON sale.id = request.sale
                LEFT JOIN event AS decision ON decision.request = request.id
                WHERE request.id = :id
                """, [":id": .integer(id)], { row in (try decodeRequest(row), row.int64(11)) })
            else {
                throw FlashSaleError.notFound("no request \(id)")
            }
            guard request.status == .queued else { return request }
            return request.placed(at: try queuedRequests(in: request.sale, after: cursor, through: id))
        }
    }
}

/// A request with its decision event, if any: none is queued, 'rejected' is rejected, and
/// 'held' or 'accepted' (its key's booking) is accepted.
private func decodeRequest(_ row: Row) throws -> QueuedRequest {
    let status: RequestStatus
    switch row.optionalText(6) {
    case nil: status = .queued
    case "rejected": status = .rejected
    case "held", "accepted": status = .accepted
    case let kind?:
        throw FlashSaleError.cantOpen("request \(row.int64(0)) was decided by an event of the unknown kind '\(Quoted(kind))'")
    }
    return QueuedRequest(
        id: row.int64(0), sale: SaleID(trusted: row.text(1)), user: row.text(2), ip: row.optionalText(3),
        userAgent: row.optionalText(4), key: row.optionalText(5), status: status,
        reason: status == .rejected ? row.optionalText(7) : nil,
        booking: status == .accepted ? row.optionalText(8).map(BookingID.init(trusted:)) : nil,
        submittedAt: Instant(milliseconds: row.int64(9)),
        decidedAt: row.optionalInt64(10).map(Instant.init), position: nil)
}

private extension QueuedRequest {
    /// The same request, with its place in line.
    func placed(at position: Int64) -> QueuedRequest {
        QueuedRequest(id: id, sale: sale, user: user, ip: ip, userAgent: userAgent, key: key, status: status,
                      reason: reason, booking: booking, submittedAt: submittedAt, decidedAt: decidedAt, position: position)
    }
}
