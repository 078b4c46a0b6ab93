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
    /// When the connection opened and when it closed, as its event loop saw them.
    private let lifespan: NIOLockedValueBox<Lifespan>

    /// Connects, and sends `first` the moment the connection is made (see `SendOnConnect`).
    static func open(port: Int, sending first: String? = nil) async throws -> RawConnection {
        try await open(port: port, sendingBytes: first.map { Array($0.utf8) } ?? [])
    }

    /// The same, with bytes that need not be UTF-8.
    static func open(port: Int, sendingBytes first: [UInt8]) async throws -> RawConnection {
        try await open(port: port, script: first.isEmpty ? [] : [Timed(after: .zero, first)])
    }

    /// Connects, and sends each part of `script` at its time after the connection opened,
    /// timed on the connection's event loop (see `Scripted`).
    static func open(port: Int, script: [Timed]) async throws -> RawConnection {
        let received = NIOLockedValueBox(ByteBuffer())
        let lifespan = NIOLockedValueBox(Lifespan())
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(into: received))
                    try channel.pipeline.syncOperations.addHandler(Scripted(script, lifespan: lifespan))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, received: received, lifespan: lifespan)
    }

    private init(channel: any Channel, received: NIOLockedValueBox<ByteBuffer>, lifespan: NIOLockedValueBox<Lifespan>) {
        self.channel = channel
        self.received = received
        self.lifespan = lifespan
    }

    deinit {
        channel.close(promise: nil)
    }

    /// Waits (10 s at most) until the server's process has read everything sent so far:
    /// the kernel's queues of the connection, in /proc/net/tcp, hold none of it, neither
    /// unacknowledged on this side nor unread on the server's. Its event loop then handles
    /// the bytes before any task queued after, a shutdown's among them.
    func serverHasReadAll() async -> Bool {
        guard let port = channel.localAddress?.port, let serverPort = channel.remoteAddress?.port else { return false }
        return await eventually(within: .seconds(10), every: .milliseconds(2)) {
            KernelSocket(local: port, remote: serverPort)?.sent == 0 && KernelSocket(local: serverPort, remote: port)?.unread == 0
        }
    }

    /// Sends `text`'s bytes; throws once the server has closed the connection.
    func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    /// Closes the connection from the client's side, as a client that goes away does.
    func close() async throws {
        try await channel.close()
    }

    /// Closes the client's side for writing only (a FIN), reading on.
    func closeOutput() async throws {
        try await channel.close(mode: .output)
    }

    /// What the server has sent so far, as text (invalid UTF-8 repaired).
    var answer: String {
        received.withLockedValue { String(buffer: $0) }
    }

    var isOpen: Bool { channel.isActive }

    /// Waits until the server closes the connection, at most `limit`; whether it did.
    /// Decided on the connection's event loop: a test task kept waiting for a thread still
    /// sees a close that came in time.
    func closed(within limit: Duration) async -> Bool {
        await lifetime(within: limit) != nil
    }

    /// Waits until the server closes the connection, at most `limit`; how long it was open,
    /// from its opening to its close, as its event loop saw them (nil: still open).
    func lifetime(within limit: Duration) async -> Duration? {
        let loop = channel.eventLoop
        let ended = loop.makePromise(of: Void.self)
        channel.closeFuture.cascade(to: ended)
        let timeout = loop.scheduleTask(in: TimeAmount(limit)) {
            ended.fail(ChannelError.ioOnClosedChannel)
        }
        let closed = (try? await ended.futureResult.get()) != nil
        timeout.cancel()
        let span = lifespan.withLockedValue { $0 }
        guard closed, let start = span.opened, let end = span.closed else { return nil }
        return Duration(end - start)
    }

    /// Waits until the answer contains `text` `times` times, at most `limit`; whether it did.
    func answer(contains text: String, times: Int = 1, within limit: Duration) async -> Bool {
        await eventually(within: limit, every: .milliseconds(20)) { answer.components(separatedBy: text).count > times }
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
        _ = received.withLockedValue { $0.writeBuffer(&bytes) }
    }
}

/// When a connection opened and closed, recorded by its pipeline as it happened: not by
/// a callback the test's task registers, which may run many seconds after the close.
private struct Lifespan {
    var opened: NIODeadline?
    var closed: NIODeadline?
}

/// Bytes a scripted connection sends `after` its opening.
struct Timed: Sendable {
    let after: Duration
    let bytes: [UInt8]
    /// The client closes its side (a FIN) after the bytes due with it.
    private(set) var closesOutput = false

    init(after: Duration, _ bytes: [UInt8]) {
        self.after = after
        self.bytes = bytes
    }

    init(after: Duration, _ text: String) {
        self.init(after: after, Array(text.utf8))
    }

    static func closingOutput(after: Duration) -> Timed {
        var part = Timed(after: after, [])
        part.closesOutput = true
        return part
    }
}

/// Sends a script's parts at their times after the connection opened, each scheduled on its
/// event loop. Not from the test's task: with every test running at once, that task may wait
/// many seconds for a thread, and the server closes a connection that has sent nothing for
/// 10 s (http.md); a test timing the server's clocks would time its own wait. Parts due at
/// the same time go in one flush: a server that answers on a request's head alone (a 401, a
/// 405) may close the connection before a later write, which would then fail.
private final class Scripted: ChannelInboundHandler, Sendable {
    typealias InboundIn = Never
    private let script: [Timed]
    private let lifespan: NIOLockedValueBox<Lifespan>

    init(_ script: [Timed], lifespan: NIOLockedValueBox<Lifespan>) {
        self.script = script
        self.lifespan = lifespan
    }

    func channelInactive(context: ChannelHandlerContext) {
        lifespan.withLockedValue { $0.closed = .now() }
        context.fireChannelInactive()
    }

    func channelActive(context: ChannelHandlerContext) {
        let start = NIODeadline.now()
        lifespan.withLockedValue { $0.opened = start }
        let channel = context.channel
        let pending = Dictionary(grouping: script, by: \.after).map { after, parts in
            context.eventLoop.scheduleTask(deadline: start + TimeAmount(after)) {
                guard channel.isActive else { return }
                for part in parts where !part.closesOutput { channel.write(ByteBuffer(bytes: part.bytes), promise: nil) }
                channel.flush()
                if parts.contains(where: \.closesOutput) { channel.close(mode: .output, promise: nil) }
            }
        }
        channel.closeFuture.whenComplete { _ in pending.forEach { $0.cancel() } }
        context.fireChannelActive()
    }
}

/// Writes `parts`, in one flush, the moment the connection is made, on its event loop (see
/// `Scripted` for why).
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

/// One end of a TCP connection on 127.0.0.1 as the kernel has it (/proc/net/tcp); nil when
/// it has none.
struct KernelSocket {
    /// Still established (not closed or closing by either side).
    let established: Bool
    /// Bytes unsent or unacknowledged.
    let sent: Int
    /// Bytes received and not read.
    let unread: Int

    init?(local: Int, remote: Int) {
        func endpoint(_ port: Int) -> String { "0100007F:" + String(format: "%04X", port) }
        // Read to its end: a /proc file says it is empty, which a read by size believes.
        let table = String(decoding: (try? FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/net/tcp")).readToEnd()) ?? Data(),
                           as: UTF8.self)
        // `sl local rem st tx_queue:rx_queue ...`, st 01 being ESTABLISHED.
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[1] == endpoint(local), fields[2] == endpoint(remote) else { continue }
            let counts = fields[4].split(separator: ":").compactMap { Int($0, radix: 16) }
            guard counts.count == 2 else { return nil }
            (established, sent, unread) = (fields[3] == "01", counts[0], counts[1])
            return
        }
        return nil
    }
}
