import NIOCore

/// What a buyer's request knows of its connection: the peer's address, which the client
/// address and the per-IP limit start from, the connection's end, which ends an event
/// stream, and its event loop, where a change's answer comes (`Reply`).
struct ServeContext {
    let peer: SocketAddress?
    let connectionClosed: EventLoopFuture<Void>
    let eventLoop: any EventLoop

    init(channel: any Channel) {
        peer = channel.remoteAddress
        connectionClosed = channel.closeFuture
        eventLoop = channel.eventLoop
    }
}
