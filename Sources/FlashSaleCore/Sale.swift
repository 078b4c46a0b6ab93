/// What an operator last said about a sale. `scheduled` and `ended` are not stored:
/// they follow from the window and the clock (`Sale.state(at:)`).
public enum OperatorState: String, Sendable {
    case open, paused, closed
}

/// The state a sale is in at an instant, as the contract names it.
public enum SaleState: String, Sendable {
    case scheduled, open, paused, ended, closed
}

/// The stock of a sale. `total = available + held + booked` after every transaction;
/// `cancelled` and `expired` count bookings that reached those final states.
public struct Counters: Equatable, Sendable {
    public var total: Int64
    public var available: Int64
    public var held: Int64
    public var booked: Int64
    public var cancelled: Int64
    public var expired: Int64

    public init(total: Int64, available: Int64, held: Int64, booked: Int64, cancelled: Int64, expired: Int64) {
        self.total = total
        self.available = available
        self.held = held
        self.booked = booked
        self.cancelled = cancelled
        self.expired = expired
    }

    /// Without trapping on counters set past any stock by hand (found by probing: a crash
    /// where `verify` was run to find them).
    public var balances: Bool {
        let (sum, overflowed) = available.addingReportingOverflow(held)
        let (all, overflowedAgain) = sum.addingReportingOverflow(booked)
        return !overflowed && !overflowedAgain && all == total
    }
}

/// The largest stock a sale may have: far beyond any real sale, far below overflow.
public let maximumInventory: Int64 = 1_000_000_000

public struct Sale: Sendable {
    public let id: SaleID
    public let name: String
    public let operatorState: OperatorState
    public let counters: Counters
    public let hold: Span
    public let perUser: Int64
    /// At most this many active bookings per IP address; nil: no limit.
    public let perIP: Int64?
    /// Sold out with items still held, queued requests wait instead of being rejected.
    public let waitlist: Bool
    public let startsAt: Instant
    public let endsAt: Instant?
    public let createdAt: Instant
    /// The latest decision time committed for this sale: time never runs backwards.
    public let highWater: Instant

    public init(id: SaleID, name: String, operatorState: OperatorState, counters: Counters, hold: Span,
                perUser: Int64, perIP: Int64? = nil, waitlist: Bool, startsAt: Instant, endsAt: Instant?,
                createdAt: Instant, highWater: Instant) {
        self.id = id
        self.name = name
        self.operatorState = operatorState
        self.counters = counters
        self.hold = hold
        self.perUser = perUser
        self.perIP = perIP
        self.waitlist = waitlist
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.createdAt = createdAt
        self.highWater = highWater
    }

    /// Closed is final; a sale past its end has ended; otherwise paused wins over the
    /// window, and before `starts_at` an open sale is scheduled.
    public func state(at now: Instant) -> SaleState {
        if operatorState == .closed { return .closed }
        if let endsAt, now >= endsAt { return .ended }
        if operatorState == .paused { return .paused }
        if now < startsAt { return .scheduled }
        return .open
    }

    /// When `state(at:)` next changes after `now` by the clock alone (the sale opens, or
    /// ends); nil if it never will (closed, or no start or end ahead). Pause and resume are
    /// an operator's commits.
    public func nextTimedStateChange(after now: Instant) -> Instant? {
        guard operatorState != .closed else { return nil }
        return [startsAt, endsAt].compactMap { $0 }.filter { $0 > now }.min()
    }

    /// The instant a decision about this sale is taken at: never before one already committed.
    public func decisionTime(clock: Instant) -> Instant {
        max(clock, highWater)
    }
}

/// A sale as an operator describes it to `create-sale`.
public struct SaleDefinition: Sendable {
    public let id: SaleID
    public let name: String
    public let inventory: Int64
    public let hold: Span
    public let perUser: Int64
    public let perIP: Int64?
    public let waitlist: Bool
    public let startsAt: Instant
    public let endsAt: Instant?

    public static let defaultHold = Span(milliseconds: 5 * 60_000)
    public static let defaultPerUser: Int64 = 1
    public static let maximumHold = Span(milliseconds: 30 * 86_400_000)
    /// Items a sale may have.
    public static let inventoryRange: ClosedRange<Int64> = 0...maximumInventory
    /// Active bookings a per-user or per-IP limit may allow.
    public static let limitRange: ClosedRange<Int64> = 1...maximumInventory

    public init(id: SaleID, name: String?, inventory: Int64, hold: Span, perUser: Int64, perIP: Int64? = nil,
                waitlist: Bool = false, startsAt: Instant, endsAt: Instant?) throws(SaleError) {
        guard SaleDefinition.inventoryRange.contains(inventory) else { throw .settingOutOfRange(.inventory) }
        guard hold.milliseconds > 0, hold <= SaleDefinition.maximumHold else { throw .settingOutOfRange(.hold) }
        guard SaleDefinition.limitRange.contains(perUser) else { throw .settingOutOfRange(.perUser) }
        if let perIP, !SaleDefinition.limitRange.contains(perIP) { throw .settingOutOfRange(.perIP) }
        if let endsAt, endsAt <= startsAt { throw .endsBeforeStarts(starts: startsAt, ends: endsAt) }
        self.id = id
        self.name = name ?? id.text
        self.inventory = inventory
        self.hold = hold
        self.perUser = perUser
        self.perIP = perIP
        self.waitlist = waitlist
        self.startsAt = startsAt
        self.endsAt = endsAt
    }
}

/// A sale as `status` reports it: its row, and what only the clock and the bookings tell.
public struct SaleStatus: Sendable {
    public let sale: Sale
    public let state: SaleState
    /// Holds still counted in `held` whose expiry has passed: the next command that
    /// meets them, or sweep, expires them.
    public let overdue: Int64
    /// Requests in the sale's queue, not yet decided.
    public let queued: Int64

    public init(sale: Sale, at now: Instant, overdue: Int64, queued: Int64) {
        self.sale = sale
        self.state = sale.state(at: now)
        self.overdue = overdue
        self.queued = queued
    }
}
