import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// An answer, as a client sees it.
struct HTTPAnswer: Sendable {
    let status: Int
    let headers: HTTPHeaders
    let body: String

    subscript(header name: String) -> String? { headers.first(name: name) }
}

/// The tests' HTTP client: SwiftNIO's HTTP/1.1 client codec over a real connection to
/// 127.0.0.1 (or a Unix socket), one connection per request (`Connection: close`).
enum HTTPClient {
    struct ClosedEarly: Error {}

    static func send(_ method: HTTPMethod, _ path: String, port: Int, headers: [(String, String)] = [],
                     body: String? = nil) async throws -> HTTPAnswer {
        try await send(method, path, to: SocketAddress(ipAddress: "127.0.0.1", port: port), host: "127.0.0.1:\(port)",
                       headers: headers, body: body)
    }

    /// The same, to a server's Unix socket.
    static func send(_ method: HTTPMethod, _ path: String, unixSocket: String, headers: [(String, String)] = [],
                     body: String? = nil) async throws -> HTTPAnswer {
        try await send(method, path, to: SocketAddress(unixDomainSocketPath: unixSocket), host: "localhost",
                       headers: headers, body: body)
    }

    private static func send(_ method: HTTPMethod, _ path: String, to address: SocketAddress, host: String,
                             headers: [(String, String)], body: String?) async throws -> HTTPAnswer {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: host)
        head.headers.add(name: "Connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body { head.headers.replaceOrAdd(name: "Content-Length", value: String(body.utf8.count)) }
        var parts: [HTTPClientRequestPart] = [.head(head)]
        if let body { parts.append(.body(.byteBuffer(ByteBuffer(string: body)))) }
        parts.append(.end(nil))
        let request = parts
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(SendOnConnect<HTTPClientRequestPart>(request))
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, _ in
            var status = 0
            var responseHeaders = HTTPHeaders()
            var bytes = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let head):
                    status = Int(head.status.code)
                    responseHeaders = head.headers
                case .body(var chunk):
                    bytes.writeBuffer(&chunk)
                case .end:
                    return HTTPAnswer(status: status, headers: responseHeaders, body: String(buffer: bytes))
                }
            }
            throw ClosedEarly()
        }
    }
}

/// An answer whose body is still arriving (server-sent events): its head at once, then the
/// body's parts as the server writes them, each with the moment it arrived. The parts are
/// collected on the event loop, so their times do not depend on when a test task runs.
final class StreamingAnswer: @unchecked Sendable {
    let status: Int
    let headers: HTTPHeaders
    private let channel: any Channel
    private let collector: StreamCollector

    fileprivate init(head: HTTPResponseHead, channel: any Channel, collector: StreamCollector) {
        status = Int(head.status.code)
        headers = head.headers
        self.channel = channel
        self.collector = collector
    }

    /// The body so far, each part with its arrival time.
    var parts: [(text: String, at: ContinuousClock.Instant)] { collector.parts }
    /// The body so far.
    var body: String { parts.map(\.text).joined() }
    /// Whether the body has ended (or the connection closed).
    var ended: Bool { collector.ended }
    /// Whether the connection is still open.
    var isConnected: Bool { channel.isActive }

    /// Waits until `condition` holds of the answer, or `limit` has passed: whether it held.
    func wait(within limit: Duration = .seconds(5), until condition: (StreamingAnswer) -> Bool) async -> Bool {
        await eventually(within: limit, every: .milliseconds(1)) { condition(self) }
    }

    /// Drops the connection, as a client that goes away does.
    func close() {
        channel.close(promise: nil)
    }
}

/// Collects one answer's parts on the event loop.
private final class StreamCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let head: EventLoopPromise<HTTPResponseHead>
    private let lock = NIOLock()
    private var collected: [(text: String, at: ContinuousClock.Instant)] = []
    private var done = false

    init(head: EventLoopPromise<HTTPResponseHead>) {
        self.head = head
    }

    var parts: [(text: String, at: ContinuousClock.Instant)] { lock.withLock { collected } }
    var ended: Bool { lock.withLock { done } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let response): head.succeed(response)
        case .body(let chunk):
            let now = ContinuousClock.now
            lock.withLock { collected.append((String(buffer: chunk), now)) }
        case .end: lock.withLock { done = true }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        lock.withLock { done = true }
        head.fail(HTTPClient.ClosedEarly())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        head.fail(error)
        context.close(promise: nil)
    }
}

extension HTTPClient {
    /// Sends a request and returns once the answer's head has arrived; its body goes on
    /// arriving in the answer's `parts` until the server ends it or `close()`.
    static func stream(_ method: HTTPMethod, _ path: String, port: Int,
                       headers: [(String, String)] = []) async throws -> StreamingAnswer {
        try await streamFuture(method, path, port: port, headers: headers).get()
    }

    /// `stream`, on futures: for callers that must not wait on Swift's cooperative threads
    /// (a test that blocks one, as ServedDatabase.start does, must not need another).
    static func streamFuture(_ method: HTTPMethod, _ path: String, port: Int,
                             headers: [(String, String)] = []) -> EventLoopFuture<StreamingAnswer> {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let head = loop.makePromise(of: HTTPResponseHead.self)
        let collector = StreamCollector(head: head)
        return ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .flatMapErrorThrowing { error in
                head.fail(error)
                throw error
            }
            .flatMap { channel in
                var request = HTTPRequestHead(version: .http1_1, method: method, uri: path)
                request.headers.add(name: "Host", value: "127.0.0.1:\(port)")
                for (name, value) in headers { request.headers.add(name: name, value: value) }
                channel.write(HTTPClientRequestPart.head(request), promise: nil)
                return channel.writeAndFlush(HTTPClientRequestPart.end(nil))
                    .flatMap { head.futureResult }
                    .map { StreamingAnswer(head: $0, channel: channel, collector: collector) }
            }
    }
}

/// A blocking TCP connection to 127.0.0.1 whose receive buffer a test sets: a reader too
/// slow for what the server sends (`RawConnection` reads whatever arrives).
final class BlockingConnection {
    /// -1 once `reset`.
    private var descriptor: Int32

    /// `receiveBuffer`: the kernel's buffer for what the server sends, in bytes (set before
    /// connecting, so that the window the server sees is small too).
    init(port: Int, receiveBuffer: Int32? = nil) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        if var size = receiveBuffer {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        // Thrown with every property set: deinit closes the descriptor.
        guard connected else { throw IOError(errnoCode: errno, reason: "connect") }
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Closes the connection with a reset (RST) rather than a FIN, as a client whose kernel
    /// drops it with data unread, or a load balancer cutting it, does.
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(descriptor)
        descriptor = -1
    }

    func write(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard send(descriptor, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { throw IOError(errnoCode: errno, reason: "send") }
    }

    /// The connection's port on this side.
    var localPort: Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Everything the server sends until it closes the connection, or what it has sent
    /// once it ends with `suffix`, or what it has sent once `seconds` have passed.
    func readToEnd(within seconds: Int, orThrough suffix: String? = nil) -> String {
        // A deadline for the whole read, not for each recv: a stream that never ends sends a
        // heartbeat every 15 s, and a read that waited 20 s for each piece waited for ever.
        let deadline = ContinuousClock.now + .seconds(seconds)
        let end = suffix.map { Array($0.utf8) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while end.map({ !received.ends(with: $0) }) ?? true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { break }
            var timeout = timeval(tv_sec: Int(left.components.seconds),
                                  tv_usec: max(1, Int(left.components.attoseconds / 1_000_000_000_000)))
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let count = recv(descriptor, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            received += buffer[..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }
}

extension Array where Element: Equatable {
    func ends(with suffix: [Element]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}
