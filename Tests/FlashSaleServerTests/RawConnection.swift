import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP connection to 127.0.0.1 that sends exactly the bytes a test gives it, when it
/// gives them: what no well-behaved client sends (broken request lines, trickled headers).
/// Everything the server answers is kept; the server closing the connection is seen.
final class RawConnection: Sendable {
    private let channel: any Channel
    private let received: NIOLockedValueBox<ByteBuffer>

    static func open(port: Int) async throws -> RawConnection {
        let received = NIOLockedValueBox(ByteBuffer())
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(into: received)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, received: received)
    }

    private init(channel: any Channel, received: NIOLockedValueBox<ByteBuffer>) {
        self.channel = channel
        self.received = received
    }

    deinit {
        channel.close(promise: nil)
    }

    /// Sends `text`'s bytes; throws once the server has closed the connection.
    func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// What the server has sent so far, as text (invalid UTF-8 repaired).
    var answer: String {
        received.withLockedValue { String(buffer: $0) }
    }

    var isOpen: Bool { channel.isActive }

    /// Waits until the server closes the connection, at most `limit`; whether it did.
    func closed(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while channel.isActive, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return !channel.isActive
    }

    /// Waits until the answer contains `text` `times` times, at most `limit`; whether it did.
    func answer(contains text: String, times: Int = 1, within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        func seen() -> Bool { answer.components(separatedBy: text).count > times }
        while !seen(), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return seen()
    }
}

private final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let received: NIOLockedValueBox<ByteBuffer>

    init(into received: NIOLockedValueBox<ByteBuffer>) {
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.withLockedValue { $0.writeBuffer(&bytes) }
    }
}
