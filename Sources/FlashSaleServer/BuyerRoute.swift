import HTTPTypes

/// Every route of the buyer API (http.md), as data: the dispatcher matches requests against
/// it, logs and metrics name routes by it, and a test holds `openapi.json` to it.
enum BuyerRoute: String, CaseIterable, Sendable {
    case book, confirm, cancel, booking, bookings, submit, request, sale, events

    /// The path's pattern; `{name}` is one segment, percent-decoded once.
    var pattern: String {
        switch self {
        case .book, .bookings: "/booking-service/book-item/{sale}"
        case .confirm, .cancel, .booking: "/booking-service/book-item/{sale}/{booking}"
        case .submit: "/booking-service/requests/{sale}"
        case .request: "/booking-service/requests/{id}"
        case .sale: "/booking-service/sales/{sale}"
        case .events: "/booking-service/events"
        }
    }

    var method: HTTPRequest.Method {
        switch self {
        case .book, .submit: .post
        case .confirm: .put
        case .cancel: .delete
        case .booking, .bookings, .request, .sale, .events: .get
        }
    }

    /// Whether the buyer must be authenticated: all but the public sale.
    var needsUser: Bool { self != .sale }

    /// The member of its JSON body it reads; nil when it reads no body.
    var bodyField: RequestBody.Field? {
        switch self {
        case .book, .submit: .key
        case .confirm, .cancel: .status
        case .booking, .bookings, .request, .sale, .events: nil
        }
    }

    /// Whether it reads a JSON body.
    var takesBody: Bool { bodyField != nil }

    /// Every status it answers, errors included.
    var statuses: [HTTPResponse.Status] {
        // 501: a transfer coding other than chunked (HTTP1Rules), on any request; 408: a
        // request not whole within its 10 s (ConnectionDeadlines).
        let always: [HTTPResponse.Status] = [.methodNotAllowed, .notAcceptable, .requestTimeout, .requestHeaderFieldsTooLarge,
                                             .internalServerError, .notImplemented, .serviceUnavailable]
        let authenticated: [HTTPResponse.Status] = needsUser ? [.unauthorized] : []
        // A body, a sale id or a `Last-Event-ID` that is not one.
        let badInput: [HTTPResponse.Status] = takesBody || pattern.contains("{sale}") || self == .events ? [.badRequest] : []
        let body: [HTTPResponse.Status] = takesBody ? [.lengthRequired, .contentTooLarge, .unsupportedMediaType] : []
        let own: [HTTPResponse.Status] = switch self {
        case .book: [.created, .ok, .forbidden, .notFound, .conflict]
        case .confirm: [.ok, .notFound, .conflict, .gone]
        case .cancel: [.ok, .notFound, .conflict]
        case .submit: [.accepted, .ok, .notFound, .conflict]
        case .booking, .bookings, .request, .sale: [.ok, .notFound]
        case .events: [.ok]
        }
        return own + authenticated + badInput + body + always
    }

    /// A route's pattern split once, not per request: each segment fixed, or nil for a
    /// `{...}` one, and where each `{...}` is, with its name.
    struct Pattern {
        let route: BuyerRoute
        /// The fixed segments' bytes; nil for a parameter.
        let segments: [[UInt8]?]
        let parameters: [(index: Int, name: String)]

        init(_ route: BuyerRoute) {
            let parts = route.pattern.split(separator: "/")
            self.route = route
            segments = parts.map { $0.hasPrefix("{") ? nil : Array($0.utf8) }
            parameters = parts.enumerated().filter { $1.hasPrefix("{") }.map { ($0, String($1)) }
        }

        /// Whether `path`'s segments (ranges of its bytes, after its first `/`) are this
        /// pattern's, compared as bytes: through `Substring.UTF8View`'s indices, byte by
        /// byte, the comparisons were 3.5% of a decline's instructions (callgrind).
        func matches(_ path: UnsafeBufferPointer<UInt8>, segments ranges: [Range<Int>]) -> Bool {
            segments.count == ranges.count && zip(segments, ranges).allSatisfy { fixed, range in
                guard let fixed else { return !range.isEmpty }
                return path[range].elementsEqual(fixed)
            }
        }
    }

    /// The routes whose pattern matches the path's segments (several for 405's `Allow`).
    static func matching(_ path: UnsafeBufferPointer<UInt8>, segments: [Range<Int>]) -> [Pattern] {
        patterns.filter { $0.matches(path, segments: segments) }
    }

    private static let patterns = allCases.map(Pattern.init)
}
