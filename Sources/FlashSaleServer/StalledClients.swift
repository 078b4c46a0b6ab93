import Glibc
import Logging
import NIOCore

/// http.md: "a slow or idle client cannot hold resources". A client that stops reading
/// its answer (a frozen tab on its event stream) would otherwise hold its connection and
/// everything queued for it until it went away, and hold up SIGTERM too: shutdown waits
/// for every answer under way to end, and an answer's writes wait for the client. So, as
/// nginx's `send_timeout` does, a connection whose output waits and whose client takes
/// none of it for 10 s closes; once shutdown has begun, after 1 s of taking none, and 9 s
/// after shutdown began at the latest (`ConnectionDeadlines.shutdownGrace`), so that serve
/// exits within http.md's 10 s. The events a stream had not sent, its client gets by
/// resuming with `Last-Event-ID`.
///
/// Waiting output is whatever waits in the server for the kernel: the connection's
/// high-water mark is one byte. It is looked at again once the loop has flushed (a write
/// waits for its flush a moment), and only one still unable to take more is stalled; under
/// NIO's default mark (64 KiB) a client that pipelined requests for pages and read none
/// held its connection, and SIGTERM, whenever less than 64 KiB of its answers was left
/// unsent (found by probing). Whether the client took any is whether the kernel has taken
/// more since last looked: every byte written, less those waiting, which is why this is
/// before the connection's HTTP codec, where the answers are bytes. A client reading a large
/// answer (or many pipelined ones) slowly but steadily was cut 10 s in, however steadily
/// it read, and at once at shutdown, answers already logged 200 lost (found by probing).
/// For the kernel to take some as the client reads, it holds at most `unsentBytes` unsent:
/// with its whole send buffer (up to 4 MiB) it could take more only once a third of that
/// was free. Each such close is logged, with the peer and why, as nginx logs its
/// `send_timeout`'s: a client whose answers never arrived whole is the server's doing, and
/// the operator must be able to see it.
final class StalledClients: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData

    /// Told to the handlers after it as it closes a stalled connection: a request the
    /// decoder had begun is no client's reset then (`MalformedRequests`).
    struct Closing {}

    static let limit = TimeAmount.seconds(10)
    /// Once shutdown has begun.
    static let shutdownLimit = TimeAmount.seconds(1)

    /// Unwritable while anything waits in the server for the kernel to take it.
    static let waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 1, high: 1)
    /// TCP_NOTSENT_LOWAT (a Unix socket's connection has no such option, and keeps its own,
    /// smaller, buffer).
    static let unsentBytes: SocketOptionValue = 64 * 1024

    private let logger: Logger
    /// The peer's address, for the log (`ClientConnection`); nil for a Unix socket's peer,
    /// and for one reset before it was accepted. Put in words only for a close: every
    /// connection has one, and few stall.
    private let peer: SocketAddress?
    private var timer: Scheduled<Void>?
    /// Every byte written to the connection.
    private var written = 0
    /// What the kernel had taken when last looked at.
    private var takenWhenLooked = 0
    /// Once shutdown has begun: when a connection still sending must have ended.
    private var shutdownDeadline: NIODeadline?

    init(logger: Logger, peer: SocketAddress?) {
        self.logger = logger
        self.peer = peer
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let options = context.channel.syncOptions
        try? options?.setOption(ChannelOptions.writeBufferWaterMark, value: StalledClients.waterMark)
        try? options?.setOption(ChannelOptions.tcpOption(.init(rawValue: TCP_NOTSENT_LOWAT)), value: StalledClients.unsentBytes)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        written += unwrapOutboundIn(data).readableBytes
        context.write(data, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            timer?.cancel()
            timer = nil
        } else {
            context.eventLoop.assumeIsolated().execute { [self] in watchIfStillUnwritable(context) }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, shutdownDeadline == nil {
            shutdownDeadline = context.eventLoop.now + ConnectionDeadlines.shutdownGrace
            // Looked at again sooner.
            timer?.cancel()
            timer = nil
            watchIfStillUnwritable(context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func watchIfStillUnwritable(_ context: ChannelHandlerContext) {
        guard timer == nil, !context.channel.isWritable, context.channel.isActive else { return }
        takenWhenLooked = taken(context)
        arm(context)
    }

    /// The next look: after the limit, or at the shutdown's deadline if that comes first.
    private func arm(_ context: ChannelHandlerContext) {
        let now = context.eventLoop.now
        let next = shutdownDeadline.map { min(now + StalledClients.shutdownLimit, $0) } ?? now + StalledClients.limit
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: next) { [self] in
            timer = nil
            look(context)
        }
    }

    private func look(_ context: ChannelHandlerContext) {
        guard !context.channel.isWritable, context.channel.isActive else { return }
        let taken = taken(context)
        let pastDeadline = shutdownDeadline.map { context.eventLoop.now >= $0 } ?? false
        if taken > takenWhenLooked, !pastDeadline {
            takenWhenLooked = taken
            arm(context)
        } else {
            var metadata: Logger.Metadata = ["reason": .string(reason(pastDeadline: pastDeadline))]
            if let peer = ClientAddress.peer(peer) { metadata["peer"] = .string(peer) }
            logger.notice("closed a stalled client's connection", metadata: metadata)
            context.fireUserInboundEventTriggered(Closing())
            context.close(promise: nil)
        }
    }

    /// Why the connection closes, for the log.
    private func reason(pastDeadline: Bool) -> String {
        func seconds(_ amount: TimeAmount) -> Int64 { amount.nanoseconds / 1_000_000_000 }
        if pastDeadline { return "its answers were still waiting \(seconds(ConnectionDeadlines.shutdownGrace)) s after the stop signal" }
        guard shutdownDeadline != nil else { return "it took none of its answers for \(seconds(StalledClients.limit)) s" }
        return "it took none of its answers for \(seconds(StalledClients.shutdownLimit)) s after the stop signal"
    }

    /// The bytes written that the kernel has taken: all but those waiting in the server.
    private func taken(_ context: ChannelHandlerContext) -> Int {
        written - ((try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0)
    }
}
