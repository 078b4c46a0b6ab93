/// Where "now" comes from. Every decision asks a clock, so tests and replays can fix it
/// (`FLASHSALE_NOW`) instead of sleeping. (Not `Clock`, which the standard library names.)
public protocol WallClock: Sendable {
    func now() -> Instant
}

/// The clock that always answers the same instant: `FLASHSALE_NOW`.
public struct FixedClock: WallClock {
    public let instant: Instant

    public init(_ instant: Instant) {
        self.instant = instant
    }

    public func now() -> Instant { instant }
}
