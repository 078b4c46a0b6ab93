import NIOCore
import Synchronization

/// Connections open at once on some listeners: `--max-connections` across every buyer
/// listener, `AdminAPI.maximumConnections` on the admin's. One past the limit is closed as
/// soon as it opens (http.md), so that a flood of idle connections cannot take the memory
/// and descriptors the sale needs. Its handler, each connection's first, also sets what
/// every connection's receive buffer costs.
final class ConnectionLimit: Sendable {
    let maximum: Int
    private let open = Atomic<Int>(0)

    init(maximum: Int) {
        self.maximum = maximum
    }

    /// How a buyer connection's reads are buffered: NIO's adaptive sizes (doubling while
    /// reads fill the buffer), starting at 256 bytes instead of 2,048.
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 64 * 1024)

    /// A handler for one new connection.
    func handler() -> ConnectionLimitHandler {
        ConnectionLimitHandler(limit: self)
    }

    fileprivate func opened() -> Bool {
        open.add(1, ordering: .relaxed).newValue <= maximum
    }

    fileprivate func closed() {
        open.subtract(1, ordering: .relaxed)
    }
}

final class ConnectionLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let limit: ConnectionLimit
    private var counted = false

    fileprivate init(limit: ConnectionLimit) {
        self.limit = limit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // NIO reads a connection into one buffer it keeps until the connection closes,
        // 2 KiB at first and only ever grown: a booking's request is about 150 bytes, and
        // a larger one grows the buffer to what it needs. 1.8 KiB less per open connection.
        // (Set here, on the connection's first handler: Hummingbird has no child channel
        // options. A connection already closed keeps the default, which is harmless.)
        try? context.channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: ConnectionLimit.receiveBuffers)
        counted = true
        if !limit.opened() { context.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if counted { limit.closed() }
        counted = false
    }
}
