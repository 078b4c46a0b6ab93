import NIOCore

/// The end of a connection's last answer, as written. A full close drops what is still
/// queued, so each handler that closes a connection after its answers (`Responder`,
/// `MalformedRequests`, `ConnectionDeadlines`) waits for it. Each keeps its own: an
/// answer's end passes them one after another, with the one promise `Responder` gives it.
struct LastAnswer {
    private var written: EventLoopFuture<Void>?

    /// The promise to write an answer's end with, remembered as the last: the writer's own
    /// when it gave one (one promise an answer, not a second cascaded to it).
    mutating func end(_ promise: EventLoopPromise<Void>?, on loop: any EventLoop) -> EventLoopPromise<Void> {
        let end = promise ?? loop.makePromise()
        written = end.futureResult
        return end
    }

    /// Closes `channel` once the last answer written has gone out, or at once if none was.
    /// (No handler of serve's acts on a close: from the channel or from a handler's
    /// context, it is the same close.)
    func close(_ channel: any Channel, mode: CloseMode = .all) {
        guard let written else { return channel.close(mode: mode, promise: nil) }
        written.whenComplete { _ in channel.close(mode: mode, promise: nil) }
    }
}
