import NIOCore
import NIOHTTPTypes

/// http.md: "a slow or idle client cannot hold resources". A client that stops reading
/// its answer (a frozen tab on its event stream) would otherwise hold its connection and
/// everything queued for it until it went away, and hold up SIGTERM too: shutdown waits
/// for every answer under way to end, and an answer's writes wait for the client. So, as
/// nginx's `send_timeout` does, a connection whose output stays above NIO's high-water
/// mark for 10 s closes, and once shutdown has begun, at once. The events a stream had
/// not sent, its client gets by resuming with `Last-Event-ID`.
///
/// The kernel's send buffer (up to 4 MiB by Debian's default) fills first, so only a
/// client that has read nothing for a long while is ever cut off. A stream's connection
/// is above its high-water mark as soon as anything waits in the server for the kernel
/// (`ChannelBodyWriter`), and for a moment while each write waits for its flush: so the
/// connection is looked at again once the loop has flushed, and only one still unable to
/// take more is stalled.
final class StalledClients: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    static let limit = TimeAmount.seconds(10)

    private var timer: Scheduled<Void>?
    private var shuttingDown = false

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            timer?.cancel()
            timer = nil
        } else {
            context.eventLoop.assumeIsolated().execute { [self] in stallIfStillUnwritable(context) }
        }
        context.fireChannelWritabilityChanged()
    }

    private func stallIfStillUnwritable(_ context: ChannelHandlerContext) {
        guard !context.channel.isWritable, context.channel.isActive else { return }
        if shuttingDown {
            context.close(promise: nil)
        } else if timer == nil {
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: StalledClients.limit) { [self] in
                timer = nil
                context.close(promise: nil)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            shuttingDown = true
            if !context.channel.isWritable { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }
}
