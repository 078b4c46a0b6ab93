import NIOCore
import NIOHTTPTypes

/// A connection's deadlines, on one timer. http.md: "headers must arrive within 10 s, a
/// body within 10 s", and a keep-alive connection with nothing to do closes after the idle
/// timeout. So a request's head must be whole 10 s after its first byte, and its body 10 s
/// after its head; a connection with no request under way closes `idleTimeout` after its
/// last answer (or its opening); one whose requests are being answered has no deadline.
/// A request not whole by its deadline is refused, 408, as the decoder's refusals are (by
/// `MalformedRequests`, or by its responder while it reads the body): nginx and Apache
/// answer so, and a client then knows its request was not taken and may send it again.
/// What arrives from then on is dropped, and the connection closes after that answer, or
/// 10 s later if it cannot be sent. A client trickling bytes (slowloris) holds a connection
/// and its buffers 10 s at most, and 10 s more if it reads nothing either.
///
/// A timer scheduled and cancelled for every request would cost each request two updates
/// of the event loop's timer heap, as much as parsing it, and a second timer for the idle
/// timeout (Hummingbird's `HTTPConnectionStateHandler` kept one) cost every one of
/// thousands of connections its memory. So, as NIO's `IdleStateHandler` does, the
/// connection keeps one timer, armed when a deadline begins and none is armed; when it
/// fires it looks at the deadline then: past it closes the connection, a later one arms
/// the timer for it, and none leaves the timer unarmed. It is never armed further ahead
/// than a head's 10 s, so a head that starts while it is armed never needs it re-armed
/// sooner (an idle connection's timer fires every 10 s until its idle timeout).
///
/// Placed after the HTTP decoder, it sees a request's parts and its answer's; the head's
/// clock starts with bytes the decoder has not made a part of yet, which a companion
/// before the decoder sees.
///
/// Shutdown (the quiesce event) closes a connection with no request under way at once,
/// and one whose requests are being answered after its last answer, which says so
/// (`Connection: close`, RFC 9112, 9.6) when nothing else is read or arriving as it
/// starts; what arrives after it is dropped, as no request (the client was told). A request still
/// arriving has the rest of its 10 seconds, to 9 s after shutdown began for its head and
/// body together (`shutdownGrace`), and its answer: a head still
/// arriving makes its connection one with a request under way. A head whose first bytes
/// came in one read with the request before it (pipelined) is not seen arriving, for its
/// deadline nor for this: such a connection closes after the request before it.
final class ConnectionDeadlines: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let limit = TimeAmount.seconds(10)
    /// A request still arriving when shutdown begins must be whole within this of it, its
    /// head and its body together, so that serve exits within http.md's 10 s, answers and
    /// commits included (found by probing: a head trickled for 10 s, then its body for 10
    /// more, kept serve 20 s).
    static let shutdownGrace = TimeAmount.seconds(9)

    private let idleTimeout: TimeAmount
    private var timer: Scheduled<Void>?
    /// When the phase under way (a head, then a body) must end; nil when none is.
    private var phaseDeadline: NIODeadline?
    /// Requests whose head has come and whose answer has not ended.
    private var answering = 0
    /// Since when the connection has had nothing to do: no request arriving or answered.
    private var idleSince: NIODeadline = .distantFuture
    /// Shutdown has begun: the connection closes once it has nothing to do.
    private var closing = false
    /// When a request still arriving must be whole, once shutdown has begun.
    private var shutdownDeadline: NIODeadline = .distantFuture
    /// The last answer's end, written: a close drops what it has not sent.
    private var lastAnswer = LastAnswer()
    /// A request passed its deadline and was refused: the connection reads no more.
    private var timedOut = false
    /// At shutdown, an answer said `Connection: close`: the connection reads no more.
    private var saidClose = false
    /// What arrives is no request: dropped before the decoder (`RequestStart`).
    fileprivate var readsNoMore: Bool { timedOut || saidClose }

    init(idleTimeout: TimeAmount) {
        // A shorter one could pass while the timer is armed for a head's 10 s.
        precondition(idleTimeout >= ConnectionDeadlines.limit, "the idle timeout is at least a head's 10 s")
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        do {
            try context.pipeline.syncOperations.addHandler(RequestStart(deadlines: self), position: .first)
        } catch {
            context.close(promise: nil)
        }
        if context.channel.isActive { becomeIdle(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        becomeIdle(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            answering += 1
            startPhase(context)
        case .body:
            break
        case .end:
            phaseDeadline = nil
            // Answered before its body ended (on the head alone: a 401, a 413): only now
            // has the connection nothing to do.
            settle(context)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where closing && answering == 1 && phaseDeadline == nil && head.headerFields[.connection] == nil:
            // Shutdown, and this is the last answer: nothing read behind it, nothing arriving.
            head.headerFields[.connection] = "close"
            saidClose = true
            return context.write(wrapOutboundOut(.head(head)), promise: promise)
        // A refusal of what the decoder could not read ends an answer with no head before
        // it (`MalformedRequests`, which then closes the connection).
        case .end where answering > 0:
            break
        default:
            return context.write(data, promise: promise)
        }
        answering -= 1
        guard answering == 0 else { return context.write(data, promise: promise) }
        context.write(data, promise: lastAnswer.end(promise, on: context.eventLoop))
        settle(context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            closing = true
            shutdownDeadline = context.eventLoop.now + ConnectionDeadlines.shutdownGrace
            if let phase = phaseDeadline, phase > shutdownDeadline {
                phaseDeadline = shutdownDeadline
                // Armed for the phase's end, later than it now is.
                timer?.cancel()
                timer = nil
                arm(context)
            }
            settle(context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Once nothing is under way (no request arriving, none being answered): the idle
    /// clock starts, or, once shutdown has begun, the connection closes after its last
    /// answer has gone out.
    private func settle(_ context: ChannelHandlerContext) {
        guard answering == 0, phaseDeadline == nil else { return }
        guard closing else { return becomeIdle(context) }
        lastAnswer.close(context.channel)
    }

    fileprivate func bytesArrived(context: ChannelHandlerContext) {
        guard phaseDeadline == nil else { return }
        startPhase(context)
    }

    private func startPhase(_ context: ChannelHandlerContext) {
        phaseDeadline = min(context.eventLoop.now + ConnectionDeadlines.limit, shutdownDeadline)
        arm(context)
    }

    private func becomeIdle(_ context: ChannelHandlerContext) {
        idleSince = context.eventLoop.now
        arm(context)
    }

    /// The deadline under way: the phase's, the idle timeout's, or none while answering.
    private var deadline: NIODeadline? {
        if let phaseDeadline { return phaseDeadline }
        return answering > 0 ? nil : idleSince + idleTimeout
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard timer == nil, let deadline else { return }
        let wake = min(deadline, context.eventLoop.now + ConnectionDeadlines.limit)
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: wake) { [self] in
            timer = nil
            guard let deadline = self.deadline else { return }
            if deadline > context.eventLoop.now {
                arm(context)
            } else if phaseDeadline == nil || timedOut {
                context.close(promise: nil)
            } else {
                refuseLateRequest(context)
            }
        }
    }

    /// The request under way did not arrive whole in time: 408, and the refusal has one
    /// more phase's time to go out before the connection closes. The error goes to the
    /// handlers after this one, which answer what the decoder refuses.
    private func refuseLateRequest(_ context: ChannelHandlerContext) {
        timedOut = true
        // Its time cut short by the shutdown's, it is told so: "within 10 seconds" was
        // said of a request refused 3 s after its first byte (found by probing).
        let cutByShutdown = closing && phaseDeadline == shutdownDeadline
        startPhase(context)
        context.fireErrorCaught(cutByShutdown ? HTTPFailure.requestTimeoutAtShutdown : HTTPFailure.requestTimeout)
    }
}

/// Before the decoder: tells `ConnectionDeadlines` that bytes arrived.
private final class RequestStart: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let deadlines: ConnectionDeadlines

    init(deadlines: ConnectionDeadlines) {
        self.deadlines = deadlines
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a refusal for lateness, or a last answer that said close, nothing is a
        // request: the rest of a late head or body would be one, or a booking, behind it.
        guard !deadlines.readsNoMore else { return }
        // Line ends between requests are no request's bytes (RFC 9112, 2.2: a server
        // ignores them): they start no head's clock.
        if !unwrapInboundIn(data).readableBytesView.allSatisfy({ $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }) {
            deadlines.bytesArrived(context: context)
        }
        context.fireChannelRead(data)
    }
}
