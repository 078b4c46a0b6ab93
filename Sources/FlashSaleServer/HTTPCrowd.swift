import FlashSaleCLI
import FlashSaleCore
import FoundationEssentials
import Glibc
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// `rehearse --via http`'s client: SwiftNIO's HTTP/1.1 client codec over keep-alive
/// connections to the `serve` the rehearsal started, each connection sending its next
/// request once the last is answered, as a crowd of browsers does.
package enum HTTPCrowd {
    package static let exchange: HTTPExchange = { port, calls, connections, watch in
        let state = ExchangeState(calls: calls)
        guard calls.count > 0 else { return [] }
        let connections = min(connections, calls.count)
        try checkOpenFiles(for: connections)
        let group = MultiThreadedEventLoopGroup.singleton
        for _ in 0..<connections {
            ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(CallSender(state: state, port: port))
                    }
                }
                .connect(host: "127.0.0.1", port: port)
                .whenFailure { state.fail($0) }
        }
        while let answered = state.waitForProgress(milliseconds: 100) {
            watch(answered)
        }
        return try state.results()
    }
}

extension HTTPCrowd {
    /// Each connection is a descriptor here and one in serve, which keeps its reserve
    /// beside its buyers' (`OpenFilesLimit`, the same limit as this process's). Under a
    /// lower limit the crowd's connections failed, or serve closed those past its own,
    /// and the rehearsal ended as a bug, exit 1 (found by probing).
    static func checkOpenFiles(for connections: Int) throws {
        let limit = OpenFilesLimit.raise()
        let needed = OpenFilesLimit.reserve + UInt64(connections)
        guard limit >= needed else {
            throw FlashSaleError.io("the open files limit (\(limit)) leaves too few descriptors for the rehearsal's \(connections) "
                                    + "connections to serve, beside the \(OpenFilesLimit.reserve) serve keeps: raise it to \(needed) "
                                    + "or more (ulimit -Hn)")
        }
    }
}

/// The calls, who takes which next, and the answers; shared by every connection.
private final class ExchangeState: @unchecked Sendable {
    let calls: HTTPCalls
    private let lock = ConditionLock(value: 0)
    private var next = 0
    private var answers: [HTTPCallResult?]
    private var answered = 0
    private var failure: (any Error)?

    init(calls: HTTPCalls) {
        self.calls = calls
        answers = Array(repeating: nil, count: calls.count)
    }

    /// The index of the next call to send, nil when none is left (or the exchange failed).
    func take() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard failure == nil, next < calls.count else { return nil }
        next += 1
        return next - 1
    }

    func answer(_ index: Int, _ result: HTTPCallResult) {
        lock.lock()
        answers[index] = result
        answered += 1
        lock.unlock(withValue: answered == calls.count || failure != nil ? 1 : 0)
    }

    func fail(_ error: any Error) {
        lock.lock()
        if failure == nil { failure = error }
        lock.unlock(withValue: 1)
    }

    /// The count answered, after at most `milliseconds`; nil once everything is answered or failed.
    func waitForProgress(milliseconds: Int) -> Int? {
        // Held only when it returns true.
        if lock.lock(whenValue: 1, timeoutSeconds: Double(milliseconds) / 1000) {
            lock.unlock()
            return nil
        }
        lock.lock()
        defer { lock.unlock() }
        return answered
    }

    func results() throws -> [HTTPCallResult] {
        lock.lock()
        defer { lock.unlock() }
        if let failure { throw failure }
        return answers.compactMap { $0 }
    }
}

/// One connection: sends a call, reads its answer to the end, sends the next.
private final class CallSender: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let state: ExchangeState
    private let host: String
    private var current: (index: Int, sent: NIODeadline, status: Int)?
    /// A 5xx answer's body, for the rehearsal's message.
    private var failureBody = ByteBuffer()

    init(state: ExchangeState, port: Int) {
        self.state = state
        host = "127.0.0.1:\(port)"
    }

    func channelActive(context: ChannelHandlerContext) {
        sendNext(context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            current?.status = Int(head.status.code)
        case .body(var part):
            if let status = current?.status, status >= 500, failureBody.readableBytes < 4096 { failureBody.writeBuffer(&part) }
        case .end:
            if let done = current {
                let seconds = Double((NIODeadline.now() - done.sent).nanoseconds) / 1e9
                let failure = failureBody.readableBytes > 0
                    ? (try? JSONDecoder().decode(ErrorBody.self, from: Data(failureBody.readableBytesView))).map { ($0.error.code, $0.error.message) }
                    : nil
                state.answer(done.index, HTTPCallResult(status: done.status, seconds: seconds, failure: failure))
            }
            failureBody.clear()
            current = nil
            sendNext(context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if current != nil { state.fail(ClosedEarly()) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        state.fail(error)
        context.close(promise: nil)
    }

    private func sendNext(context: ChannelHandlerContext) {
        guard let index = state.take() else {
            context.close(promise: nil)
            return
        }
        let call = state.calls[index]
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: call.method), uri: call.path)
        head.headers.add(name: "Host", value: host)
        for (name, value) in call.headers { head.headers.add(name: name, value: value) }
        head.headers.add(name: "Content-Length", value: String(call.body?.utf8.count ?? 0))
        current = (index, .now(), 0)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body = call.body {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private struct ClosedEarly: Error, CustomStringConvertible {
        var description: String { "serve closed a connection before it answered" }
    }
}

/// http.md's error body.
private struct ErrorBody: Decodable {
    struct Detail: Decodable {
        let code: String
        let message: String
    }

    let error: Detail
}
