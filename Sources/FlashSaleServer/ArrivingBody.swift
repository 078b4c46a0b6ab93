import NIOCore
import Synchronization

/// A request's body that is still arriving when its responder starts (`Responder`): one
/// may answer on the head alone (a 404, a 401) while the client has not sent the body, or
/// waits to (`Expect: 100-continue`), and one that reads it waits for its parts here.
final class ArrivingBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    private struct State {
        var parts: [ByteBuffer] = []
        /// How the body ended, once it has: after its parts, a reader gets nil or the error.
        var end: Result<Void, any Error>?
        var reader: CheckedContinuation<ByteBuffer?, any Error>?

        /// The next part, `.some(nil)` at the end, nil when none has come yet.
        mutating func take() throws -> ByteBuffer?? {
            if !parts.isEmpty { return .some(parts.removeFirst()) }
            switch end {
            case nil: return nil
            case .success: return .some(nil)
            case .failure(let error): throw error
            }
        }
    }

    private let state = Mutex(State())

    /// A body whose first parts (those read with its head) are `parts`.
    init(_ parts: ByteBuffer?) {
        if let parts { state.withLock { $0.parts.append(parts) } }
    }

    func append(_ part: ByteBuffer) {
        let reader = state.withLock { state in
            guard let reader = state.reader else {
                state.parts.append(part)
                return nil as CheckedContinuation<ByteBuffer?, any Error>?
            }
            state.reader = nil
            return reader
        }
        reader?.resume(returning: part)
    }

    /// The body has ended: whole, or cut short by `error`.
    func finish(_ error: (any Error)? = nil) {
        let end: Result<Void, any Error> = error.map { .failure($0) } ?? .success(())
        let reader = state.withLock { state in
            if state.end == nil { state.end = end }
            defer { state.reader = nil }
            return state.reader
        }
        reader?.resume(with: end.map { nil as ByteBuffer? })
    }

    private func next() async throws -> ByteBuffer? {
        // What came before it is read is taken without a suspension.
        if let taken = try state.withLock({ try $0.take() }) { return taken }
        return try await withCheckedThrowingContinuation { reader in
            do {
                guard let taken = try state.withLock({ state in
                    let taken = try state.take()
                    if taken == nil { state.reader = reader }
                    return taken
                }) else { return }
                reader.resume(returning: taken)
            } catch {
                reader.resume(throwing: error)
            }
        }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let body: ArrivingBody

        func next() async throws -> ByteBuffer? {
            try await body.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(body: self)
    }
}
