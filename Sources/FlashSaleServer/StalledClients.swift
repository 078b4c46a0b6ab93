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
/// client that has read nothing for a long while is ever cut off. A connection is above
/// its high-water mark as soon as anything waits in the server for the kernel (the mark
/// is one byte), and for a moment while each write waits for its flush: so the connection
/// is looked at again once the loop has flushed, and only one still unable to take more
/// is stalled. Under NIO's default mark (64 KiB) what waited made nothing stall: a client
/// that pipelined requests for pages and read none held its connection, and SIGTERM, for
/// as long as it stayed, whenever less than 64 KiB of its answers was left unsent
/// (found by probing; a stream's connection, the same before its mark was lowered).
final class StalledClients: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    static let limit = TimeAmount.seconds(10)

    /// Unwritable while anything waits in the server for the kernel to take it.
    static let waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 1, high: 1)

    private var timer: Scheduled<Void>?
    private var shuttingDown = false

    func handlerAdded(context: ChannelHandlerContext) {
        try? context.channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark, value: StalledClients.waterMark)
    }

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
