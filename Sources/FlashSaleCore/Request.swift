public enum RequestStatus: String, Sendable, CaseIterable {
    case queued, accepted, rejected
}

/// A booking attempt in a sale's durable FIFO queue: queued, then decided exactly once.
public struct QueuedRequest: Sendable, Equatable {
    public let id: RequestID
    public let sale: SaleID
    public let user: UserID
    public let ip: String?
    public let userAgent: String?
    public let key: String?
    public let status: RequestStatus
    /// Why it was rejected: a decline reason's code (`sold_out`, `user_limit`, `not_open`).
    public let reason: String?
    public let booking: BookingID?
    public let submittedAt: Instant
    public let decidedAt: Instant?
    /// For a queued request, how many requests of its sale are decided before it, plus one.
    public let position: Int64?

    public init(id: RequestID, sale: SaleID, user: UserID, ip: String?, userAgent: String?, key: String?,
                status: RequestStatus, reason: String?, booking: BookingID?, submittedAt: Instant,
                decidedAt: Instant?, position: Int64?) {
        self.id = id
        self.sale = sale
        self.user = user
        self.ip = ip
        self.userAgent = userAgent
        self.key = key
        self.status = status
        self.reason = reason
        self.booking = booking
        self.submittedAt = submittedAt
        self.decidedAt = decidedAt
        self.position = position
    }
}
