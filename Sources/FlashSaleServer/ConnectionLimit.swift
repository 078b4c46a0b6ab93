import NIOCore
import Synchronization

/// `--max-connections`: buyer connections open at once, across every buyer listener;
/// one past the limit is closed as soon as it opens (http.md), so that a flood of idle
/// connections cannot take the memory and descriptors the sale needs.
final class ConnectionLimit: Sendable {
    let maximum: Int
    private let open = Atomic<Int>(0)

    init(maximum: Int) {
        self.maximum = maximum
    }

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
        counted = true
        if !limit.opened() { context.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if counted { limit.closed() }
        counted = false
    }
}
