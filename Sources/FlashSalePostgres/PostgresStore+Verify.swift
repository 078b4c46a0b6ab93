import FlashSaleCore
import FlashSaleEngine

/// `verify`: the rows checked against each other and against every invariant, in SQL,
/// independently of the code that wrote them (SQLiteStore+Verify's checks, less those of
/// SQLite's own tables).
extension PostgresStore {
    public func verify(_ saleID: SaleID?, clock: Instant) throws -> [String] {
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
                if orphans > 0 { violations.append("\(orphans) bookings belong to no sale") }
                let orphanRequests = try session.count("SELECT count(*) FROM request WHERE sale NOT IN (SELECT id FROM sale)")
                if orphanRequests > 0 { violations.append("\(orphanRequests) requests belong to no sale") }
                let counter = try session.count("SELECT count(*) FROM event_counter WHERE last >= \(RejectedRuns.lastSeq)")
                let counters = try session.count("SELECT count(*) FROM event_counter")
                if counter != 1 || counters != 1 {
                    violations.append("the event counter (event_counter) is not one row at or past the last event")
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
                if overlaps > 0 { violations.append("\(overlaps) rejected runs share seqs with other events") }
            }
            return violations
        }
    }

    private func violationsOf(_ sale: Sale, at now: Instant) throws -> [String] {
        var violations: [String] = []
        let c = sale.counters
        let name = "sale \(sale.id)"
        let id = SQLValue.text(sale.id.text)
        if !c.balances {
            violations.append("\(name): total \(c.total) != available \(c.available) + held \(c.held) + booked \(c.booked)")
        }
        for (counter, value) in [("available", c.available), ("held", c.held), ("booked", c.booked)] where value < 0 {
            violations.append("\(name): \(counter) is negative (\(value))")
        }
        var counted: [BookingStatus: Int64] = [:]
        for (status, bookings) in try session.rows("SELECT status, count(*) AS bookings FROM booking WHERE sale = $1 GROUP BY status",
                                                   [id], { (try $0.text("status"), try $0.int64("bookings")) }) {
            if let known = BookingStatus(rawValue: status) {
                counted[known] = bookings
            } else {
                violations.append("\(name): \(bookings) bookings have the unknown status '\(Quoted(status))'")
            }
        }
        for (status, counter) in [(BookingStatus.held, c.held), (.booked, c.booked), (.cancelled, c.cancelled), (.expired, c.expired)] {
            let found = counted[status] ?? 0
            if found != counter {
                violations.append("\(name): counter \(status.rawValue) is \(counter) but \(found) bookings are \(status.rawValue)")
            }
        }
        for (user, bookings) in try session.rows(
            """
            SELECT user_id, count(*) AS bookings FROM booking WHERE sale = $1 AND \(activeBooking(now: "$2"))
            GROUP BY user_id HAVING count(*) > $3 ORDER BY user_id LIMIT 5
            """, [id, .int(now.milliseconds), .int(sale.perUser)], { (try $0.text("user_id"), try $0.int64("bookings")) }) {
            violations.append("\(name): user '\(Quoted(user))' has \(bookings) active bookings, over the limit of \(sale.perUser)")
        }
        let malformed = try session.count(
            """
            SELECT count(*) FROM booking WHERE sale = $1 AND (expires_at <= created_at
                OR (status = 'booked' AND confirmed_at IS NULL)
                OR (status = 'cancelled' AND cancelled_at IS NULL)
                OR (status = 'expired' AND expired_at IS NULL))
            """, [id])
        if malformed > 0 {
            violations.append("\(name): \(malformed) bookings lack the time of their status, or expire before they were made")
        }
        // Every request up to the sale's cursor has exactly one decision (an event that
        // names it, or a rejected run that holds it), none after it; an acceptance names a
        // booking of the same user, a rejection a reason.
        let inconsistentRequests = try session.count(
            """
            WITH ran AS (SELECT request, count(*) AS runs FROM (\(RejectedRuns.ofSale)) AS rejected GROUP BY request)
            SELECT count(*) FROM request JOIN sale ON sale.id = request.sale
            LEFT JOIN event AS decision ON decision.request = request.id
            LEFT JOIN ran ON ran.request = request.id
            WHERE request.sale = $1 AND (
                (decision.seq IS NULL AND ran.request IS NULL) != (request.id > sale.decided_through)
                OR (decision.seq IS NOT NULL AND ran.request IS NOT NULL) OR ran.runs > 1
                OR decision.sale != request.sale
                OR decision.kind NOT IN ('held', 'accepted', 'rejected')
                OR (decision.kind = 'rejected') != (decision.detail IS NOT NULL)
                OR (decision.kind != 'rejected' AND NOT EXISTS (SELECT 1 FROM booking
                    WHERE booking.id = decision.booking AND booking.sale = request.sale AND booking.user_id = request.user_id)))
            """, [id])
        if inconsistentRequests > 0 {
            violations.append("\(name): \(inconsistentRequests) requests whose decision does not fit the line, or names no booking or reason")
        }
        // A run holds its sale's requests from its first to its last, in line order, each
        // with its user, and one seq for each. Its requests are compared as rows (`lag`), not
        // by subscript: each subscript of a stored array reads the whole array again (W1's
        // verify took 1.3 s in that check alone, 0.5 s now).
        let malformedRuns = try session.count(
            """
            SELECT count(*) FROM (
                SELECT last_seq FROM rejected_run AS run WHERE run.sale = $1 AND (
                    cardinality(run.requests) != run.last_seq - run.first_seq + 1
                    OR cardinality(run.users) != cardinality(run.requests)
                    OR run.requests[1] != run.first_request OR run.requests[cardinality(run.requests)] != run.last_request
                    OR cardinality(run.requests) != (SELECT count(*) FROM request
                        WHERE request.sale = run.sale AND request.id BETWEEN run.first_request AND run.last_request))
                UNION
                SELECT item.last_seq FROM (
                    SELECT run.last_seq, item.request, item.user_id,
                        lag(item.request) OVER (PARTITION BY run.last_seq ORDER BY item.position) AS before
                    FROM rejected_run AS run
                    CROSS JOIN LATERAL unnest(run.requests, run.users) WITH ORDINALITY AS item(request, user_id, position)
                    WHERE run.sale = $1) AS item
                LEFT JOIN request ON request.sale = $1 AND request.id = item.request
                WHERE request.id IS NULL OR request.user_id IS DISTINCT FROM item.user_id OR item.request <= item.before
            ) AS malformed
            """, [id])
        if malformedRuns > 0 {
            violations.append("\(name): \(malformedRuns) rejected runs do not hold the line from their first request to their last")
        }
        let bookings = counted.values.reduce(0, +)
        let holdEvents = try session.count("SELECT count(*) FROM event WHERE sale = $1 AND kind = 'held'", [id])
        if holdEvents != bookings {
            violations.append("\(name): \(bookings) bookings but \(holdEvents) 'held' events")
        }
        return violations
    }
}
