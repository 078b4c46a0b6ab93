/// A refusal by the rules of a sale, with the facts each front end needs to say it in its
/// own words (the command line's messages and exit codes, HTTP's statuses and bodies).
public enum SaleError: Error, Equatable, Sendable {
    case saleNotFound(SaleID)
    case saleExists(SaleID)
    /// No such booking in the sale, or (with `user`) not that user's: the same answer
    /// either way, so a wrong user learns nothing about other users' bookings.
    case bookingNotFound(BookingID, sale: SaleID, user: UserID?)
    case requestNotFound(RequestID)
    case blockNotFound
    /// A key names one user's request in a sale, on every path.
    case keyUsedByAnotherUser(key: String, sale: SaleID)
    case declined(Decline)
    /// Confirm at or after the hold's expiry.
    case holdExpired(BookingID, expiresAt: Instant)
    /// Confirm of a cancelled booking.
    case bookingCancelled(BookingID)
    /// Cancel of a confirmed booking, without force.
    case bookingConfirmed(BookingID)
    /// An exact total below what is held and booked.
    case totalBelowCommitted(SaleID, committed: Int64)
    /// More items than `maximumInventory`.
    case totalOverMaximum(SaleID)
    case saleClosed(SaleID)
    case saleEnded(SaleID, at: Instant?)
    /// A sale's setting outside what it allows.
    case settingOutOfRange(SaleSetting)
    case endsBeforeStarts(starts: Instant, ends: Instant)
    /// Matching by substring is for agent blocks only.
    case substringBlockOfNoAgent
    /// A record of bulk input that is not a request; nothing of the input was taken.
    case malformedRecord(line: Int, reason: String)
    /// A CSV header that cannot be read, so that no record can be; nothing was taken, even
    /// where malformed records are skipped.
    case malformedHeader(line: Int, reason: String)
    /// A refusal of one record of bulk input; nothing of the input was taken.
    indirect case inRecord(line: Int, SaleError)
}

extension SaleError {
    /// The contract's code for this refusal, the same for every front end.
    public var code: ErrorCode {
        switch self {
        case .saleNotFound, .bookingNotFound, .requestNotFound, .blockNotFound: .notFound
        case .saleExists, .keyUsedByAnotherUser, .bookingCancelled, .bookingConfirmed, .totalBelowCommitted,
             .totalOverMaximum, .saleClosed, .saleEnded:
            .conflict
        case .declined(let decline): decline.reason.code
        case .holdExpired: .holdExpired
        case .settingOutOfRange, .endsBeforeStarts, .substringBlockOfNoAgent: .usage
        case .malformedRecord, .malformedHeader: .badInput
        case .inRecord(_, let refusal): refusal.code
        }
    }
}

extension DeclineReason {
    public var code: ErrorCode {
        switch self {
        case .notOpen: .notOpen
        case .blocked: .blocked
        case .userLimit: .userLimit
        case .soldOut: .soldOut
        }
    }
}

/// The settings of a sale that have bounds.
public enum SaleSetting: Sendable, Equatable {
    case inventory, hold, perUser, perIP
}
