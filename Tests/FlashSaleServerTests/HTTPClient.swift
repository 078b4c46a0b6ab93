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
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(to: address) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
            head.headers.add(name: "Host", value: host)
            head.headers.add(name: "Connection", value: "close")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            if let body { head.headers.replaceOrAdd(name: "Content-Length", value: String(body.utf8.count)) }
            // One write: a server that answers on the head alone (a 401, a 405) may close the
            // connection before a later write of the end, which would then fail.
            var parts: [HTTPClientRequestPart] = [.head(head)]
            if let body { parts.append(.body(.byteBuffer(ByteBuffer(string: body)))) }
            try await outbound.write(contentsOf: parts + [.end(nil)])
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
