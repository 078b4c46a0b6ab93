import NIOCore

/// A request's answer now, or the future of one. A change (book, confirm, cancel, submit)
/// waits in the committer's queue for its group's commit, thousands of them at once in a
/// sale's burst. A task waiting for it would keep its request and its async frames (the
/// task allocator keeps a task's slabs until it ends) all that time: 7.0 KiB a request,
/// 71 MiB for 10,000 waiting, against 1 KiB with the change queued and no task
/// (bench/README.md). So the task that checked the request ends once its change is queued,
/// and its answer, whole, is written when the future completes.
enum Reply<Now: Sendable, Later: Sendable>: Sendable {
    case now(Now)
    case later(EventLoopFuture<Later>)

    /// Each kind of answer transformed: one now at once, one later when it comes.
    func map<NewNow: Sendable, NewLater: Sendable>(now: (Now) -> NewNow,
                                                   later: @escaping @Sendable (Later) -> NewLater) -> Reply<NewNow, NewLater> {
        switch self {
        case .now(let value): .now(now(value))
        case .later(let future): .later(future.map(later))
        }
    }
}

extension EventLoopFuture {
    /// The future of `transform`'s value for this one's result, a success or a failure:
    /// one future where `map` and `recover` make two (see `Reply`: a request waiting for
    /// its commit keeps its futures, and each keeps its value).
    func mapResult<NewValue: Sendable>(_ transform: @escaping @Sendable (Result<Value, any Error>) -> NewValue)
        -> EventLoopFuture<NewValue> {
        let promise = eventLoop.makePromise(of: NewValue.self)
        whenComplete { promise.succeed(transform($0)) }
        return promise.futureResult
    }
}
