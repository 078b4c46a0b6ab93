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

    /// Connects, and sends `first` the moment the connection is made (see `SendOnConnect`).
    static func open(port: Int, sending first: String? = nil) async throws -> RawConnection {
        try await open(port: port, sendingBytes: first.map { Array($0.utf8) } ?? [])
    }

    /// The same, with bytes that need not be UTF-8.
    static func open(port: Int, sendingBytes first: [UInt8]) async throws -> RawConnection {
        let received = NIOLockedValueBox(ByteBuffer())
        let opening = first.isEmpty ? [] : [ByteBuffer(bytes: first)]
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(into: received))
                    try channel.pipeline.syncOperations.addHandler(SendOnConnect<ByteBuffer>(opening))
                }
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

/// Writes `parts`, in one flush, the moment the connection is made, on its event loop. Not
/// later from the test's task: with every test running at once, that task may wait many
/// seconds for a thread, and the server closes a connection that has sent nothing for 10 s
/// (http.md). One flush: a server that answers on a request's head alone (a 401, a 405) may
/// close the connection before a later write, which would then fail.
final class SendOnConnect<Part>: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Never
    typealias OutboundOut = Part
    private let parts: [Part]

    init(_ parts: [Part]) {
        self.parts = parts
    }

    func channelActive(context: ChannelHandlerContext) {
        for part in parts { context.write(wrapOutboundOut(part), promise: nil) }
        if !parts.isEmpty { context.flush() }
        context.fireChannelActive()
    }
}
