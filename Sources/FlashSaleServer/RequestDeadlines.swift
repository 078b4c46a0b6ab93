import NIOCore
import NIOHTTPTypes

/// http.md: "headers must arrive within 10 s, a body within 10 s". A request's head must be
/// whole 10 s after its first byte, and its body 10 s after its head; otherwise the
/// connection closes, so that a client trickling bytes (slowloris) holds a connection and
/// its buffers that long at most. Between requests a keep-alive connection is idle, which
/// Hummingbird's idle timeout ends.
///
/// A timer scheduled and cancelled for every request would cost each request two updates
/// of the event loop's timer heap, as much as parsing it. So, as NIO's `IdleStateHandler`
/// does, the connection keeps one timer, armed when a phase starts and none is armed; when
/// it fires it looks at the phase then under way: past its limit closes the connection, a
/// later phase arms the timer for that phase's end, and none leaves the timer unarmed.
///
/// Placed after the HTTP decoder, it sees a request's parts; the head's clock starts with
/// bytes the decoder has not made a part of yet, which a companion before the decoder sees.
///
/// Shutdown keeps that promise too (the man page: "a request still arriving has the rest of
/// its 10 seconds"): Hummingbird closes at once a connection with no request in progress,
/// and one whose head is still arriving has none yet. So the quiesce event that tells it
/// to waits here while a head is arriving, and goes on behind the head: the request is
/// then in progress, and the connection closes once it is answered (or at the deadline).
/// A head whose first bytes came in one read with the request before it (pipelined) is
/// not seen arriving, for its deadline nor for this: such a connection closes at once.
final class RequestDeadlines: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    static let limit = TimeAmount.seconds(10)

    private var timer: Scheduled<Void>?
    /// When the phase under way (a head, then a body) must end; nil between requests.
    private var phaseDeadline: NIODeadline?
    /// Whether the phase under way is a head's: bytes arrived, and the head is not whole.
    private var readingHead = false
    /// A shutdown began while a head was arriving: its quiesce event, held until the head.
    private var quiesceHeld = false

    func handlerAdded(context: ChannelHandlerContext) {
        do {
            try context.pipeline.syncOperations.addHandler(RequestStart(deadlines: self), position: .first)
        } catch {
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            readingHead = false
            startPhase(context)
            context.fireChannelRead(data)
            if quiesceHeld {
                quiesceHeld = false
                context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
            return
        case .body:
            break
        case .end:
            phaseDeadline = nil
        }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, readingHead {
            quiesceHeld = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    fileprivate func bytesArrived(context: ChannelHandlerContext) {
        guard phaseDeadline == nil else { return }
        readingHead = true
        startPhase(context)
    }

    private func startPhase(_ context: ChannelHandlerContext) {
        let deadline = NIODeadline.now() + RequestDeadlines.limit
        phaseDeadline = deadline
        if timer == nil { arm(at: deadline, context) }
    }

    private func arm(at deadline: NIODeadline, _ context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            guard let phaseDeadline else { return }
            if phaseDeadline <= .now() {
                context.close(promise: nil)
            } else {
                arm(at: phaseDeadline, context)
            }
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
