import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// What the HTTP decoder refuses (a broken request line or header, headers past its
/// limits, a broken chunk) is answered as every other error is, with HTTPFailure's status
/// and JSON body, and the connection closes: after bytes it cannot parse, the server
/// cannot know where the next request starts. Hummingbird's own answer would be a bare 400.
///
/// An error in the body of a request whose responder may still read it is the
/// responder's to answer. Any other waits for the answer being written, if one is, so
/// that it follows it whole. A refusal is counted and logged as the responder's answers
/// are, with route `none` (and method `-`: the request line may be what was broken).
final class MalformedRequests: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let metrics: HTTPMetrics
    private let accessLog: AccessLog

    init(metrics: HTTPMetrics, accessLog: AccessLog) {
        self.metrics = metrics
        self.accessLog = accessLog
    }

    /// A head has arrived whose answer has not ended.
    private var answering = false
    /// A head has arrived whose body has not ended.
    private var readingBody = false
    /// The refusal to send once the answer being written ends.
    private var refusal: HTTPFailure?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: (answering, readingBody) = (true, true)
        case .body: break
        case .end: readingBody = false
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        answering = false
        context.write(data, promise: promise)
        if let refusal {
            self.refusal = nil
            refuse(refusal, context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError || error is HTTPFailure, !(answering && readingBody) else {
            context.fireErrorCaught(error)
            return
        }
        if answering {
            refusal = HTTPFailure(error)
        } else {
            refuse(HTTPFailure(error), context: context)
        }
    }

    private func refuse(_ failure: HTTPFailure, context: ChannelHandlerContext) {
        metrics.started()
        metrics.record(route: "none", status: failure.status.code, seconds: 0)
        accessLog.record(method: "-", route: "none", status: failure.status.code, seconds: 0)
        let body = ByteBuffer(string: failure.body)
        var fields = failure.headers
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(body.readableBytes)
        fields[.connection] = "close"
        context.write(wrapOutboundOut(.head(HTTPResponse(status: failure.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.close(promise: nil)
    }
}
