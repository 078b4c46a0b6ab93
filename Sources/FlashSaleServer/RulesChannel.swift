import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import NIOPosix
import ServiceLifecycle

/// Every listener of serve's: Hummingbird's server (listening, and at shutdown the
/// quiescing of every connection) with serve's own HTTP/1.1 connections. Each has the
/// pipeline Hummingbird's HTTP1Channel builds, `HTTP1Rules` below the HTTP types, where
/// the request's version is still known, and `Responder` last, in place of HTTP1Channel's
/// async streams and task per connection. A listener stops once its server has and every
/// connection has ended (`OpenConnections`).
struct RulesChannel: ServerChildChannel {
    /// A connection's pipeline is all it needs: no task waits for it.
    struct Connection: ServerChildChannelValue {
        let channel: any Channel
    }

    let handlers: @Sendable (_ peer: SocketAddress?) -> [any RemovableChannelHandler]
    let idleTimeout: TimeAmount
    let respond: @Sendable (Request, ClientConnection) async -> Reply<Response, Answer>
    let connections: OpenConnections

    /// A listener answering each request with `respond`'s response, whose connections also
    /// pass through `handlers` (after the HTTP types, made for each connection's peer),
    /// idle ones closed after `idleTimeout` and stalled ones as `StalledClients` says.
    /// Hummingbird's server without its `Application`: serve routes, logs and dates its
    /// answers itself (`HTTP1Rules` writes `Date`), and the application's per-request logger
    /// and context cost every request about 2% of serve's CPU.
    /// Connections a listener accepts each time its socket is ready, where NIO's default
    /// is 4: a crowd that connects at once (1,000 connections, each sending at once) then
    /// waited in the kernel's queue, their first requests with it, while the connections
    /// accepted kept the event loop busy. That was wrk's p99 at 1,000 connections: 891 and
    /// 906 ms against 79 and 96 ms with 256 (bench/README.md); libuv (Node) accepts until
    /// the queue is empty.
    static let acceptsPerWake: UInt = 256

    static func listener(_ configuration: ServerConfiguration, handlers: @escaping @Sendable (_ peer: SocketAddress?) -> [any RemovableChannelHandler],
                         idleTimeout: TimeAmount, logger: Logger, onRunning: @escaping @Sendable (any Channel) async -> Void = { _ in },
                         respond: @escaping @Sendable (Request, ClientConnection) async -> Reply<Response, Answer>) -> any Service {
        let connections = OpenConnections()
        let server = RulesChannel(handlers: handlers, idleTimeout: idleTimeout, respond: respond, connections: connections).server(
            configuration: configuration,
            onServerRunning: { channel in
                try? await channel.setOption(ChannelOptions.maxMessagesPerRead, value: acceptsPerWake).get()
                await onRunning(channel)
            },
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
        return Draining(server: server, connections: connections)
    }

    /// The server, and then its connections: Hummingbird's server stops once it has
    /// stopped accepting (its connections' `handle` returns at once), while connections
    /// it has told to close still answer what they have read.
    private struct Draining: Service {
        let server: any Service
        let connections: OpenConnections

        func run() async throws {
            try await server.run()
            await connections.allEnded()
        }
    }

    /// Hummingbird's decoder limits (HTTP1Channel's defaults).
    private static var decoderLimits: NIOHTTPDecoderLimitConfiguration {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 80 * 1024
        limits.maxHeaderListSize = 80 * 1024
        limits.maxHeaderFieldCount = Limits.maximumHeaderFields
        return limits
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Connection> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            // Read once, as the connection is accepted (`ClientConnection`).
            let peer = channel.remoteAddress
            // Before the HTTP codec: it counts the answers' bytes.
            try pipeline.addHandler(StalledClients(logger: logger, peer: peer))
            // No pipelining assistance: `Responder` holds what comes behind an answer, after
            // `HTTP1Rules` and `MalformedRequests` have seen it arrive. No error handling:
            // `MalformedRequests` answers the decoder's refusals.
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: RulesChannel.decoderLimits)
            try pipeline.addHandler(HTTP1Rules())
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            // The request's clocks, the idle timeout, and shutdown's close of a connection
            // once its requests are answered.
            try pipeline.addHandler(ConnectionDeadlines(idleTimeout: idleTimeout))
            try pipeline.addHandlers(handlers(peer))
            let connection = ClientConnection(channel: channel, peer: peer)
            try pipeline.addHandler(Responder(respond: respond, connection: connection, connections: connections))
            return Connection(channel: channel)
        }
    }

    /// Nothing to wait for here: the pipeline answers, and the listener waits for the
    /// connection at shutdown (`Draining`).
    func handle(value: Connection, logger: Logger) async {}
}

/// A request's connection: its channel, and its peer's address as the connection was
/// accepted. NIO forgets the address once the connection closes: a request sent whole
/// and its connection reset at once was decided with no address, past its address's
/// block and per-IP limit (found by probing). One reset before serve accepted it has
/// none to begin with, and nothing sent on it is decided (`HTTPFailure.peerUnknown`).
struct ClientConnection: Sendable {
    let channel: any Channel
    let peer: SocketAddress?
}
