import Hummingbird
import NIOCore

/// Hummingbird's per-request context, with the peer's address, which the client address
/// and the per-IP limit start from, and the connection's end, which ends an event stream.
struct ServeContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let peer: SocketAddress?
    let connectionClosed: EventLoopFuture<Void>

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peer = source.channel.remoteAddress
        connectionClosed = source.channel.closeFuture
    }
}
