import NIOCore
import NIOHTTP1

/// HTTP/1's rules that need the request's version, which Hummingbird's HTTP types do not
/// carry: this handler sits below them (`RulesChannel`).
///
/// - `Expect: 100-continue` (HTTP/1.1) is answered with `100 Continue` (RFC 9110, 10.1.1)
///   as soon as the answers before it are whole: a client that asks waits for it, a
///   second with curl, before sending its body. (Written into an answer still being
///   sent, it would cut it, and end the chunking of a live stream.) Not for a body past
///   the limit, which is refused (413) without being read.
/// - An HTTP/1.0 request is answered in HTTP/1.0 (no chunked body, which it cannot read),
///   and its connection closed after the answer, keep-alive or not: Hummingbird kept it
///   open, and a client reading to the end waited for the 60 s idle timeout.
/// - A request that would take the connection over (`CONNECT`, `Upgrade`), which serve
///   does not do, is answered and its connection closed: its bytes after the head are no
///   HTTP the decoder will read, and the connection went silent until the idle timeout.
/// - The answer to a request whose connection closes after it says so (`Connection:
///   close`, RFC 9112, 9.6), as Hummingbird's did not.
/// - Every answer's `Date` is the second it is written in (`HTTPDate`).
/// - A connection whose client closes its side while an event stream is being sent to it
///   is closed: the client has left (a stream is never its request's last word, and half
///   closing after a request is for answers that end), and the stream, which writes only
///   when an event or a heartbeat comes, held the connection and its place under
///   `--max-connections` up to 15 s. Other answers still go to a half-closed client.
/// - A request without exactly one well-formed `Host` (none is allowed in HTTP/1.0), or an
///   HTTP/1.0 one with `Transfer-Encoding`, is 400 (RFC 9112, 3.2 and 6.1); an HTTP/1.0
///   POST or PUT without `Content-Length`, or DELETE or PATCH with a `Content-Type` and
///   none, is 411 (RFC 1945, 7.2.2 and 8.3: the decoder reads no body there, and a key in
///   it was lost, so a retry held twice: found by probing; HTTP/1.1 reads no body as none,
///   RFC 9112, 6.3); and one with a transfer coding other than `chunked` is 501 (6.1),
///   through
///   `MalformedRequests` as the decoder's refusals are; that closes the connection, so
///   nothing read after it is passed on. An answer given without reading a body past the
///   limit closes the connection too: the body's bytes would be read as the next request.
final class HTTP1Rules: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private struct Unanswered {
        let version: HTTPVersion
        let closes: Bool
        /// `100 Continue` is owed once the answers before it are whole.
        var owesContinue: Bool
    }

    /// The requests passed on whose answers have not begun, in order. (Mostly one: an
    /// array, which allocates nothing until a request comes, on each of thousands of open
    /// connections.)
    private var unanswered: [Unanswered] = []
    /// An answer has begun and not ended.
    private var answering = false
    /// The answer being written is an event stream.
    private var streamingEvents = false
    /// The client has closed its side: a stream that starts after that is closed at once,
    /// as one under way is (found by probing: a client that half-closed with its request
    /// held its stream open, through its heartbeats).
    private var inputClosed = false
    /// The last request passed on closes the connection after its answer.
    private var lastCloses = false
    /// The connection ends with what was passed on (a refusal, or a request that closes
    /// it): nothing more is. A request passed on after a closing one would be counted in
    /// progress by `ConnectionDeadlines`, which would then never time the connection out.
    private var passingNothing = false
    /// The version of a request refused here, never passed on: its refusal is its answer.
    private var refusedVersion: HTTPVersion?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !passingNothing else { return }
        // Unwrapped once: each unwrap is a dynamic cast (about 240 instructions).
        let part = unwrapInboundIn(data)
        guard case .head(var head) = part else {
            if case .end = part, lastCloses { passingNothing = true }
            context.fireChannelRead(data)
            return
        }
        if let refusal = HTTP1Rules.refusal(of: head) {
            passingNothing = true
            refusedVersion = head.version
            context.fireErrorCaught(refusal)
            return
        }
        // A body past the limit is refused unread, so its bytes are no next request.
        let readsBody = head.headers["content-length"].first.flatMap(Int.init).map { $0 <= RequestBody.maximumBytes } ?? true
        let closes = head.version == .http1_0 || head.method == .CONNECT || head.headers.contains(name: "upgrade") || !readsBody
            || head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "close" }
        if closes {
            // What `Responder` reads to close the connection once it has answered.
            head.headers.replaceOrAdd(name: "Connection", value: "close")
        }
        let expectsContinue = head.version == .http1_1 && readsBody
            && head.headers[canonicalForm: "expect"].contains { $0.lowercased() == "100-continue" }
        lastCloses = closes
        unanswered.append(Unanswered(version: head.version, closes: closes, owesContinue: expectsContinue))
        sendOwedContinue(context: context)
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed? = event as? ChannelEvent {
            inputClosed = true
            if streamingEvents { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            // A refusal of a request never passed on (MalformedRequests) has no entry, and
            // says its own close; it is in HTTP/1.0 if that request was.
            if !unanswered.isEmpty {
                let request = unanswered.removeFirst()
                if request.version == .http1_0 { head.version = .http1_0 }
                if request.closes { head.headers.replaceOrAdd(name: "Connection", value: "close") }
            } else if refusedVersion == .http1_0 {
                head.version = .http1_0
            }
            head.headers.replaceOrAdd(name: "Date", value: HTTPDate.now())
            answering = true
            streamingEvents = head.headers.first(name: "content-type") == "text/event-stream"
            context.write(wrapOutboundOut(.head(head)), promise: promise)
            if streamingEvents, inputClosed {
                // Its head first, which a close would drop unsent (found by probing: the
                // client got no answer at all).
                context.flush()
                context.close(promise: nil)
            }
        case .body:
            context.write(data, promise: promise)
        case .end:
            answering = false
            streamingEvents = false
            context.write(data, promise: promise)
            sendOwedContinue(context: context)
        }
    }

    /// Why a head is refused, or nil: RFC 9112 asks one Host (3.2, none at all in HTTP/1.0),
    /// which is a host and port, not a list or words; and no Transfer-Encoding from
    /// HTTP/1.0, which has none (6.1): 400. A transfer coding other than `chunked` alone,
    /// which NIO's decoder reads as chunked whatever comes before it, is one serve does
    /// not understand: 501 (6.1), before its body is read as something it is not.
    private static func refusal(of head: HTTPRequestHead) -> HTTPFailure? {
        let hosts = head.headers["host"]
        if hosts.count > 1 || (hosts.isEmpty && head.version == .http1_1) {
            return .badInput("a request needs exactly one Host header")
        }
        if let host = hosts.first, !HostHeader.isHostAndPort(host) {
            return .badInput("the Host header is not a host and port")
        }
        // Most requests have none: looked for before its values are split into a list.
        if head.headers.contains(name: "transfer-encoding") {
            if head.version == .http1_0 {
                return .badInput("an HTTP/1.0 request has no Transfer-Encoding")
            }
            if head.headers[canonicalForm: "transfer-encoding"].map({ $0.lowercased() }) != ["chunked"] {
                return .badInput("the only transfer coding serve reads is chunked", status: .notImplemented)
            }
            return nil
        }
        // HTTP/1.0 asks a length of every POST (and PUT); a DELETE's body is optional, and
        // one is announced by its type.
        if head.version == .http1_0, !head.headers.contains(name: "content-length"),
           [.POST, .PUT].contains(head.method)
            || ([.DELETE, .PATCH].contains(head.method) && head.headers.contains(name: "content-type")) {
            return .badInput("an HTTP/1.0 request's body needs a Content-Length", status: .lengthRequired)
        }
        return nil
    }

    /// `100 Continue` for the next request, if it asked and no answer is being written.
    private func sendOwedContinue(context: ChannelHandlerContext) {
        guard !answering, unanswered.first?.owesContinue == true else { return }
        unanswered[0].owesContinue = false
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
    }
}
