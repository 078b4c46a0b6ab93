import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// What the HTTP decoder refuses (a broken request line or header, headers past its
/// limits, a broken chunk), and what `HTTP1Rules` refuses, is answered as every other
/// error is, with HTTPFailure's status and JSON body, and the connection closes: after
/// bytes it cannot parse, the server cannot know where the next request starts.
/// Hummingbird's own answer was a bare 400.
///
/// The refusal is the answer to the bytes after the requests passed on, so it waits until
/// each of those is answered whole: sent after the first, it took a later request's place
/// (a committed booking read as 400) or went into a live stream. An error in the body of
/// the last request is that request's: its responder's to answer while it may still read
/// the body (`Responder` closes the connection after that answer), and once it has
/// answered, the connection just closes (one request, one answer). Bytes after a request
/// that closes the connection (HTTP/1.0, `Connection: close`) are no request, and get no
/// answer. A refusal is counted and logged as the responder's answers are (on a buyer
/// listener), with route `none` (and method `-`: the request line may be what was
/// broken); that of a head the client cut short by resetting the connection too, though
/// it cannot be sent, as for a body cut short (`HTTPFailure.connectionCut`).
final class MalformedRequests: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Where a buyer listener's refusals are counted and logged; nil elsewhere.
    private let recorder: (metrics: HTTPMetrics, accessLog: AccessLog)?

    /// The peer's address, read as the connection was accepted (`ClientConnection`): a
    /// refusal of a request cut short by a reset was logged without it (found by probing).
    private let peer: SocketAddress?

    init(recorder: (metrics: HTTPMetrics, accessLog: AccessLog)?, peer: SocketAddress?) {
        self.recorder = recorder
        self.peer = peer
    }

    /// Requests passed on whose answers have not ended.
    private var unanswered = 0
    /// The last request passed on: its body has not ended.
    private var readingBody = false
    /// A request passed on, or an answer, closes the connection after that answer.
    private var closing = false
    /// The refusal to send once every request passed on is answered.
    private var refusal: HTTPFailure?
    /// The last answer's end, written: closing before it is sent would cut that answer.
    private var lastAnswer = LastAnswer()
    /// The server closes the connection (`StalledClients`): a head cut short by that is no
    /// client's reset, and not logged as one (found by probing: at shutdown, now and then).
    private var closedByServer = false

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is StalledClients.Closing { closedByServer = true }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            unanswered += 1
            readingBody = true
            // HTTP1Rules has said `close` for every request that closes the connection.
            if head.headerFields[.connection]?.lowercased() == "close" { closing = true }
        case .body:
            break
        case .end:
            readingBody = false
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            // An answer that closes the connection itself is its last: the bytes after its
            // request are no request either (found by testing: a body sent without a length
            // was answered 400 after the answer that refused it).
            if head.headerFields.value(.connection) == "close" { closing = true }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            unanswered = max(0, unanswered - 1)
            context.write(data, promise: lastAnswer.end(promise, on: context.eventLoop))
            if unanswered == 0, let refusal {
                self.refusal = nil
                if !closing { refuse(refusal, context: context) }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError || error is HTTPFailure else {
            context.fireErrorCaught(error)
            return
        }
        if readingBody {
            // Answers end in order, so while any is owed, the last request's is.
            if unanswered > 0 {
                context.fireErrorCaught(error)
            } else {
                closeAfterWrites(context)
            }
        } else if closing {
            if unanswered == 0 { closeAfterWrites(context) }
        } else if unanswered > 0 {
            refusal = refusal ?? HTTPFailure(error)
        } else {
            refuse(HTTPFailure(error), context: context)
        }
    }

    private func refuse(_ refusal: HTTPFailure, context: ChannelHandlerContext) {
        // Found by probing: a reset before the head was whole was neither logged nor
        // counted, where a FIN, or a reset during the body, is a 400.
        // Whatever the decoder says after this is about the same bytes.
        closing = true
        let gone = !context.channel.isActive
        if gone && closedByServer { return }
        let failure = gone ? HTTPFailure.connectionCut : refusal
        if let (metrics, accessLog) = recorder {
            metrics.started()
            metrics.record(route: "none", status: failure.status.code, seconds: 0)
            accessLog.record(method: "-", route: "none", status: failure.status.code, seconds: 0,
                             from: .peer(ClientAddress.peer(peer)),
                             problem: failure.detail)
        }
        guard !gone else { return }
        var answer = Answer.failure(failure)
        answer.head.headerFields[.connection] = "close"
        context.write(wrapOutboundOut(.head(answer.head)), promise: nil)
        context.write(wrapOutboundOut(.body(answer.body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: lastAnswer.end(nil, on: context.eventLoop))
        closeAfterWrites(context)
    }

    /// Closes once the last answer is sent, or at once if none is pending.
    private func closeAfterWrites(_ context: ChannelHandlerContext) {
        context.flush()
        lastAnswer.close(context.channel)
    }
}
