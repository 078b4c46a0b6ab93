import NIOCore

/// What a buyer's request knows of its connection: the peer's address, which the client
/// address and the per-IP limit start from, and the connection's end, which ends an event
/// stream.
struct ServeContext {
    let peer: SocketAddress?
    let connectionClosed: EventLoopFuture<Void>

    init(channel: any Channel) {
        peer = channel.remoteAddress
        connectionClosed = channel.closeFuture
    }
}
