import FlashSaleCLI
import FlashSaleCore
import FlashSaleEngine
import HTTPTypes
import HummingbirdCore
import NIOCore

/// The buyer endpoints of http.md: parsing and rendering only. Every decision is the
/// engine's, through the committer (changes) or the readers (reads). Checks run in the
/// contract's order: route and method, then credentials, then the body, then the decision.
///
/// A change's answer is a future (`Reply`): no task waits for a commit. A request's task
/// keeps, until it ends, the memory its deepest async frames took (the task allocator
/// reuses its slabs, never frees them). So each route that reads is an async function of
/// its own that only waits (`@inline(never)`: inlined, every route's state would sit in
/// one frame), and its answer is rendered by a synchronous function (`@inline(never)`:
/// inlined, its temporaries would sit in the frame too), whose values live on the
/// thread's stack while it runs.
struct BuyerAPI: Sendable {
    let authenticator: Authenticator
    let clientAddress: ClientAddress
    let committer: Committer
    let readers: Readers
    let events: EventFeed
    /// nil: every sale.
    let sales: Set<SaleID>?
    let clock: @Sendable () -> Instant

    /// The matched route (nil when none matched), and the answer with what the log should
    /// say of a failure the answer tells the client less of (`HTTPFailure.detail`).
    func answer(_ request: Request, context: ServeContext) async -> (BuyerRoute?, Reply<(Response, problem: String?), (Answer, problem: String?)>) {
        var matched: BuyerRoute?
        do {
            guard context.peerIsKnown else { throw HTTPFailure.peerUnknown }
            try Limits.checkHeaders(request.headers)
            let (route, parameters) = try BuyerAPI.route(request.head)
            matched = route
            switch try await answer(route, parameters, request, context: context) {
            case .now(let response):
                return (route, .now((response, nil)))
            case .later(let answer):
                return (route, .later(answer))
            }
        } catch {
            let (answer, problem) = BuyerAPI.failure(error)
            return (matched, .now((answer.response, problem)))
        }
    }

    private static func failure(_ error: any Error) -> (Answer, problem: String?) {
        let failure = HTTPFailure(error)
        return (Answer.failure(failure), failure.detail)
    }

    /// A change's answer once its outcome has come: `render`'s, or its failure's.
    private static func answered<Outcome>(_ outcome: Result<Outcome, any Error>,
                                          _ render: (Outcome) throws -> Answer) -> (Answer, problem: String?) {
        do {
            return (try render(outcome.get()), nil)
        } catch {
            return failure(error)
        }
    }

    /// The route's answer: its checks here, its work in a function of its own.
    private func answer(_ route: BuyerRoute, _ parameters: [String], _ request: Request,
                        context: ServeContext) async throws -> Reply<Response, (Answer, problem: String?)> {
        try Limits.checkAccept(request.headers, for: route)
        guard route.needsUser else { return .now(try await publicSale(sale(parameters[0])).response) }
        let user: UserID
        // How long the credentials hold: a gateway's header, as long as the connection.
        var credentialsHoldFor: Duration?
        if let fromHeader = try authenticator.userFromHeader(request.headers) {
            user = fromHeader
        } else {
            (user, credentialsHoldFor) = try await authenticator.userFromToken(request.headers)
        }
        var body: RequestBody?
        if let field = route.bodyField { body = try await RequestBody.read(request, reading: field) }
        let loop = context.eventLoop
        switch route {
        case .book:
            return try .later(committer.book(bookingRequest(parameters[0], user, body, request, context: context), on: loop)
                .map { BuyerAPI.answered($0, BuyerAPI.answer) })
        case .confirm:
            try body?.requireStatus("booked", optional: false)
            return try .later(committer.confirm(BookingID(path: parameters[1]), in: sale(parameters[0]), user: user, on: loop)
                .map { BuyerAPI.answered($0, BuyerAPI.answer) })
        case .cancel:
            try body?.requireStatus("deleted", optional: true)
            return try .later(committer.cancel(BookingID(path: parameters[1]), in: sale(parameters[0]), user: user, on: loop)
                .map { BuyerAPI.answered($0, BuyerAPI.answer) })
        case .booking:
            return .now(try await booking(BookingID(path: parameters[1]), in: sale(parameters[0]), of: user).response)
        case .bookings:
            let page = try BookingsPageQuery(request.uri.queryParameters)
            return .now(try await bookings(in: sale(parameters[0]), of: user, page).response)
        case .submit:
            return try .now(await submit(bookingRequest(parameters[0], user, body, request, context: context), on: loop).response)
        case .request:
            // What the command line would not take as an id names no request of the user's: 404, as http.md has it.
            guard let id = RequestID(parsing: parameters[0]) else {
                throw HTTPFailure(.notFound, ErrorCode.notFound.rawValue, "no request \(Quoted(parameters[0])) of yours")
            }
            return .now(try await queuedRequest(id, of: user).response)
        case .events:
            if request.method == .head { return .now(try await events.head(lastEventID: request.headers[EventFeed.lastEventID])) }
            return .now(try await events.stream(for: user, lastEventID: request.headers[EventFeed.lastEventID],
                                                endingAfter: credentialsHoldFor, on: loop, connectionClosed: context.connectionClosed))
        case .sale:
            return .now(try await publicSale(sale(parameters[0])).response)
        }
    }

    @inline(never)
    private func booking(_ id: BookingID, in sale: SaleID, of user: UserID) async throws -> Answer {
        let booking = try await readers.read { [clock] engine in try engine.booking(id, in: sale, clock: clock()) }
        guard booking.user == user else { throw SaleError.bookingNotFound(id, sale: sale, user: user) }
        return BuyerAPI.answer(booking)
    }

    /// A page of the user's bookings, made whole on the reader's thread. The whole list of
    /// a history thousands long, megabytes of JSON made on the event loop, held up every
    /// connection that loop serves, the admin listener's too, for seconds (found by
    /// probing: 50 requests for it, their clients gone); a page bounds each request's work.
    @inline(never)
    private func bookings(in sale: SaleID, of user: UserID, _ query: BookingsPageQuery) async throws -> Answer {
        try await readers.read { [clock] engine in
            BuyerAPI.answer(try engine.bookingPage(of: sale, user: user, after: query.after, limit: query.limit, clock: clock()),
                            of: sale, query)
        }
    }

    /// The queued request is read for its answer once its group has committed: its task
    /// waits for the commit (the queue's path, which a web tier uses far less than booking).
    @inline(never)
    private func submit(_ request: BookingRequest, on loop: any EventLoop) async throws -> Answer {
        let submitted = try await committer.submit(request, on: loop).value.get()
        return try await BuyerAPI.answer(submitted, readers.read { engine in try engine.request(submitted.id) })
    }

    @inline(never)
    private func queuedRequest(_ id: FlashSaleCore.RequestID, of user: UserID) async throws -> Answer {
        let queued = try await readers.read { engine in try engine.request(id) }
        guard queued.user == user, sales?.contains(queued.sale) ?? true else { throw SaleError.requestNotFound(id) }
        return BuyerAPI.answer(queued)
    }

    @inline(never)
    private static func answer(_ outcome: BookingOutcome) throws -> Answer {
        switch outcome {
        case .held(let booking):
            return Answer.json(.created, .object(Render.bookingFields(booking)), location: BuyerAPI.location(of: booking))
        case .repeated(let booking):
            return Answer.json(.ok, .object(Render.bookingFields(booking)), location: BuyerAPI.location(of: booking))
        case .declined(let decline):
            throw SaleError.declined(decline)
        case .refused(let refusal):
            throw refusal
        }
    }

    @inline(never)
    private static func answer(_ booking: Booking) -> Answer {
        Answer.json(.ok, .object(Render.bookingFields(booking)))
    }

    /// The page as an array; when more follow, `Link` names the next page (RFC 8288), as
    /// GitHub's lists do.
    @inline(never)
    private static func answer(_ page: BookingPage, of sale: SaleID, _ query: BookingsPageQuery) -> Answer {
        var answer = Answer.json(.ok, .array(page.bookings.map { .object(Render.bookingFields($0)) }))
        if page.more, let last = page.bookings.last {
            let next = "/booking-service/book-item/\(sale.text)?after=\(last.id.text.percentEncodedSegment)&limit=\(query.limit)"
            answer.head.headerFields[BookingsPageQuery.link] = "<\(next)>; rel=\"next\""
        }
        return answer
    }

    @inline(never)
    private static func answer(_ submitted: Engine.SubmitOutcome, _ queued: QueuedRequest) -> Answer {
        let status: HTTPResponse.Status = if case .queued = submitted { .accepted } else { .ok }
        return Answer.json(status, .object(Render.requestFields(queued)), location: "/booking-service/requests/\(queued.id)")
    }

    @inline(never)
    private static func answer(_ queued: QueuedRequest) -> Answer {
        Answer.json(.ok, .object(Render.requestFields(queued)))
    }

    @inline(never)
    private func bookingRequest(_ sale: String, _ user: UserID, _ body: RequestBody?, _ request: Request,
                                context: ServeContext) throws -> BookingRequest {
        let agent: String?
        // Read as one, two fields would be one agent "a, b", which a block of agent "a"
        // does not match: a bot would pass its block by sending a second.
        let agents = request.headers[values: .userAgent]
        guard agents.count <= 1 else { throw HTTPFailure.badInput("more than one User-Agent header") }
        do {
            guard let text = Limits.text(agents.first ?? "") else {
                throw HTTPFailure.badInput("User-Agent: not valid UTF-8 \(Limits.replacementNote)")
            }
            agent = try TextField.userAgent.validate(text, required: false)
        } catch let error as FlashSaleError {
            throw HTTPFailure.badInput("User-Agent: \(error.message)")
        }
        return BookingRequest(sale: try self.sale(sale), user: user,
                              ip: context.client,
                              userAgent: agent, key: try body?.checkedKey())
    }

    @inline(never)
    private func publicSale(_ sale: SaleID) async throws -> Answer {
        try await BuyerAPI.answer(readers.read { [clock] engine in try engine.status(sale, clock: clock()) })
    }

    @inline(never)
    private static func answer(_ status: SaleStatus) -> Answer {
        let fields: [(String, JSON)] = [
            ("id", .string(status.sale.id.text)), ("name", .string(status.sale.name)), ("state", .string(status.state.rawValue)),
            ("available", .integer(status.sale.counters.available)), ("starts_at", .time(status.sale.startsAt)),
            ("ends_at", .time(status.sale.endsAt)),
        ]
        var answer = Answer.json(.ok, .object(fields))
        answer.head.headerFields[.cacheControl] = "public, max-age=1"
        return answer
    }

    /// A sale this server serves: an invalid id is 400, one it does not serve 404.
    private func sale(_ text: String) throws -> SaleID {
        let id: SaleID
        do {
            id = try SaleID(text)
        } catch {
            throw HTTPFailure.badInput(error.message)
        }
        guard sales?.contains(id) ?? true else { throw SaleError.saleNotFound(id) }
        return id
    }

    static func location(of booking: Booking) -> String {
        "/booking-service/book-item/\(booking.sale.text)/\(booking.id.text.percentEncodedSegment)"
    }

    /// The route a request's path and method name, with its `{...}` segments decoded:
    /// 404 when no pattern matches the path, 405 (with `Allow`) when one does but not for
    /// this method.
    static func route(_ head: HTTPRequest) throws -> (BuyerRoute, [String]) {
        // Read as bytes in the path's one buffer: `?` and `/` are ASCII. Split by
        // Characters, it ran grapheme breaking over every path (routing was 4% of serve's
        // CPU on declines); split into Substrings of its UTF8View, it still took 4% of a
        // decline's instructions (callgrind). A segment is a range of the path's bytes.
        var target = head.path ?? ""
        let (segments, candidates) = target.withUTF8 { path -> ([Range<Int>], [BuyerRoute.Pattern]) in
            let end = path.firstIndex(of: UInt8(ascii: "?")) ?? path.count
            guard end > 0, path[0] == UInt8(ascii: "/") else { return ([], []) }
            var segments: [Range<Int>] = []
            var start = 1
            for index in 1..<end where path[index] == UInt8(ascii: "/") {
                segments.append(start..<index)
                start = index + 1
            }
            segments.append(start..<end)
            return (segments, BuyerRoute.matching(path, segments: segments))
        }
        guard !candidates.isEmpty else {
            throw HTTPFailure(.notFound, ErrorCode.notFound.rawValue, "no such resource: see GET /openapi.json on the admin listener")
        }
        // HEAD is GET without the body (RFC 9110, 9.3.2), which NIO's encoder leaves out.
        let method = head.method == .head ? .get : head.method
        guard let matched = candidates.first(where: { $0.route.method == method }) else {
            let methods = candidates.map(\.route.method)
            let allowed = (methods + (methods.contains(.get) ? [.head] : [])).map(\.rawValue).joined(separator: ", ")
            throw HTTPFailure.badInput("\(head.method.rawValue) is not allowed here; use \(allowed)", status: .methodNotAllowed,
                                       headers: [.allow: allowed])
        }
        var parameters: [String] = []
        let utf8 = target.utf8
        for (index, name) in matched.parameters {
            let range = segments[index]
            let segment = Substring(utf8[utf8.index(utf8.startIndex, offsetBy: range.lowerBound)
                                         ..< utf8.index(utf8.startIndex, offsetBy: range.upperBound)])
            if let decoded = segment.percentDecoded {
                parameters.append(decoded)
            } else if name == "{sale}" {
                // Passed on as sent: its `%` makes it an invalid sale id, refused (400, as
                // `s%2F1` is) where every sale id is checked, after the credentials.
                parameters.append(String(segment))
            } else {
                // A booking's or a request's id names nothing of the buyer's.
                throw HTTPFailure(.notFound, ErrorCode.notFound.rawValue, "no such resource: \(Quoted(String(segment)))")
            }
        }
        return (matched.route, parameters)
    }
}

extension BookingID {
    /// An id from a path: whatever it is, it names none of the user's bookings unless it
    /// is one, so it is never refused as malformed (404 either way).
    init(path text: String) {
        self.init(trusted: text)
    }
}

extension Substring {
    /// `%XX` decoded once, as UTF-8 without NUL; nil for a broken escape or bytes that
    /// are not such text.
    var percentDecoded: String? {
        // Mostly an id as it is: no escape to decode, and ids are ASCII.
        if utf8.allSatisfy({ $0 > 0 && $0 < 0x80 && $0 != UInt8(ascii: "%") }) { return String(self) }
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        guard !bytes.contains(0) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

extension String {
    /// The text as one path segment: RFC 3986's unreserved characters as they are, every
    /// other byte as `%XX`.
    var percentEncodedSegment: String {
        var out = ""
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%"
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0x0F)]))
            }
        }
        return out
    }
}
