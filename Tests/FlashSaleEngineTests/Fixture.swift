import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport

/// A new database of one kind, a connection to it and the engine on that connection.
/// Everything a test checks, it reads through the engine: counters, bookings, requests,
/// events and metrics, never the store's own tables.
final class Fixture {
    let database: any TestDatabase
    let store: any Store
    let engine: Engine

    init(_ kind: StoreKind, bulkPaths: Bool = true, bookingIDs: ((Instant) -> BookingID)? = nil) throws {
        database = try kind.makeDatabase()
        store = try database.connect()
        engine = Engine(store: store, bulkPaths: bulkPaths, bookingIDs: bookingIDs)
    }

    /// A sale created at T, by default open from then: `inventory` items, 5 minute holds,
    /// `perUser` each.
    @discardableResult
    func sale(_ id: String = "s1", inventory: Int64 = 10, hold: Span = .seconds(300), perUser: Int64 = 1,
              waitlist: Bool = false, startsAt: Instant = T, endsAt: Instant? = nil) throws -> SaleStatus {
        try engine.createSale(SaleDefinition(id: SaleID(id), name: nil, inventory: inventory, hold: hold, perUser: perUser,
                                            waitlist: waitlist, startsAt: startsAt, endsAt: endsAt), clock: T)
    }

    func waitlistSale(inventory: Int64) throws {
        try sale(inventory: inventory, waitlist: true)
    }

    func book(_ user: String, sale: String = "s1", key: String? = nil, at clock: Instant = T) throws -> Booking {
        try engine.book(BookingRequest(sale: SaleID(sale), user: UserID(trusted: user), ip: nil, userAgent: nil, key: key), clock: clock)
    }

    func counters(_ sale: String = "s1", at clock: Instant = T) throws -> Counters {
        try engine.status(SaleID(sale), clock: clock).sale.counters
    }

    func status(_ sale: String = "s1", at clock: Instant = T) throws -> SaleStatus {
        try engine.status(SaleID(sale), clock: clock)
    }

    @discardableResult
    func submit(_ user: String, sale: String = "s1", key: String? = nil, at clock: Instant = T) throws -> RequestID {
        try engine.submit(BookingRequest(sale: SaleID(sale), user: UserID(trusted: user), ip: nil, userAgent: nil, key: key), clock: clock).id
    }

    /// `submit --file`: `outcomes` as a reader would hand them over.
    @discardableResult
    func submit(_ outcomes: [ReadOutcome], sale: String = "s1", skipInvalid: Bool = false,
                at clock: Instant = T) throws -> (report: Engine.SubmitReport, skipped: [Int]) {
        var next = outcomes[...]
        var skipped: [Int] = []
        let report = try engine.submit(to: SaleID(sale), clock: clock, skipping: skipInvalid ? { line, _ in skipped.append(line) } : nil) {
            next.popFirst()
        }
        return (report, skipped)
    }

    /// Processes until nothing more can be decided now.
    @discardableResult
    func process(_ sale: String = "s1", batch: Int64 = 10_000, at clock: Instant = T) throws -> Engine.ProcessReport {
        var total = Engine.ProcessReport()
        while true {
            let report = try engine.processBatch(of: SaleID(sale), batch: batch, clock: clock)
            total.accepted += report.accepted
            total.rejected += report.rejected
            total.waiting = report.waiting
            if report.decided == 0 { return total }
        }
    }

    func request(_ id: RequestID) throws -> QueuedRequest {
        try engine.request(id)
    }

    /// The whole event log (of one sale, or of all), oldest first.
    func events(_ sale: String? = nil) throws -> [Event] {
        try engine.events(after: 0, sale: sale.map { try SaleID($0) }, limit: .max)
    }

    /// The events of one kind, of every sale.
    func events(_ kind: EventKind) throws -> [Event] {
        try events().filter { $0.kind == kind }
    }

    /// What the store's own `verify` finds wrong.
    func violations(at clock: Instant = T) throws -> [String] {
        try database.violations(clock: clock)
    }
}
