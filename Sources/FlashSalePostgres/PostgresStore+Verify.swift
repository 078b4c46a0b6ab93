import FlashSaleCore
import FlashSaleEngine

/// `verify`: the rows checked against each other and against every invariant, in SQL,
/// independently of the code that wrote them (SQLiteStore+Verify's checks, less those of
/// SQLite's own tables).
extension PostgresStore {
    public func recount(_ saleID: SaleID?, clock: Instant) throws -> [String] {
        try report { transaction in
            var violations: [String] = []
            let sales = try saleID.map { id in
                guard let sale = try transaction.sale(id) else { throw SaleError.saleNotFound(id) }
                return [sale]
            } ?? transaction.allSales()
            for sale in sales {
                violations += try violationsOf(sale, at: sale.decisionTime(clock: clock))
            }
            if saleID == nil {
                let orphans = try session.count("SELECT count(*) FROM booking WHERE sale NOT IN (SELECT id FROM sale)")
                if orphans > 0 { violations.append(Violation.bookingsOfNoSale(orphans).text) }
                let orphanRequests = try session.count("SELECT count(*) FROM request WHERE sale NOT IN (SELECT id FROM sale)")
                if orphanRequests > 0 { violations.append(Violation.requestsOfNoSale(orphanRequests).text) }
                if try !isOneRow("SELECT count(*) FROM event_counter",
                                 atOrPast: "SELECT count(*) FROM event_counter WHERE last >= \(RejectedRuns.lastSeq)") {
                    violations.append(Violation.eventCounterMisplaced.text)
                }
                // Found by probing: set back by hand, `submit` numbered a request as one of
                // another sale's, and verify named only the event counter.
                if try !isOneRow("SELECT count(*) FROM request_counter",
                                 atOrPast: "SELECT count(*) FROM request_counter WHERE last >= (SELECT coalesce(max(id), 0) FROM request)") {
                    violations.append(Violation.requestCounterMisplaced.text)
                }
                // Each seq is one event's: runs overlap neither each other nor other events.
                let overlaps = try session.count(
                    """
                    SELECT count(*) FROM (SELECT first_seq, lag(last_seq) OVER (ORDER BY last_seq) AS before
                                          FROM rejected_run) AS run
                    WHERE run.first_seq <= run.before
                    """)
                    + session.count(
                        "SELECT count(*) FROM rejected_run AS run JOIN event ON event.seq BETWEEN run.first_seq AND run.last_seq")
                if overlaps > 0 { violations.append(Violation.runsOverlap(overlaps).text) }
            }
            return violations
        }
    }

    /// In a read of its own, which checks the schema first (its version, that it exists).
    public func missingSchemaObjects() throws -> [String] {
        let found = try read { _ in try session.rows(PostgresSchema.objectsQuery) { try $0.text("object") } }
        return SchemaObjects.missing(PostgresSchema.objects, from: Set(found))
    }

    /// Whether a counter new rows are numbered from is one row (`rows` counts them) whose
    /// `last` is at or past the last number taken (`atOrPast` counts those). Whole queries,
    /// so that no SQL is built here (SQLSourceTests).
    private func isOneRow(_ rows: String, atOrPast: String) throws -> Bool {
        try session.count(rows) == 1 && session.count(atOrPast) == 1
    }

    /// The sale's cursor, when it names none of its requests: it is the last one decided,
    /// or 0 before the first.
    private static let cursorNamingNoRequest = """
        SELECT decided_through FROM sale WHERE id = $1 AND decided_through != 0
            AND NOT EXISTS (SELECT 1 FROM request WHERE request.sale = sale.id AND request.id = sale.decided_through)
        """

    private func violationsOf(_ sale: Sale, at now: Instant) throws -> [String] {
        var violations = Violation.ofSale(sale)
        let id = SQLValue.text(sale.id.text)
        var counted: [BookingStatus: Int64] = [:]
        for (status, bookings) in try session.rows("SELECT status, count(*) AS bookings FROM booking WHERE sale = $1 GROUP BY status",
                                                   [id], { (try $0.text("status"), try $0.int64("bookings")) }) {
            if let known = BookingStatus(rawValue: status) {
                counted[known] = bookings
            } else {
                violations.append(.unknownStatus(sale.id, status: status, bookings: bookings))
            }
        }
        let c = sale.counters
        for (status, counter) in [(BookingStatus.held, c.held), (.booked, c.booked), (.cancelled, c.cancelled), (.expired, c.expired)] {
            let found = counted[status] ?? 0
            if found != counter {
                violations.append(.counterDiffers(sale.id, status, counter: counter, bookings: found))
            }
        }
        for (user, bookings) in try session.rows(
            """
            SELECT user_id, count(*) AS bookings FROM booking WHERE sale = $1 AND \(activeBooking(now: "$2"))
            GROUP BY user_id HAVING count(*) > $3 ORDER BY user_id LIMIT 5
            """, [id, .int(now.milliseconds), .int(sale.perUser)], { (try $0.text("user_id"), try $0.int64("bookings")) }) {
            violations.append(.overTheLimit(sale.id, user: user, bookings: bookings, limit: sale.perUser))
        }
        let malformed = try session.count(
            """
            SELECT count(*) FROM booking WHERE sale = $1 AND (expires_at <= created_at
                OR (status = 'held' AND coalesce(confirmed_at, cancelled_at, expired_at) IS NOT NULL)
                OR (status = 'booked' AND confirmed_at IS NULL)
                OR (status = 'cancelled' AND cancelled_at IS NULL)
                OR (status = 'expired' AND expired_at IS NULL))
            """, [id])
        if malformed > 0 {
            violations.append(.malformedBookings(sale.id, malformed))
        }
        // Every change to a booking moves the sale's time to its own.
        let eventsAfter = try session.count(
            "SELECT count(*) FROM event WHERE sale = $1 AND kind IN ('held', 'booked', 'cancelled', 'expired') AND at > $2",
            [id, .int(sale.highWater.milliseconds)])
        if eventsAfter > 0 {
            violations.append(.eventsAfterTheSalesTime(sale.id, eventsAfter))
        }
        // Every request up to the sale's cursor has exactly one decision (an event that
        // names it, or a rejected run that holds it), none after it; an acceptance names a
        // booking of the same user, a rejection a reason. Counted rather than joined
        // request by request (W1's 220,000 against their runs' unnested arrays took 0.4 s):
        // the events name distinct requests (a unique index), the runs hold their stretch
        // of the line (checked below) and do not overlap, and no request has both; so when
        // all of them are at or before the cursor, the requests there are each decided
        // once exactly when their number is the events' plus the runs' lengths. One
        // misfit request fails both the rule it breaks and the count: the greater of the
        // two is the number said, exact for one fault and at least 1 for any; faults that
        // cancel in the count (a request undecided, another decided twice) say fewer.
        let inconsistentRequests = try session.count(
            """
            WITH line AS (SELECT decided_through AS cursor FROM sale WHERE id = $1),
            decision AS (SELECT request.id AS request, request.user_id, event.sale, event.kind, event.detail, event.booking
                         FROM request JOIN event ON event.request = request.id WHERE request.sale = $1),
            run AS (SELECT first_request, last_request, last_seq - first_seq + 1 AS requests,
                        lag(last_request) OVER (ORDER BY first_request) AS before
                    FROM rejected_run WHERE sale = $1)
            SELECT greatest(
                (SELECT count(*) FROM decision, line WHERE decision.request > line.cursor OR decision.sale != $1
                    OR decision.kind NOT IN ('held', 'accepted', 'rejected')
                    OR (decision.kind = 'rejected') != (decision.detail IS NOT NULL)
                    OR (decision.kind != 'rejected' AND NOT EXISTS (SELECT 1 FROM booking
                        WHERE booking.id = decision.booking AND booking.sale = $1 AND booking.user_id = decision.user_id))
                    OR (SELECT first_request FROM rejected_run WHERE sale = $1 AND last_request >= decision.request
                        ORDER BY last_request LIMIT 1) <= decision.request)
                + (SELECT count(*) FROM run, line WHERE run.last_request > line.cursor OR run.first_request <= run.before),
                abs((SELECT count(*) FROM request, line WHERE request.sale = $1 AND request.id <= line.cursor)
                    - (SELECT count(*) FROM decision, line WHERE decision.request <= line.cursor)
                    - (SELECT coalesce(sum(requests), 0)::bigint FROM run)))
            """, [id])
        if inconsistentRequests > 0 {
            violations.append(.misfitRequests(sale.id, inconsistentRequests))
        }
        if let cursor = try session.firstRow(Self.cursorNamingNoRequest, [id], { try $0.int64("decided_through") }) {
            violations.append(.cursorNamesNoRequest(sale.id, cursor: cursor))
        }
        // A run holds its sale's requests from its first to its last, in line order, each
        // with its user, and one seq for each: its arrays are compared whole with the
        // line's (an index range scan a run), where unnesting them to compare request by
        // request took W1's verify 0.5 s. `OFFSET 0` keeps the line's arrays made once a
        // run: pulled up into the outer query, each mention of them was a scan of its own.
        let malformedRuns = try session.count(
            """
            SELECT count(*) FROM rejected_run AS run
            CROSS JOIN LATERAL (SELECT ARRAY(SELECT id FROM request WHERE request.sale = run.sale
                                                 AND request.id BETWEEN run.first_request AND run.last_request ORDER BY id) AS requests,
                                       ARRAY(SELECT user_id FROM request WHERE request.sale = run.sale
                                                 AND request.id BETWEEN run.first_request AND run.last_request ORDER BY id) AS users
                                OFFSET 0) AS line
            WHERE run.sale = $1 AND (run.requests IS DISTINCT FROM line.requests OR run.users IS DISTINCT FROM line.users
                OR cardinality(line.requests) != run.last_seq - run.first_seq + 1
                OR line.requests[1] IS DISTINCT FROM run.first_request
                OR line.requests[cardinality(line.requests)] IS DISTINCT FROM run.last_request)
            """, [id])
        if malformedRuns > 0 {
            violations.append(.malformedRuns(sale.id, malformedRuns))
        }
        let bookings = counted.values.reduce(0, +)
        let holdEvents = try session.count("SELECT count(*) FROM event WHERE sale = $1 AND kind = 'held'", [id])
        if holdEvents != bookings {
            violations.append(.bookingsWithoutHeldEvents(sale.id, bookings: bookings, events: holdEvents))
        }
        return violations.map(\.text)
    }
}
