/// Why a booking request got no hold. The raw values are the contract's error codes.
public enum DeclineReason: String, Sendable {
    case notOpen = "not_open"
    case blocked
    case userLimit = "user_limit"
    case soldOut = "sold_out"
}

/// A declined booking request, with what a message about it needs. The message itself is
/// only written when it is shown, by the front end: a stream of a million declines prints
/// reasons, not sentences.
public struct Decline: Equatable, Sendable {
    public let reason: DeclineReason
    public let sale: Sale
    /// The sale's state at the decision.
    public let state: SaleState
    /// Sold out to direct bookings because queued requests of a waitlist go first.
    public let lineWaiting: Bool
    /// Why a blocked requester is blocked.
    public let blocked: BlockedBecause?

    init(_ reason: DeclineReason, _ sale: Sale, state: SaleState, lineWaiting: Bool = false,
         blocked: BlockedBecause? = nil) {
        self.reason = reason
        self.sale = sale
        self.state = state
        self.lineWaiting = lineWaiting
        self.blocked = blocked
    }

    public static func == (a: Decline, b: Decline) -> Bool {
        a.reason == b.reason && a.sale.id == b.sale.id
    }
}

/// Why a requester may not hold (check 9): a block that matches it, or its requester (an
/// IPv4 address, or an IPv6 address's /64: `AttemptCounter.requester(of:)`, `kind` .ip or
/// .network) at the sale's per-IP limit with that many active bookings, and the attempts
/// counted in the sale from it, this one included.
public enum BlockedBecause: Equatable, Sendable {
    case block(Block)
    case perIPLimit(requester: String, kind: SuspectKind, active: Int64, attempts: Int64)
}

/// The answer to a booking request.
public enum Admission: Equatable, Sendable {
    /// Hold one of the available items.
    case hold
    /// Nothing is available, but an overdue hold is: expire it and give its item to this request.
    case reclaimOverdueHold
    /// A waitlisted sale is sold out while items are still held: the queued request keeps
    /// its place until one comes back, or nothing is held any more.
    case wait
    case decline(Decline)
}

/// What may happen to a booking when a command meets it.
public enum Transition: Equatable, Sendable {
    case move(to: BookingStatus)
    case unchanged
    case refuse(SaleError)
    /// Record the move, then refuse anyway: what the refusal found out must hold for good.
    case moveThenRefuse(to: BookingStatus, SaleError)
}

/// The rules of a flash sale, in one place. The engine asks these; the SQLite store mirrors
/// the expiry boundary and the count of active bookings once each in SQL (Rows.swift).
public enum Rules {
    /// The one expiry boundary: at the instant `now >= expires_at` a hold is expired,
    /// for confirm, sweep and book alike. Strictly before it, it is confirmable.
    public static func isExpired(expiresAt: Instant, at now: Instant) -> Bool {
        now >= expiresAt
    }

    /// May this request get a hold? The checks run in the contract's order: sale open (8),
    /// requester not blocked nor over the per-IP limit (9), user under the limit (7), item
    /// available (6). Each fact is asked for only once the checks before it have passed, so
    /// a declined request costs as few queries as possible.
    ///
    /// `fromQueue` says the request is the head of the sale's queue (`process`). In a
    /// waitlisted sale it may wait for an item to come back; a direct `book` may not, and
    /// may not take an item while queued requests are waiting for one (`isLineWaiting`).
    public static func admit(
        _ sale: Sale,
        at now: Instant,
        fromQueue: Bool,
        blockedBecause: () throws -> BlockedBecause?,
        activeBookings: () throws -> Int64,
        hasOverdueHold: () throws -> Bool,
        isLineWaiting: () throws -> Bool
    ) rethrows -> Admission {
        let state = sale.state(at: now)
        guard state == .open else {
            return .decline(Decline(.notOpen, sale, state: state))
        }
        if let why = try blockedBecause() {
            return .decline(Decline(.blocked, sale, state: state, blocked: why))
        }
        if try activeBookings() >= sale.perUser {
            return .decline(Decline(.userLimit, sale, state: state))
        }
        if sale.waitlist, !fromQueue, try isLineWaiting() {
            return .decline(Decline(.soldOut, sale, state: state, lineWaiting: true))
        }
        if sale.counters.available > 0 { return .hold }
        if try hasOverdueHold() { return .reclaimOverdueHold }
        // Any hold left now is unexpired: it may yet be cancelled or expire.
        if sale.waitlist, fromQueue, sale.counters.held > 0 { return .wait }
        return .decline(Decline(.soldOut, sale, state: state))
    }

    /// A queue in front of a sale that has not opened yet, or is paused, keeps its place:
    /// those states pass. Ended and closed sales reject its requests (not_open).
    public static func queueWaits(_ sale: Sale, at now: Instant) -> Bool {
        [.scheduled, .paused].contains(sale.state(at: now))
    }

    /// When no queued request can get an item now, whoever asks and whatever its user
    /// holds: the reason a request is rejected with when its user is at the limit, and
    /// otherwise. Nil when someone could still get an item. Derived from `admit` itself,
    /// so that a run of rejections decided at once keeps the order of checks.
    public static func declineWhenNobodyCanHold(
        _ sale: Sale, at now: Instant, hasOverdueHold: () throws -> Bool
    ) throws -> (atLimit: DeclineReason, otherwise: DeclineReason)? {
        func reason(activeBookings: Int64) throws -> DeclineReason? {
            let admission = try admit(sale, at: now, fromQueue: true, blockedBecause: { nil },
                                      activeBookings: { activeBookings }, hasOverdueHold: hasOverdueHold,
                                      isLineWaiting: { false })
            guard case .decline(let decline) = admission else { return nil }
            return decline.reason
        }
        guard let otherwise = try reason(activeBookings: 0), let atLimit = try reason(activeBookings: sale.perUser) else {
            return nil
        }
        return (atLimit, otherwise)
    }

    /// `confirm`: held → booked strictly before expiry; booked stays booked. An overdue
    /// hold is refused and written as expired, as `cancel` writes it: otherwise a clock
    /// stepped back behind the refusal would find it confirmable again.
    public static func confirmation(of booking: Booking, at now: Instant) -> Transition {
        switch booking.seen(at: now).status {
        case .held: .move(to: .booked)
        case .booked: .unchanged
        case .expired:
            booking.status == .held
                ? .moveThenRefuse(to: .expired, .holdExpired(booking.id, expiresAt: booking.expiresAt))
                : .refuse(.holdExpired(booking.id, expiresAt: booking.expiresAt))
        case .cancelled:
            .refuse(.bookingCancelled(booking.id))
        }
    }

    /// `cancel`: a hold is cancelled (or, once past its expiry, expired); a confirmed
    /// booking only with `--force`; final states stay as they are.
    public static func cancellation(of booking: Booking, force: Bool, at now: Instant) -> Transition {
        if booking.status == .held, booking.seen(at: now).status == .expired {
            return .move(to: .expired)
        }
        switch booking.status {
        case .held: return .move(to: .cancelled)
        case .booked:
            return force
                ? .move(to: .cancelled)
                : .refuse(.bookingConfirmed(booking.id))
        case .cancelled, .expired: return .unchanged
        }
    }
}

extension Rules {
    /// `seed-inventory`: the sale's new total, `count` more items or (`exactly`) `count` in
    /// all; never below what is held and booked, never above `maximumInventory`.
    public static func seededTotal(of sale: Sale, count: Int64, exactly: Bool) throws(SaleError) -> Int64 {
        if exactly {
            let committed = sale.counters.held + sale.counters.booked
            guard count >= committed else { throw .totalBelowCommitted(sale.id, committed: committed) }
            return count
        }
        guard count <= maximumInventory - sale.counters.total else { throw .totalOverMaximum(sale.id) }
        return sale.counters.total + count
    }

    /// The per-IP limit (`create-sale --per-ip`): a requester whose address already has that
    /// many active bookings in the sale is declined like a blocked one (9).
    public static func exceedsIPLimit(_ sale: Sale, activeFromAddress: Int64) -> Bool {
        sale.perIP.map { activeFromAddress >= $0 } ?? false
    }
}

/// The operator's commands on a sale's state.
public enum OperatorCommand: String, Sendable {
    case pause, resume, close
}

extension Rules {
    /// The state `command` moves the sale to, or nil when it is already there (a no-op,
    /// exit 0). Closed is final, and a sale past its end can only be closed.
    public static func change(_ sale: Sale, by command: OperatorCommand, at now: Instant) throws(SaleError) -> OperatorState? {
        let state = sale.state(at: now)
        switch (command, state) {
        case (.close, .closed): return nil
        case (.close, _): return .closed
        case (_, .closed): throw .saleClosed(sale.id)
        case (_, .ended): throw .saleEnded(sale.id, at: sale.endsAt)
        case (.pause, _): return sale.operatorState == .paused ? nil : .paused
        case (.resume, _): return sale.operatorState == .open ? nil : .open
        }
    }
}
