import NIOConcurrencyHelpers
import PostgresNIO

extension EventLoopFuture where Value: Sendable {
    /// The future's value, as `wait()` gives it (the same one callback on the loop, the
    /// same one lock), or nil when it has not come within `seconds`; no limit when
    /// `seconds` is nil. The future goes on without the caller.
    func wait(atMost seconds: Double?) throws -> Value? {
        guard let seconds else { return try wait() }
        let outcome = Outcome<Value>()
        whenComplete { result in
            outcome.arrival.lock()
            outcome.result = result
            outcome.arrival.unlock(withValue: true)
        }
        guard outcome.arrival.lock(whenValue: true, timeoutSeconds: seconds) else { return nil }
        defer { outcome.arrival.unlock() }
        return try outcome.result?.get()
    }
}

/// A future's result, handed from its loop to the thread that waits for it under `arrival`.
private final class Outcome<Value>: @unchecked Sendable {
    let arrival = ConditionLock(value: false)
    var result: Result<Value, any Error>?
}
