public enum BookingStatus: String, Sendable, CaseIterable {
    case held, booked, cancelled, expired
}

/// One item for one user in one sale.
public struct Booking: Sendable, Equatable {
    public let id: BookingID
    public let sale: SaleID
    public let user: UserID
    public let status: BookingStatus
    public let createdAt: Instant
    public let expiresAt: Instant
    public let confirmedAt: Instant?
    public let cancelledAt: Instant?
    public let expiredAt: Instant?
    public let ip: String?
    public let userAgent: String?
    public let key: String?

    public init(id: BookingID, sale: SaleID, user: UserID, status: BookingStatus, createdAt: Instant,
                expiresAt: Instant, confirmedAt: Instant?, cancelledAt: Instant?, expiredAt: Instant?,
                ip: String?, userAgent: String?, key: String?) {
        self.id = id
        self.sale = sale
        self.user = user
        self.status = status
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.confirmedAt = confirmedAt
        self.cancelledAt = cancelledAt
        self.expiredAt = expiredAt
        self.ip = ip
        self.userAgent = userAgent
        self.key = key
    }

    /// How the booking looks at `now`: a hold past its expiry is expired everywhere, even
    /// before a sweep writes it so. It expired at `expires_at`, whoever records it.
    public func seen(at now: Instant) -> Booking {
        guard status == .held, Rules.isExpired(expiresAt: expiresAt, at: now) else { return self }
        return Booking(id: id, sale: sale, user: user, status: .expired, createdAt: createdAt,
                       expiresAt: expiresAt, confirmedAt: nil, cancelledAt: nil, expiredAt: expiresAt,
                       ip: ip, userAgent: userAgent, key: key)
    }
}

/// Who asks for an item: the user, and what bot defence and idempotency need.
public struct BookingRequest: Sendable {
    public let sale: SaleID
    public let user: UserID
    public let ip: String?
    public let userAgent: String?
    public let key: String?

    public init(sale: SaleID, user: UserID, ip: String?, userAgent: String?, key: String?) {
        self.sale = sale
        self.user = user
        self.ip = ip
        self.userAgent = userAgent
        self.key = key
    }
}
