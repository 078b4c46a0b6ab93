/// What a block names: an address or range, a user, or a user agent.
public enum BlockKind: String, Sendable, CaseIterable {
    case ip, user, agent
}

/// A requester that gets no holds (exit 9): in one sale, or in every sale.
public struct Block: Equatable, Sendable {
    public let kind: BlockKind
    /// As the operator gave it, checked: an address or CIDR range, a user, an agent text.
    public let value: String
    /// For agents: match a substring instead of the whole text.
    public let contains: Bool
    public let sale: SaleID?
    public let reason: String?
    public let createdAt: Instant
    /// The parsed range of an `ip` block.
    public var ipRange: IPRange? { range }
    private let range: IPRange?

    public init(kind: BlockKind, value: String, contains: Bool, sale: SaleID?, reason: String?, createdAt: Instant) throws {
        switch kind {
        case .ip:
            self.range = try Self.range(value)
        case .user, .agent:
            _ = try (kind == .user ? TextField.user : TextField.userAgent).validate(value, required: true)
            range = nil
        }
        guard !contains || kind == .agent else { throw SaleError.substringBlockOfNoAgent }
        self.kind = kind
        self.value = value
        self.contains = contains
        self.sale = sale
        self.reason = reason
        self.createdAt = createdAt
    }

    /// The block as a new one is stored, made at `createdAt`: an `ip` block's range in one spelling
    /// (`IPRange.description`: `2001:DB8::1` and `2001:db8:0::1` are `2001:db8::1`), so that
    /// the same block again is a no-op and `unblock` finds it whatever the spelling (they
    /// were stored as typed, and unblocking one spelling left the others: found by
    /// probing). A range with bits set past its prefix is refused (`refuseHostBits`).
    public func asStored(at createdAt: Instant) throws -> Block {
        try refuseHostBits()
        return try Block(kind: kind, value: range?.description ?? value, contains: contains, sale: sale, reason: reason,
                         createdAt: createdAt)
    }

    /// Refuses an `ip` block whose range has bits set past its prefix (`10.1.2.3/16`:
    /// `IPRange.refusingHostBits`) as a new block. Not part of `init`, which also reads
    /// the stored blocks, some stored as typed by an earlier flashsale.
    public func refuseHostBits() throws {
        _ = try range?.refusingHostBits(typed: value)
    }

    private static func range(_ text: String) throws -> IPRange {
        guard let range = IPRange(text) else {
            throw FlashSaleError.usage("'\(Quoted(text))' is not an IPv4 or IPv6 address or CIDR range (203.0.113.0/24, 2001:db8::/32)")
        }
        return range
    }

    /// Whether this block stops `request`. Text is compared byte for byte.
    public func matches(_ request: BookingRequest) -> Bool {
        switch kind {
        case .user:
            return request.user == UserID(trusted: value)
        case .agent:
            guard let agent = request.userAgent else { return false }
            return contains ? agent.utf8.containsSubsequence(value.utf8) : agent.utf8.elementsEqual(value.utf8)
        case .ip:
            guard let range, let text = request.ip, let address = IPAddress(text) else { return false }
            return range.contains(address)
        }
    }

    /// Whether this block already stops every request `suspect` names: its user, its agent
    /// text, its address or the whole of its /64 (a block of one address in it does not).
    public func covers(_ suspect: Suspect) -> Bool {
        guard kind == suspect.kind.blockKind else { return false }
        switch kind {
        case .user:
            return UserID(trusted: suspect.value) == UserID(trusted: value)
        case .agent:
            return contains ? suspect.value.utf8.containsSubsequence(value.utf8) : suspect.value.utf8.elementsEqual(value.utf8)
        case .ip:
            guard let range, let named = IPRange(suspect.value) else { return false }
            return range.prefixLength <= named.prefixLength && range.contains(named.network)
        }
    }

    /// The block as its `blocked` event names it: its name (`name(kind:value:contains:)`)
    /// and the reason given.
    public var eventDetail: String {
        Self.name(kind: kind, value: value, contains: contains) + (reason.map { ": " + $0 } ?? "")
    }

    /// A block as the events name it, `agent containing curl`: the value whole and as
    /// given, where an error message shortens and escapes it (`explanation`). The log keeps
    /// data; whoever prints it escapes it (`events` writes JSON).
    public static func name(kind: BlockKind, value: String, contains: Bool) -> String {
        "\(kind.rawValue) " + (contains ? "containing " : "") + value
    }

    /// Why the request was declined, for its error message.
    public var explanation: String {
        let what = kind == .agent && contains ? "agents containing '\(Quoted(value))' are" : "\(kind.rawValue) \(Quoted(value)) is"
        return "\(what) blocked" + (sale.map { " in sale \($0)" } ?? "") + (reason.map { ": \(Quoted($0))" } ?? "")
    }
}

extension Sequence where Element: Equatable {
    /// Whether `needle` occurs as a contiguous run.
    func containsSubsequence<Needle: Collection>(_ needle: Needle) -> Bool where Needle.Element == Element {
        let haystack = Array(self)
        let pattern = Array(needle)
        guard !pattern.isEmpty else { return true }
        guard haystack.count >= pattern.count else { return false }
        return (0...(haystack.count - pattern.count)).contains { start in
            haystack[start..<(start + pattern.count)].elementsEqual(pattern)
        }
    }
}
