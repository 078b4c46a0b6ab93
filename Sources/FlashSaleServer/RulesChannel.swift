import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import NIOPosix
import ServiceLifecycle

/// Every listener of serve's: Hummingbird's server (its graceful shutdown, which waits for
/// every connection to close) with serve's own HTTP/1.1 connections. Each has the pipeline
/// Hummingbird's HTTP1Channel builds, `HTTP1Rules` below the HTTP types, where the
/// request's version is still known, and `Responder` last, in place of HTTP1Channel's
/// async streams and task per connection.
struct RulesChannel: ServerChildChannel {
    /// A connection's pipeline is all it needs; its task only waits for its end.
    struct Connection: ServerChildChannelValue {
        let channel: any Channel
        let responder: NIOLoopBound<Responder>
    }

    let handlers: @Sendable () -> [any RemovableChannelHandler]
    let idleTimeout: TimeAmount
    let respond: @Sendable (Request, any Channel) async -> Response

    /// A listener answering each request with `respond`'s response, whose connections also
    /// pass through `handlers` (after the HTTP types), idle ones closed after `idleTimeout`.
    /// Hummingbird's server without its `Application`: serve routes, logs and dates its
    /// answers itself (`HTTP1Rules` writes `Date`), and the application's per-request logger
    /// and context cost every request about 2% of serve's CPU.
    static func listener(_ configuration: ServerConfiguration, handlers: @escaping @Sendable () -> [any RemovableChannelHandler],
                         idleTimeout: TimeAmount, logger: Logger, onRunning: @escaping @Sendable (any Channel) async -> Void = { _ in },
                         respond: @escaping @Sendable (Request, any Channel) async -> Response) -> any Service {
        RulesChannel(handlers: handlers, idleTimeout: idleTimeout, respond: respond).server(
            configuration: configuration, onServerRunning: onRunning, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger)
    }

    /// Hummingbird's decoder limits (HTTP1Channel's defaults).
    private static var decoderLimits: NIOHTTPDecoderLimitConfiguration {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 80 * 1024
        limits.maxHeaderListSize = 80 * 1024
        limits.maxHeaderFieldCount = 1000
        return limits
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Connection> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            // No pipelining assistance: `Responder` holds what comes behind an answer, after
            // `HTTP1Rules` and `MalformedRequests` have seen it arrive. No error handling:
            // `MalformedRequests` answers the decoder's refusals.
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: RulesChannel.decoderLimits)
            try pipeline.addHandler(HTTP1Rules())
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandlers(handlers())
            // The idle timeout, and shutdown's close of a connection once its requests are answered.
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: Duration(idleTimeout), logger: logger))
            let responder = Responder(respond: respond, loop: channel.eventLoop)
            try pipeline.addHandler(responder)
            return Connection(channel: channel, responder: NIOLoopBound(responder, eventLoop: channel.eventLoop))
        }
    }

    /// Waits for the connection to close, and its last request's task to end: the server's
    /// graceful shutdown waits for these. Cancelled, its client's side is closed, and it
    /// closes once what was read is answered.
    func handle(value: Connection, logger: Logger) async {
        await withTaskCancellationHandler {
            let loop = value.channel.eventLoop
            try? await value.channel.closeFuture.get()
            try? await loop.flatSubmit { value.responder.value.whenIdle(on: loop) }.get()
        } onCancel: {
            value.channel.close(mode: .input, promise: nil)
        }
    }
}
