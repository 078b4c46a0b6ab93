import Glibc

/// The real wall clock (CLOCK_REALTIME), read once per decision.
public struct SystemClock: WallClock {
    public init() {}

    public func now() -> Instant {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Instant(milliseconds: Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000)
    }
}

/// Nanoseconds on CLOCK_MONOTONIC, for measuring waits and rates. Not Swift's
/// ContinuousClock: that lives in the concurrency library, whose libdispatch initializer
/// then runs at every process start (0.3 ms of a single `book`).
public enum MonotonicClock {
    public static func nanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
