import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1.1 channel with `HTTP1Rules` put below its HTTP types, where the
/// request's version is still known: every listener of serve's.
struct RulesChannel: ServerChildChannel {
    let http1: HTTP1Channel

    /// A server of `responder` whose connections also pass through `handlers` (after the
    /// HTTP types), idle connections closed after `idleTimeout`.
    static func server(handlers: @escaping @Sendable () -> [any RemovableChannelHandler], idleTimeout: TimeAmount) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            RulesChannel(http1: HTTP1Channel(responder: responder, configuration: .init(
                additionalChannelHandlers: handlers(), idleTimeout: idleTimeout)))
        }
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
