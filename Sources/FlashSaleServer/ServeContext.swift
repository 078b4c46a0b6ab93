import HTTPTypes
import NIOCore

/// What a buyer's request knows of its connection: the client's address (`ClientAddress`),
/// which blocks and the per-IP limit see and the access log names, the connection's end, which
/// ends an event stream, and its event loop, where a change's answer comes (`Reply`).
struct ServeContext {
    /// nil when nothing names an address (a Unix socket peer without `X-Forwarded-For`).
    let client: String?
    /// The connection has a peer address, as every connection has but one reset before it
    /// was accepted (`HTTPFailure.peerUnknown`).
    let peerIsKnown: Bool
    let connectionClosed: EventLoopFuture<Void>
    let eventLoop: any EventLoop

    init(connection: ClientConnection, headers: HTTPFields, clientAddress: ClientAddress) {
        client = clientAddress.address(peer: connection.peer, headers: headers)
        peerIsKnown = connection.peer != nil
        connectionClosed = connection.channel.closeFuture
        eventLoop = connection.channel.eventLoop
    }
}
