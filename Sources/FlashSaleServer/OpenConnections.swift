import NIOConcurrencyHelpers

/// A listener's connections still open, or whose last request is still running, for its
/// graceful shutdown to wait for: every request already read is answered (its change
/// decided, its answer counted and logged) before serve stops, even when its client has
/// gone. Counted rather than kept by a task per connection, which Hummingbird's server
/// would otherwise run for each (about 1.6 KiB of peak RSS a connection held at 10,000,
/// `bench/crowd-memory.sh`) only to wait for its close.
final class OpenConnections: Sendable {
    private struct State {
        var open = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = NIOLockedValueBox(State())

    /// A connection's `Responder` was added to its pipeline.
    func opened() {
        state.withLockedValue { $0.open += 1 }
    }

    /// That connection has closed, and its last request has finished (its answer written,
    /// its task ended).
    func ended() {
        let waiters = state.withLockedValue { state in
            state.open -= 1
            guard state.open == 0 else { return [CheckedContinuation<Void, Never>]() }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once none is open, or at once when the waiting task is cancelled (serve
    /// is being stopped without waiting).
    func allEnded() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { waiter in
                let now = state.withLockedValue { state in
                    if state.open == 0 || Task.isCancelled { return true }
                    state.waiters.append(waiter)
                    return false
                }
                if now { waiter.resume() }
            }
        } onCancel: {
            let waiters = state.withLockedValue { state in
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }
}
