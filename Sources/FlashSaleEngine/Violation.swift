import FlashSaleCore

/// What `verify` finds, in the words every store says it: one line each, its counts with
/// their nouns, singular for one.
public enum Violation {
    case unbalanced(SaleID, Counters)
    case negative(SaleID, counter: String, value: Int64)
    /// A time of the sale's own row no flashsale writes (set by hand).
    case outOfTime(SaleID, column: String, Instant)
    /// A setting or the stock of the sale's own row outside what flashsale writes (set by hand).
    case outOfRange(SaleID, column: String, value: Int64, range: ClosedRange<Int64>)
    case unknownStatus(SaleID, status: String, bookings: Int64)
    case counterDiffers(SaleID, BookingStatus, counter: Int64, bookings: Int64)
    case overTheLimit(SaleID, user: String, bookings: Int64, limit: Int64)
    case malformedBookings(SaleID, Int64)
    /// Events of the sale's bookings dated after its time (`Sale.highWater`), which a
    /// decision made now would be dated before.
    case eventsAfterTheSalesTime(SaleID, Int64)
    case misfitRequests(SaleID, Int64)
    case bookingsWithoutHeldEvents(SaleID, bookings: Int64, events: Int64)
    case bookingsOfNoSale(Int64)
    /// SQLite's line of requests, in runs.
    case lineDiffers(SaleID, inRuns: Int64, requests: Int64, outside: Int64)
    /// SQLite's count of held holds by the second they expire in (hold_second).
    case secondsMiscounted(SaleID, Int64)
    case secondsOfNoSale(Int64)
    /// PostgreSQL's rejected runs and event counter.
    case malformedRuns(SaleID, Int64)
    case runsOverlap(Int64)
    case eventCounterMisplaced
    /// PostgreSQL's request counter, from which `submit` numbers the next request.
    case requestCounterMisplaced
    case requestsOfNoSale(Int64)
    /// The queue's cursor, the last request decided, naming none of the sale's requests:
    /// set by hand, it skips the requests submitted up to it, never decided.
    case cursorNamesNoRequest(SaleID, cursor: Int64)

    /// The sale's counters against each other, its times and its settings: what needs no
    /// row but the sale's.
    public static func ofSale(_ sale: Sale) -> [Violation] {
        let c = sale.counters
        var found = c.balances ? [] : [Violation.unbalanced(sale.id, c)]
        for (counter, value) in [("available", c.available), ("held", c.held), ("booked", c.booked)] where value < 0 {
            found.append(.negative(sale.id, counter: counter, value: value))
        }
        let times = [("starts_at", sale.startsAt), ("ends_at", sale.endsAt), ("created_at", sale.createdAt), ("high_water", sale.highWater)]
        for case let (column, time?) in times where !(Instant.earliest...Instant.latest).contains(time) {
            found.append(.outOfTime(sale.id, column: column, time))
        }
        let settings: [(String, Int64?, ClosedRange<Int64>)] = [
            ("total", c.total, 0...maximumInventory), ("hold_ms", sale.hold.milliseconds, 1...SaleDefinition.maximumHold.milliseconds),
            ("per_user", sale.perUser, 1...maximumInventory), ("per_ip", sale.perIP, 1...maximumInventory),
        ]
        for case let (column, value?, range) in settings where !range.contains(value) {
            found.append(.outOfRange(sale.id, column: column, value: value, range: range))
        }
        return found
    }

    public var text: String {
        switch self {
        case .unbalanced(let sale, let c):
            "sale \(sale): total \(c.total) != available \(c.available) + held \(c.held) + booked \(c.booked)"
        case .negative(let sale, let counter, let value):
            "sale \(sale): \(counter) is negative (\(value))"
        case .outOfRange(let sale, let column, let value, let range):
            "sale \(sale): \(column) is \(value), outside what flashsale writes (\(range.lowerBound) to \(range.upperBound))"
        case .outOfTime(let sale, let column, let time):
            "sale \(sale): \(column) is \(time), outside the times flashsale writes (\(Instant.earliest) to \(Instant.latest))"
        case .unknownStatus(let sale, let status, let bookings):
            "sale \(sale): \(String.counted(bookings, "booking")) \(agreeing(bookings, "has", "have")) the unknown status '\(Quoted(status))'"
        case .counterDiffers(let sale, let status, let counter, let bookings):
            "sale \(sale): counter \(status.rawValue) is \(counter) but \(String.counted(bookings, "booking")) "
                + "\(agreeing(bookings, "is", "are")) \(status.rawValue)"
        case .overTheLimit(let sale, let user, let bookings, let limit):
            "sale \(sale): user '\(Quoted(user))' has \(String.counted(bookings, "active booking")), over the limit of \(limit)"
        case .malformedBookings(let sale, let bookings):
            bookings == 1
                ? "sale \(sale): 1 booking lacks the time of its status, has a time of a later one, or expires before it was made"
                : "sale \(sale): \(bookings) bookings lack the time of their status, have a time of a later one, "
                    + "or expire before they were made"
        case .eventsAfterTheSalesTime(let sale, let events):
            "sale \(sale): \(String.counted(events, "event")) of its bookings \(agreeing(events, "is", "are")) dated after "
                + "its time (high_water), which the next decision would be dated before"
        case .misfitRequests(let sale, let requests):
            "sale \(sale): \(String.counted(requests, "request")) whose decision does not fit the line, or names no booking or reason"
        case .bookingsWithoutHeldEvents(let sale, let bookings, let events):
            "sale \(sale): \(String.counted(bookings, "booking")) but \(String.counted(events, "'held' event"))"
        case .bookingsOfNoSale(let bookings):
            "\(String.counted(bookings, "booking")) \(agreeing(bookings, "belongs", "belong")) to no sale"
        case .lineDiffers(let sale, let inRuns, let requests, let outside):
            "sale \(sale): its line holds \(String.counted(inRuns, "request")), but it has \(requests), \(outside) of them outside the line"
        case .secondsMiscounted(let sale, let seconds):
            seconds == 1
                ? "sale \(sale): 1 second whose count of expiring holds (hold_second) is not its held bookings'"
                : "sale \(sale): \(seconds) seconds whose count of expiring holds (hold_second) is not their held bookings'"
        case .secondsOfNoSale(let seconds):
            "\(String.counted(seconds, "second")) of expiring holds (hold_second) \(agreeing(seconds, "belongs", "belong")) to no sale"
        case .malformedRuns(let sale, let runs):
            "sale \(sale): \(String.counted(runs, "rejected run")) \(agreeing(runs, "does", "do")) not hold the line from "
                + "\(agreeing(runs, "its", "their")) first request to \(agreeing(runs, "its", "their")) last"
        case .runsOverlap(let runs):
            "\(String.counted(runs, "rejected run")) \(agreeing(runs, "shares", "share")) seqs with other events"
        case .eventCounterMisplaced:
            "the event counter (event_counter) is not one row at or past the last event"
        case .requestCounterMisplaced:
            "the request counter (request_counter) is not one row at or past the last request"
        case .cursorNamesNoRequest(let sale, let cursor):
            "sale \(sale): its queue's cursor (decided_through \(cursor)) names none of its requests, so those submitted up to it "
                + "would never be decided"
        case .requestsOfNoSale(let requests):
            "\(String.counted(requests, "request")) \(agreeing(requests, "belongs", "belong")) to no sale"
        }
    }
}

/// `singular` for a count of one, `plural` for any other: the word that agrees with it.
private func agreeing(_ count: Int64, _ singular: String, _ plural: String) -> String {
    count == 1 ? singular : plural
}
