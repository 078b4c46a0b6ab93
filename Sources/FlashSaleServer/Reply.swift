import NIOCore

/// A request's answer now, or later. A change (book, confirm, cancel, submit) waits in the
/// committer's queue for its group's commit, thousands of them at once in a sale's burst.
/// A task waiting for it would keep its request and its async frames (the task allocator
/// keeps a task's slabs until it ends) all that time: 7.0 KiB a request, 71 MiB for
/// 10,000 waiting, against 1 KiB with the change queued and no task (bench/README.md).
/// So the task that checked the request ends once its change is queued, and its answer,
/// whole, is written when it comes (`Deferred`).
enum Reply<Now: Sendable, Later: Sendable>: Sendable {
    case now(Now)
    case later(Deferred<Later>)

    /// Each kind of answer transformed: one now at once, one later when it comes.
    func map<NewNow: Sendable, NewLater: Sendable>(now: (Now) -> NewNow,
                                                   later: @escaping @Sendable (Later) -> NewLater) -> Reply<NewNow, NewLater> {
        switch self {
        case .now(let value): .now(now(value))
        case .later(let deferred): .later(deferred.map(later))
        }
    }
}

/// A value that one future's result will give, through functions composed as it is passed
/// up (the outcome's kind, its answer, its log line). Each `EventLoopFuture.map` would make
/// a future, with room for its value, that lives as long as the change waits, and cost
/// every request the runtime's lookups of its generic types: four futures made a booking
/// waiting 2.6 KiB, and a decline 17.6k instructions more (bench/README.md).
struct Deferred<Value: Sendable>: Sendable {
    private let register: @Sendable (@escaping @Sendable (Value) -> Void) -> Void

    /// `transform` of `future`'s result, on the future's event loop.
    init<Source: Sendable>(_ future: EventLoopFuture<Source>,
                           _ transform: @escaping @Sendable (Result<Source, any Error>) -> Value) {
        register = { body in future.whenComplete { body(transform($0)) } }
    }

    private init(register: @escaping @Sendable (@escaping @Sendable (Value) -> Void) -> Void) {
        self.register = register
    }

    func map<NewValue: Sendable>(_ transform: @escaping @Sendable (Value) -> NewValue) -> Deferred<NewValue> {
        let register = register
        return Deferred<NewValue> { body in register { body(transform($0)) } }
    }

    /// The value, once there is one, for a task that waits for it.
    var value: Value {
        get async {
            await withCheckedContinuation { continuation in whenComplete { continuation.resume(returning: $0) } }
        }
    }

    /// Calls `body` with the value once there is one: at once if there is.
    func whenComplete(_ body: @escaping @Sendable (Value) -> Void) {
        register(body)
    }
}
