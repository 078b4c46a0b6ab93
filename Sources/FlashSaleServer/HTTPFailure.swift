import FlashSaleCLI
import FlashSaleCore
import FlashSaleEngine
import HTTPTypes
import NIOHTTP1

/// The one place where an error becomes an HTTP answer (http.md's error table): a status,
/// the command line's code and a message, as `{"error": {"code": ..., "message": ...}}`.
struct HTTPFailure: Error, Sendable {
    let status: HTTPResponse.Status
    let code: String
    let message: String
    /// `WWW-Authenticate`, `Allow`, `Retry-After`.
    var headers: HTTPFields = [:]
    /// The whole story of a failure the client is told less of (`message`): for the
    /// operator's log.
    let detail: String?

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:], detail: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.detail = detail
    }

    /// Any error of the engine, the store or the server, in HTTP's words.
    init(_ error: any Error) {
        switch error {
        case let failure as HTTPFailure:
            self = failure
        // Every decline is one: told without the casts of the command line's mapping, which
        // were 3% of a decline's instructions (callgrind).
        case let refusal as SaleError:
            self.init(refusal)
        // What the HTTP decoder refused: the request line, the headers or a chunked body.
        // Its overflow is of its bytes or of its fields' count, which it does not tell
        // apart (found by probing: 1,000 short fields were said to be too many bytes).
        case let malformed as HTTPParserError:
            self = malformed == .headerOverflow
                ? .badInput("the request line and headers are too long (headers: \(Limits.maximumHeaderBytes) bytes and "
                            + "\(Limits.maximumHeaderFields) fields at most)", status: .requestHeaderFieldsTooLarge)
                : .badInput("the request is not valid HTTP/1.1" + (HTTPFailure.words(for: malformed).map { ": " + $0 } ?? ""))
        default:
            self.init(ExitStatus.error(for: error), storeFailure: StoreFailure.of(error))
        }
    }

    /// A refusal of the engine's, in a buyer's words where the command line's are the
    /// operator's (`buyersWords`, `message`).
    private init(_ refusal: SaleError) {
        self.init(refusal.commandLineError, withheld: HTTPFailure.buyersWords(for: refusal), message: HTTPFailure.message(for: refusal))
    }

    /// `refusal`'s status and code. `withheld` is what the buyer is told in place of the
    /// command line's message, which the log gets; `message`, a buyer's words for it.
    private init(_ refusal: FlashSaleError, withheld: String? = nil, message: String? = nil, storeFailure: StoreFailure? = nil) {
        let status: HTTPResponse.Status = switch refusal.errorCode {
        case .notFound: .notFound
        case .conflict, .soldOut, .userLimit, .notOpen: .conflict
        case .holdExpired: .gone
        case .blocked: .forbidden
        case .usage, .badInput: .badRequest
        // A lock past the busy timeout, a full or failing disk, a database that cannot be
        // opened, a server stopping: the request did not happen, and may be retried; but
        // for a commit whose answer was lost with the connection (`commitUnanswered`).
        case .busy, .io, .cantOpen, .interrupted: .serviceUnavailable
        case .internalFailure, .invariant: .internalServerError
        }
        let code = switch refusal.errorCode {
        case .usage: ErrorCode.badInput.rawValue
        case .cantOpen: ErrorCode.io.rawValue
        // Not a code of the HTTP contract: a server stopping is busy to a buyer, who retries.
        case .interrupted: ErrorCode.busy.rawValue
        case let other: other.rawValue
        }
        var headers: HTTPFields = [:]
        if status == .serviceUnavailable { headers[.retryAfter] = "1" }
        let message = withheld ?? message ?? refusal.message
        // The server's own trouble is the operator's to read, in the log: its words name the
        // database's host, port, role and path, and give advice meant for the operator
        // (raise --busy-timeout).
        if case .commitUnanswered? = storeFailure {
            // Made or not, nobody can tell: a retry without the request's key may make it twice.
            self.init(status, code, "the database's answer to the commit was lost: the change may have been made; "
                      + "look at your bookings and requests before you retry, or retry with the same key",
                      headers: headers, detail: message)
        } else if code == ErrorCode.io.rawValue {
            self.init(status, code, "the database cannot be reached or written just now; retry", headers: headers, detail: message)
        } else if code == ErrorCode.busy.rawValue {
            self.init(status, code, "the database is busy just now; retry", headers: headers, detail: message)
        } else if status == .internalServerError {
            self.init(status, code, "the server failed to answer; its log says why", headers: headers, detail: message)
        } else {
            self.init(status, code, message, headers: headers, detail: withheld.map { _ in refusal.message })
        }
    }

    /// Bad input of the HTTP kind (405, 406, 408, 413, 415, 431 and plain 400), code `bad_input`.
    static func badInput(_ message: String, status: HTTPResponse.Status = .badRequest,
                         headers: HTTPFields = [:]) -> HTTPFailure {
        HTTPFailure(status, ErrorCode.badInput.rawValue, message, headers: headers)
    }

    /// A request whose head or body did not arrive within its 10 s (`ConnectionDeadlines`).
    static let requestTimeout = HTTPFailure.badInput(
        "the request did not arrive whole within \(ConnectionDeadlines.limit.nanoseconds / 1_000_000_000) seconds",
        status: .requestTimeout)

    /// One still arriving when the server stopped, at the shutdown's deadline.
    static let requestTimeoutAtShutdown = HTTPFailure.badInput(
        "the server is stopping, and the request did not arrive whole within "
            + "\(ConnectionDeadlines.shutdownGrace.nanoseconds / 1_000_000_000) seconds of the stop signal",
        status: .requestTimeout)

    /// A request whose connection the client reset before it was whole.
    static let connectionCut = clientGone("the client reset the connection before its request was whole")

    /// A request on a connection the client reset before serve accepted it: the kernel no
    /// longer has the peer's address, so nothing can judge it by its address (its blocks,
    /// its per-IP limit, whether it is a trusted proxy). Decided, a booking went past its
    /// address's block (found by probing).
    static let peerUnknown = clientGone("the client reset the connection before it was accepted: its address is unknown, "
                                        + "so nothing it sent is decided")

    /// A refusal of a client that has gone: said in the log too, since no one is left to
    /// read the answer.
    private static func clientGone(_ words: String) -> HTTPFailure {
        HTTPFailure(.badRequest, ErrorCode.badInput.rawValue, words, detail: words)
    }

    /// Its reason is the log's too: a rise of 401s is an issuer signing with another key,
    /// or a clock, and only the reason tells which (found by probing).
    static func unauthenticated(_ message: String) -> HTTPFailure {
        // RFC 6750: a request without credentials gets the bare challenge.
        HTTPFailure(.unauthorized, "unauthenticated", message, headers: [.wwwAuthenticate: "Bearer"], detail: message)
    }

    /// What the decoder found wrong, in words rather than its case names ("invalidURL",
    /// "paused (swift-http-parser error)"); nil where its name says nothing to a client.
    private static func words(for error: HTTPParserError) -> String? {
        switch error {
        // The decoder knows a fixed list of methods: a token outside it (BREW) is refused
        // as a malformed one is, before any route could answer 405.
        case .invalidMethod: "the method is malformed, or not one this server knows"
        case .invalidURL, .invalidPath, .invalidQueryString, .invalidFragment, .invalidHost, .invalidPort:
            "the request target is malformed"
        // Also what the decoder says of a request line ended by a bare LF (found by
        // probing: the version was blamed alone).
        case .invalidVersion: "the version is neither HTTP/1.0 nor HTTP/1.1, or the request line does not end in CR LF"
        case .invalidHeaderToken, .invalidCharactersUsed, .lfExpected: "a header field is malformed"
        case .invalidContentLength, .unexpectedContentLength:
            "Content-Length is malformed, or given with Transfer-Encoding"
        case .invalidChunkSize: "a chunk of the body is malformed"
        default: nil
        }
    }

    /// A buyer's words for a decline whose command-line words are the operator's business,
    /// which the log line gets instead (`detail`). A buyer told which substring of agents is
    /// blocked, or the operator's reason, learns how to get past it; one told its address's
    /// bookings and the attempts counted from its /64 learns the limit and the tally
    /// `suspects` ranks it by (found by probing), and what others behind its NAT do.
    private static func buyersWords(for refusal: SaleError) -> String? {
        guard case .declined(let decline) = refusal else { return nil }
        switch (decline.reason, decline.blocked) {
        case (.blocked, .block?): return "this request is blocked in sale \(decline.sale.id)"
        case (.blocked, .perIPLimit(_, let kind, _, _)?):
            return "this \(kind == .network ? "address's /64" : "address") is at the per-IP limit of sale \(decline.sale.id)"
        case (.notOpen, _) where decline.state == .paused: return "sale \(decline.sale.id) is paused"
        default: return nil
        }
    }

    /// The command line's messages name commands and options; these are a buyer's.
    private static func message(for refusal: SaleError) -> String? {
        switch refusal {
        case .saleNotFound(let sale): "no sale \(sale)"
        case .bookingNotFound(let booking, let sale, _): "no booking \(Quoted(booking.text)) of yours in sale \(sale)"
        case .requestNotFound(let request): "no request \(request) of yours"
        case .bookingConfirmed(let booking): "booking \(booking) is confirmed and cannot be cancelled"
        case .keyUsedByAnotherUser(let key, let sale): "key \(Quoted(key)) was already used by another user in sale \(sale)"
        default: nil
        }
    }

    /// Written out as bytes rather than built as a `JSON` value: every decline is answered
    /// with one, and the value's arrays and their serializing were about 3% of a decline's
    /// instructions (callgrind).
    var body: String {
        var body = UTF8Text()
        body.append("{\"error\":{\"code\":")
        body.appendQuoted(code)
        body.append(",\"message\":")
        body.appendQuoted(message)
        body.append("}}")
        return String(decoding: body.bytes, as: UTF8.self)
    }
}
