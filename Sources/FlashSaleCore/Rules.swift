/// Why a booking request got no hold. The raw values are the contract's error codes.
public enum DeclineReason: String, Sendable {
    case notOpen = "not_open"
    case blocked
    case userLimit = "user_limit"
    case soldOut = "sold_out"
}

public struct Decline: Error, Equatable, Sendable {
    public let reason: DeclineReason
    public let message: String

    public var error: FlashSaleError {
        switch reason {
        case .notOpen: .notOpen(message)
        case .blocked: .blocked(message)
        case .userLimit: .userLimit(message)
        case .soldOut: .soldOut(message)
        }
    }
}

/// The answer to a booking request.
public enum Admission: Equatable, Sendable {
    /// Hold one of the available items.
    case hold
    /// Nothing is available, but an overdue hold is: expire it and give its item to this request.
    case reclaimOverdueHold
    case decline(Decline)
}

/// What may happen to a booking when a command meets it.
public enum Transition: Equatable, Sendable {
    case move(to: BookingStatus)
    case unchanged
    case refuse(FlashSaleError)
}

/// The rules of a flash sale, in one place. The store asks these; the SQL mirrors the
/// expiry boundary once (see SaleStore) and nowhere else.
public enum Rules {
    /// The one expiry boundary: at the instant `now >= expires_at` a hold is expired,
    /// for confirm, sweep and book alike. Strictly before it, it is confirmable.
    public static func isExpired(expiresAt: Instant, at now: Instant) -> Bool {
        now >= expiresAt
    }

    /// May this request get a hold? The checks run in the contract's order: sale open (8),
    /// user under the limit (7), item available (6). (The blocked check, 9, belongs between
    /// the first two once block lists exist.) Each fact is asked for only once the checks
    /// before it have passed, so a declined request costs as few queries as possible.
    public static func admit(
        _ sale: Sale,
        at now: Instant,
        activeBookings: () throws -> Int64,
        hasOverdueHold: () throws -> Bool
    ) rethrows -> Admission {
        let state = sale.state(at: now)
        guard state == .open else {
            return .decline(Decline(reason: .notOpen, message: notOpenMessage(sale, state)))
        }
        if try activeBookings() >= sale.perUser {
            return .decline(Decline(reason: .userLimit,
                                    message: "the user already has \(sale.perUser) active booking\(sale.perUser == 1 ? "" : "s") in sale \(sale.id), the limit"))
        }
        if sale.counters.available > 0 { return .hold }
        if try hasOverdueHold() { return .reclaimOverdueHold }
        return .decline(Decline(reason: .soldOut, message: "sale \(sale.id) is sold out"))
    }

    /// `confirm`: held → booked strictly before expiry; booked stays booked.
    public static func confirmation(of booking: Booking, at now: Instant) -> Transition {
        switch booking.seen(at: now).status {
        case .held: .move(to: .booked)
        case .booked: .unchanged
        case .expired:
            .refuse(.holdExpired("booking \(booking.id) expired at \(booking.expiresAt); book again"))
        case .cancelled:
            .refuse(.conflict("booking \(booking.id) was cancelled and cannot be confirmed"))
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
                : .refuse(.conflict("booking \(booking.id) is confirmed; use --force to cancel it and return the item to stock"))
        case .cancelled, .expired: return .unchanged
        }
    }

    private static func notOpenMessage(_ sale: Sale, _ state: SaleState) -> String {
        switch state {
        case .scheduled: "sale \(sale.id) opens at \(sale.startsAt)"
        case .paused: "sale \(sale.id) is paused; resume it to take bookings"
        case .ended: "sale \(sale.id) ended at \(sale.endsAt.map { "\($0)" } ?? "")"
        case .closed: "sale \(sale.id) is closed"
        case .open: "sale \(sale.id) is open"
        }
    }
}

/// The operator's commands on a sale's state.
public enum OperatorCommand: String, Sendable {
    case pause, resume, close
}

extension Rules {
    /// The state `command` moves the sale to, or nil when it is already there (a no-op,
    /// exit 0). Closed is final, and a sale past its end can only be closed.
    public static func change(_ sale: Sale, by command: OperatorCommand, at now: Instant) throws(FlashSaleError) -> OperatorState? {
        let state = sale.state(at: now)
        switch (command, state) {
        case (.close, .closed): return nil
        case (.close, _): return .closed
        case (_, .closed): throw .conflict("sale \(sale.id) is closed, which is final")
        case (_, .ended): throw .conflict("sale \(sale.id) ended at \(sale.endsAt.map { "\($0)" } ?? "")")
        case (.pause, _): return sale.operatorState == .paused ? nil : .paused
        case (.resume, _): return sale.operatorState == .open ? nil : .open
        }
    }
}
