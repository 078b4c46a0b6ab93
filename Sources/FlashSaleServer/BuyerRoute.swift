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

    /// Whether it reads a JSON body.
    var takesBody: Bool {
        switch self {
        case .book, .confirm, .cancel, .submit: true
        case .booking, .bookings, .request, .sale, .events: false
        }
    }

    /// Every status it answers, errors included.
    var statuses: [HTTPResponse.Status] {
        let always: [HTTPResponse.Status] = [.methodNotAllowed, .notAcceptable, .requestHeaderFieldsTooLarge,
                                             .internalServerError, .serviceUnavailable]
        let authenticated: [HTTPResponse.Status] = needsUser ? [.unauthorized] : []
        // A body, a sale id or a `Last-Event-ID` that is not one.
        let badInput: [HTTPResponse.Status] = takesBody || pattern.contains("{sale}") || self == .events ? [.badRequest] : []
        let body: [HTTPResponse.Status] = takesBody ? [.contentTooLarge, .unsupportedMediaType] : []
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

    /// The routes whose pattern matches these segments, for 405's `Allow`.
    static func matching(_ segments: [Substring]) -> [BuyerRoute] {
        patterns.compactMap { route, parts in
            parts.count == segments.count
                && zip(parts, segments).allSatisfy { part, segment in part.map { $0.utf8.elementsEqual(segment.utf8) } ?? !segment.isEmpty }
                ? route : nil
        }
    }

    /// The pattern's `{...}` segments, in order: where each is, and its name.
    var parameters: [(index: Int, name: String)] { BuyerRoute.parameters[self] ?? [] }

    /// Each route's pattern split once, not per request: a fixed segment, or nil for a `{...}` one.
    private static let patterns: [(BuyerRoute, [String?])] = allCases.map { route in
        (route, route.pattern.split(separator: "/").map { $0.hasPrefix("{") ? nil : String($0) })
    }

    private static let parameters: [BuyerRoute: [(index: Int, name: String)]] = Dictionary(uniqueKeysWithValues: allCases.map { route in
        (route, route.pattern.split(separator: "/").enumerated().filter { $1.hasPrefix("{") }.map { ($0, String($1)) })
    })
}
