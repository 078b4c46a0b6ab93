/// What an event records. The raw values are the `kind` field of `events`.
public enum EventKind: String, Sendable, CaseIterable {
    case saleCreated = "sale_created"
    case inventorySeeded = "inventory_seeded"
    case salePaused = "sale_paused"
    case saleResumed = "sale_resumed"
    case saleClosed = "sale_closed"
    /// A hold was made; with a request, the request's decision (accepted with this hold).
    case held
    case booked
    case cancelled
    case expired
    /// A queued request accepted with the booking its key already had.
    case accepted
    /// A queued request rejected; the detail is the reason.
    case rejected
    case blocked
    case unblocked

    /// The event a booking's move to `status` appends.
    public init(movedTo status: BookingStatus) {
        switch status {
        case .held: self = .held
        case .booked: self = .booked
        case .cancelled: self = .cancelled
        case .expired: self = .expired
        }
    }

    /// The event of an operator's change of a sale's state.
    public init(_ command: OperatorCommand) {
        switch command {
        case .pause: self = .salePaused
        case .resume: self = .saleResumed
        case .close: self = .saleClosed
        }
    }

    /// Whether this event, naming a request, is that request's decision, and which.
    public var requestStatus: RequestStatus? {
        switch self {
        case .held, .accepted: .accepted
        case .rejected: .rejected
        default: nil
        }
    }
}

/// What moved a booking, kept as the detail of its event: the name of the command that
/// did it, as the event log has always written it.
public enum ChangeCause: String, Sendable {
    case book, process, confirm, cancel, sweep
    /// A confirmed booking cancelled, its item back to stock.
    case forcedCancel = "cancel --force"
    case seedInventory = "seed-inventory"
}

/// What happened, as the engine appends it with its state change: the store gives it its
/// `seq`, and it comes back as an `Event`.
public struct NewEvent: Sendable, Equatable {
    public let at: Instant
    /// Text, not a SaleID: blocks of every sale are logged with sale `*`.
    public let sale: String
    public let kind: EventKind
    public let booking: BookingID?
    public let user: UserID?
    public let request: RequestID?
    public let detail: String?

    public init(at: Instant, sale: String, kind: EventKind, booking: BookingID? = nil, user: UserID? = nil,
                request: RequestID? = nil, detail: String? = nil) {
        self.at = at
        self.sale = sale
        self.kind = kind
        self.booking = booking
        self.user = user
        self.request = request
        self.detail = detail
    }
}

/// One row of the event log: what was appended, and the `seq` the store gave it. Its
/// fields are read as the appended event's (`event.user`).
@dynamicMemberLookup
public struct Event: Sendable, Equatable {
    public let seq: Int64
    public let appended: NewEvent

    public init(seq: Int64, _ appended: NewEvent) {
        self.seq = seq
        self.appended = appended
    }

    public subscript<Value>(dynamicMember field: KeyPath<NewEvent, Value>) -> Value {
        appended[keyPath: field]
    }
}

/// A queued request's id: its place in FIFO order, unique across all sales, never reused.
public struct RequestID: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public let value: Int64

    public init(_ value: Int64) {
        self.value = value
    }

    public init(integerLiteral value: Int64) {
        self.value = value
    }

    /// An id as a person or a URL writes it: ASCII digits only (no sign, no spaces), a
    /// request's, so above zero; nil otherwise.
    public init?(parsing text: some StringProtocol) {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let value = Int64(text), value > 0
        else { return nil }
        self.value = value
    }

    /// Before the first request of every line.
    public static let none = RequestID(0)

    public static func < (a: RequestID, b: RequestID) -> Bool { a.value < b.value }

    public var description: String { String(value) }
}
