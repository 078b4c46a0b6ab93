import CSQLite
import FlashSaleCore
import FlashSaleEngine

/// `verify`: the store's rows checked against each other and against every invariant,
/// independently of the code that wrote them.
extension SQLiteStore {
    /// Recounts every sale's bookings against its counters and checks every invariant.
    /// Returns the violations found, each naming what is wrong; empty means all is well.
    /// A file too damaged for the recount to read is a violation too, in `quick_check`'s
    /// words: what verify is run to find, not a database to refuse.
    public func recount(_ saleID: SaleID?, clock: Instant) throws -> [String] {
        do {
            return try recountSales(saleID, clock: clock)
        } catch let error as SQLiteError where error.primaryCode == SQLITE_CORRUPT {
            // In a statement's own snapshot: a transaction that met the damage fails its
            // COMMIT with it too.
            guard let violation = try structureViolation() else { throw error }
            return [violation]
        }
    }

    /// None for a file whose schema is too damaged to list: the recount says what
    /// `quick_check` finds of it.
    public func missingSchemaObjects() throws -> [String] {
        do {
            return SchemaObjects.missing(try Schema.objects(), from: try Schema.objects(in: db))
        } catch let error as SQLiteError where error.primaryCode == SQLITE_CORRUPT {
            return []
        }
    }

    /// `quick_check`'s findings, nil when it finds none. They may come as one row of many
    /// lines (up to 100), and are said as the first three and a count of the rest: a
    /// violation is one line.
    private func structureViolation() throws -> String? {
        let check: [String]
        do {
            check = try db.rows("PRAGMA quick_check") { $0.text(0) }
        } catch let error as SQLiteError where error.primaryCode == SQLITE_CORRUPT {
            // A root page damaged past what quick_check can walk (a table's, or the one of
            // `sqlite_sequence`) fails the check itself: that failure is the finding (found
            // by probing: it was refused as an unusable file, 73).
            return "database structure: \(error.message), which SQLite's quick_check cannot read past"
        }
        guard check != ["ok"] else { return nil }
        let problems = check.flatMap { $0.split(separator: "\n") }.filter { !$0.hasPrefix("*** in database") }
        let rest = problems.count - 3
        return "database structure: " + problems.prefix(3).joined(separator: "; ")
            + (rest > 0 ? "; and \(rest) more, which SQLite's quick_check lists" : "")
    }

    private func recountSales(_ saleID: SaleID?, clock: Instant) throws -> [String] {
        try db.readTransaction {
            var violations: [String] = []
            for sale in try saleID.map({ [try requireSale($0)] }) ?? allSales() {
                violations += try violationsOf(sale, at: sale.decisionTime(clock: clock))
            }
            if saleID == nil {
                let orphans = try count("SELECT count(*) FROM booking WHERE sale NOT IN (SELECT id FROM sale)", [:])
                if orphans > 0 { violations.append(Violation.bookingsOfNoSale(orphans).text) }
                let orphanSeconds = try count("SELECT count(*) FROM hold_second WHERE sale NOT IN (SELECT id FROM sale)", [:])
                if orphanSeconds > 0 { violations.append(Violation.secondsOfNoSale(orphanSeconds).text) }
                if let violation = try structureViolation() { violations.append(violation) }
            }
            return violations
        }
    }

    /// The sale's cursor, when it names none of its requests: it is the last one decided,
    /// or 0 before the first.
    private static let cursorNamingNoRequest = """
        SELECT decided_through FROM sale WHERE id = :sale AND decided_through != 0
            AND NOT EXISTS (SELECT 1 FROM request WHERE request.sale = sale.id AND request.id = sale.decided_through)
        """

    private func violationsOf(_ sale: Sale, at now: Instant) throws -> [String] {
        var violations = Violation.ofSale(sale)
        var counted: [BookingStatus: Int64] = [:]
        try db.forEachRow("SELECT status, count(*) AS bookings FROM booking WHERE sale = :sale GROUP BY status",
                          [":sale": .text(sale.id.text)]) { row in
            if let status = BookingStatus(rawValue: try row.text("status")) {
                counted[status] = try row.int64("bookings")
            } else {
                violations.append(.unknownStatus(sale.id, status: try row.text("status"), bookings: try row.int64("bookings")))
            }
        }
        let c = sale.counters
        for (status, counter) in [(BookingStatus.held, c.held), (.booked, c.booked), (.cancelled, c.cancelled), (.expired, c.expired)] {
            let found = counted[status] ?? 0
            if found != counter {
                violations.append(.counterDiffers(sale.id, status, counter: counter, bookings: found))
            }
        }
        try db.forEachRow(
            """
            SELECT user, count(*) AS bookings FROM booking WHERE sale = :sale AND \(activeBooking)
            GROUP BY user HAVING count(*) > :per_user ORDER BY user LIMIT 5
            """,
            [":sale": .text(sale.id.text), ":now": .integer(now.milliseconds), ":per_user": .integer(sale.perUser)]
        ) { row in
            violations.append(.overTheLimit(sale.id, user: try row.text("user"), bookings: try row.int64("bookings"), limit: sale.perUser))
        }
        let malformed = try count(
            """
            SELECT count(*) FROM booking WHERE sale = :sale AND (expires_at <= created_at
                OR (status = 'held' AND coalesce(confirmed_at, cancelled_at, expired_at) IS NOT NULL)
                OR (status = 'booked' AND confirmed_at IS NULL)
                OR (status = 'cancelled' AND cancelled_at IS NULL)
                OR (status = 'expired' AND expired_at IS NULL))
            """, [":sale": .text(sale.id.text)])
        if malformed > 0 {
            violations.append(.malformedBookings(sale.id, malformed))
        }
        // Every change to a booking moves the sale's time to its own (found by probing: a
        // high_water set back by hand let the log run backwards, and verify said ok).
        let eventsAfter = try count(
            "SELECT count(*) FROM event WHERE sale = :sale AND kind IN ('held', 'booked', 'cancelled', 'expired') AND at > :high_water",
            [":sale": .text(sale.id.text), ":high_water": .integer(sale.highWater.milliseconds)])
        if eventsAfter > 0 {
            violations.append(.eventsAfterTheSalesTime(sale.id, eventsAfter))
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
            violations.append(.lineDiffers(sale.id, inRuns: inRuns, requests: requests, outside: outsideTheLine))
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
            violations.append(.misfitRequests(sale.id, inconsistentRequests))
        }
        if let cursor = try db.firstRow(Self.cursorNamingNoRequest, [":sale": .text(sale.id.text)], { try $0.int64("decided_through") }) {
            violations.append(.cursorNamesNoRequest(sale.id, cursor: cursor))
        }
        // hold_second holds, for each second, how many held holds expire within it, and
        // no row for a second with none.
        let wrongSeconds = try count(
            """
            SELECT count(*) FROM (
                SELECT sum(counted) AS counted, sum(recorded) AS recorded, sum(rows) AS rows FROM (
                    SELECT expires_at / 1000 AS second, 1 AS counted, 0 AS recorded, 0 AS rows
                    FROM booking WHERE sale = :sale AND status = 'held'
                    UNION ALL
                    SELECT second, 0, held, 1 FROM hold_second WHERE sale = :sale)
                GROUP BY second)
            WHERE counted != recorded OR (rows > 0 AND recorded <= 0)
            """, [":sale": .text(sale.id.text)])
        if wrongSeconds > 0 {
            violations.append(.secondsMiscounted(sale.id, wrongSeconds))
        }
        let bookings = counted.values.reduce(0, +)
        let holdEvents = try count("SELECT count(*) FROM event WHERE sale = :sale AND kind = 'held'", [":sale": .text(sale.id.text)])
        if holdEvents != bookings {
            violations.append(.bookingsWithoutHeldEvents(sale.id, bookings: bookings, events: holdEvents))
        }
        return violations.map(\.text)
    }
}
