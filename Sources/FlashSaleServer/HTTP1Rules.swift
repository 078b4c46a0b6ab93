import NIOCore
import NIOHTTP1

/// HTTP/1's rules that need the request's version, which Hummingbird's HTTP types do not
/// carry: this handler sits below them (`BuyerChannel`).
///
/// - `Expect: 100-continue` (HTTP/1.1) is answered at once with `100 Continue` (RFC 9110,
///   10.1.1): a client that asks waits for it, a second with curl, before sending its body.
/// - An HTTP/1.0 request is answered in HTTP/1.0 (no chunked body, which it cannot read),
///   and its connection closed after the answer, which HTTP/1.0 expects unless asked to
///   keep it; Hummingbird kept it open, and a client reading to the end waited 60 s.
/// - A request that would take the connection over (`CONNECT`, `Upgrade`), which serve
///   does not do, is answered and its connection closed: its bytes after the head are no
///   HTTP the decoder will read, and the connection went silent until the idle timeout.
/// - The answer to a request whose connection closes after it says so (`Connection:
///   close`, RFC 9112, 9.6), as Hummingbird's did not.
/// - An HTTP/1.1 request without `Host` is 400 (RFC 9112, 3.2: "MUST"), through
///   `MalformedRequests` as the decoder's refusals are.
final class HTTP1Rules: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// For each request passed on and not yet answered, in order: its version, and whether
    /// its connection closes after the answer.
    /// (Mostly one: an array, which allocates nothing while empty, on each of thousands of
    /// open connections.)
    private var unanswered: [(version: HTTPVersion, closes: Bool)] = []
    /// The body of a refused request, dropped until the next head.
    private var dropping = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else {
            if !dropping { context.fireChannelRead(data) }
            return
        }
        dropping = false
        if head.version == .http1_1, !head.headers.contains(name: "host") {
            dropping = true
            context.fireErrorCaught(HTTPFailure.badInput("an HTTP/1.1 request needs a Host header"))
            return
        }
        let closes = head.version == .http1_0 || head.method == .CONNECT || head.headers.contains(name: "upgrade")
            || head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "close" }
        if closes {
            // What Hummingbird reads to close the connection once it has answered.
            head.headers.replaceOrAdd(name: "Connection", value: "close")
        }
        if head.version == .http1_1, head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
        }
        unanswered.append((head.version, closes))
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .head(var head) = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        // A refusal of a request never passed on (MalformedRequests) has no entry, and says
        // its own close.
        if !unanswered.isEmpty {
            let request = unanswered.removeFirst()
            if request.version == .http1_0 { head.version = .http1_0 }
            if request.closes { head.headers.replaceOrAdd(name: "Connection", value: "close") }
        }
        context.write(wrapOutboundOut(.head(head)), promise: promise)
    }
}
