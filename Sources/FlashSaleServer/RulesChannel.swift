import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypesHTTP1
import NIOPosix
import ServiceLifecycle

/// Hummingbird's HTTP/1.1 channel with `HTTP1Rules` put below its HTTP types, where the
/// request's version is still known: every listener of serve's.
struct RulesChannel: ServerChildChannel {
    let http1: HTTP1Channel

    /// A listener answering each request with `respond`'s response, whose connections also
    /// pass through `handlers` (after the HTTP types), idle ones closed after `idleTimeout`.
    /// Hummingbird's server without its `Application`: serve routes, logs and dates its
    /// answers itself (`HTTP1Rules` writes `Date`), and the application's per-request logger
    /// and context cost every request about 2% of serve's CPU, and every connection the
    /// frames they keep in its task.
    static func listener(_ configuration: ServerConfiguration, handlers: @escaping @Sendable () -> [any RemovableChannelHandler],
                         idleTimeout: TimeAmount, logger: Logger, onRunning: @escaping @Sendable (any Channel) async -> Void = { _ in },
                         respond: @escaping @Sendable (Request, any Channel) async -> Response) throws -> any Service {
        let builder = HTTPServerBuilder { responder in
            RulesChannel(http1: HTTP1Channel(responder: responder, configuration: .init(
                additionalChannelHandlers: handlers(), idleTimeout: idleTimeout)))
        }
        return try builder.buildServer(configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                                       logger: logger, responder: { request, writer, channel in
                                           let response = await respond(request, channel)
                                           try await writer.write(response: response.head, body: response.body)
                                       }, onServerRunning: onRunning)
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let types = try channel.pipeline.syncOperations.handler(type: HTTP1ToHTTPServerCodec.self)
            try channel.pipeline.syncOperations.addHandler(HTTP1Rules(), position: .before(types))
            return value
        }
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}
