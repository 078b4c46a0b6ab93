import CSQLite
import FlashSaleCore

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
            return try Schema.objects().subtracting(Schema.objects(in: db)).sorted()
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
                if orphans > 0 { violations.append("\(orphans) bookings belong to no sale") }
                let orphanSeconds = try count("SELECT count(*) FROM hold_second WHERE sale NOT IN (SELECT id FROM sale)", [:])
                if orphanSeconds > 0 { violations.append("\(orphanSeconds) seconds of expiring holds (hold_second) belong to no sale") }
                if let violation = try structureViolation() { violations.append(violation) }
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
        try db.forEachRow("SELECT status, count(*) AS bookings FROM booking WHERE sale = :sale GROUP BY status",
                          [":sale": .text(sale.id.text)]) { row in
            if let status = BookingStatus(rawValue: try row.text("status")) {
                counted[status] = try row.int64("bookings")
            } else {
                violations.append("\(name): \(try row.int64("bookings")) bookings have the unknown status '\(Quoted(try row.text("status")))'")
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
            SELECT user, count(*) AS bookings FROM booking WHERE sale = :sale AND \(activeBooking)
            GROUP BY user HAVING count(*) > :per_user ORDER BY user LIMIT 5
            """,
            [":sale": .text(sale.id.text), ":now": .integer(now.milliseconds), ":per_user": .integer(sale.perUser)]
        ) { row in
            violations.append("\(name): user '\(Quoted(try row.text("user")))' has \(try row.int64("bookings")) active bookings, over the limit of \(sale.perUser)")
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
            violations.append("\(name): \(wrongSeconds) seconds whose count of expiring holds (hold_second) is not their held bookings'")
        }
        let bookings = counted.values.reduce(0, +)
        let holdEvents = try count("SELECT count(*) FROM event WHERE sale = :sale AND kind = 'held'", [":sale": .text(sale.id.text)])
        if holdEvents != bookings {
            violations.append("\(name): \(bookings) bookings but \(holdEvents) 'held' events")
        }
        return violations
    }
}
