import Hummingbird
import NIOCore

/// Hummingbird's per-request context, with the peer's address, which the client address
/// and the per-IP limit start from.
struct ServeContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let peer: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peer = source.channel.remoteAddress
    }
}
