import HTTPTypes
import Testing
@testable import FlashSaleServer

/// Paths to routes (http.md, "Ids in paths"): a segment is percent-decoded once and is then
/// the whole id.
@Suite struct RoutingTests {
    private func route(_ method: HTTPRequest.Method, _ path: String) throws -> (BuyerRoute, [String]) {
        try BuyerAPI.route(HTTPRequest(method: method, scheme: "http", authority: "x", path: path))
    }

    @Test func eachRouteIsFoundByItsMethodAndPath() throws {
        #expect(try route(.post, "/booking-service/book-item/s1") == (.book, ["s1"]))
        #expect(try route(.put, "/booking-service/book-item/s1/bk_1") == (.confirm, ["s1", "bk_1"]))
        #expect(try route(.delete, "/booking-service/book-item/s1/bk_1?x=1") == (.cancel, ["s1", "bk_1"]))
        #expect(try route(.get, "/booking-service/requests/12") == (.request, ["12"]))
        #expect(try route(.get, "/booking-service/events") == (.events, []))
    }

    @Test func anEncodedSlashIsPartOfTheId() throws {
        #expect(try route(.get, "/booking-service/book-item/s1/a%2Fb") == (.booking, ["s1", "a/b"]))
        #expect(try route(.get, "/booking-service/book-item/s1/%252F") == (.booking, ["s1", "%2F"]))
    }

    @Test func anUnknownPathIs404AndAKnownOneWithAnotherMethod405WithAllow() {
        #expect((failure { try route(.get, "/booking-service/book-item/s1/b/c") })?.status == .notFound)
        #expect((failure { try route(.get, "/booking-service//s1") })?.status == .notFound)
        let wrongMethod = failure { try route(.patch, "/booking-service/book-item/s1") }
        #expect(wrongMethod?.status == .methodNotAllowed)
        #expect(wrongMethod?.headers[.allow] == "POST, GET, HEAD")
    }

    @Test func anIdThatIsNotTextNamesNothing() {
        for path in ["/booking-service/book-item/s1/%00", "/booking-service/book-item/s1/%zz", "/booking-service/book-item/s1/%ff"] {
            #expect((failure { try route(.get, path) })?.status == .notFound, "\(path)")
        }
    }

    /// `BuyerAPI` refuses a path's sale id that is not a sale id (`-x`, 65 characters) with
    /// 400 before it looks for the sale, on GETs too: their statuses (and so openapi.json)
    /// must say so.
    @Test func everyRouteThatTakesASaleIdMayAnswer400() {
        for route in BuyerRoute.allCases where route.pattern.contains("{sale}") {
            #expect(route.statuses.contains(.badRequest), "\(route)")
        }
    }

    private func failure(_ body: () throws -> (BuyerRoute, [String])) -> HTTPFailure? {
        do {
            _ = try body()
            return nil
        } catch {
            return error as? HTTPFailure
        }
    }
}
