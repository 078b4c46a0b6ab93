import NIOCore
import NIOHTTPTypes

/// http.md: "headers must arrive within 10 s, a body within 10 s". A request's head must be
/// whole 10 s after its first byte, and its body 10 s after its head; otherwise the
/// connection closes, so that a client trickling bytes (slowloris) holds a connection and
/// its buffers that long at most. Between requests a keep-alive connection is idle, which
/// Hummingbird's idle timeout ends.
///
/// Placed after the HTTP decoder, it sees a request's parts; the head's clock starts with
/// bytes the decoder has not made a part of yet, which a companion before the decoder sees.
final class RequestDeadlines: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    static let limit = TimeAmount.seconds(10)

    private var deadline: Scheduled<Void>?
    /// No request is being read: the next byte starts a head.
    private var betweenRequests = true

    func handlerAdded(context: ChannelHandlerContext) {
        do {
            try context.pipeline.syncOperations.addHandler(RequestStart(deadlines: self), position: .first)
        } catch {
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            betweenRequests = false
            start(context)
        case .body:
            break
        case .end:
            deadline?.cancel()
            deadline = nil
            betweenRequests = true
        }
        context.fireChannelRead(data)
    }

    fileprivate func bytesArrived(context: ChannelHandlerContext) {
        guard betweenRequests, deadline == nil else { return }
        start(context)
    }

    private func start(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: RequestDeadlines.limit) {
            context.close(promise: nil)
        }
    }
}

/// Before the decoder: tells `RequestDeadlines` that bytes arrived.
private final class RequestStart: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let deadlines: RequestDeadlines

    init(deadlines: RequestDeadlines) {
        self.deadlines = deadlines
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deadlines.bytesArrived(context: context)
        context.fireChannelRead(data)
    }
}
