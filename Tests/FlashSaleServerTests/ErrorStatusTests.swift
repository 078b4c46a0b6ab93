import Foundation
import NIOHTTP1
import Testing
import FlashSaleCore
import FlashSaleStore
import FlashSaleTestSupport

/// Every error status of http.md's table, each with its code, its headers and its body
/// `{"error": {"code", "message"}}`; and bad input changes nothing.
@Suite struct ErrorStatusTests {
    static let book = "/booking-service/book-item/s1"

    static func served(_ arguments: [String] = ServedDatabase.headerAuth) throws -> ServedDatabase {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        try served.start(arguments)
        return served
    }

    @Test func blockedUsersAddressesAndAgentsAndTheAddressAtItsPerIPLimitAre403() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        try served.createSale("s2", inventory: 5)
        try served.createSale("s3", inventory: 5, ["--per-ip", "1"])
        for block in [["user", "mallory", "--reason", "fraud ring 42"], ["agent", "evilbot", "--contains"],
                      ["ip", "127.0.0.1", "--sale", "s2"]] {
            try #require(served.flashsale(["block"] + block).status == .exit(0))
        }
        try served.start()

        let user = try await served.send(.POST, Self.book, user: "mallory")
        let agent = try await served.send(.POST, Self.book, user: "alice", headers: [("User-Agent", "evilbot/1.0")])
        let address = try await served.send(.POST, "/booking-service/book-item/s2", user: "alice")
        for answer in [user, agent, address] {
            #expect(answer.status == 403, "\(answer.body)")
            #expect(answer.errorCode == "blocked")
        }
        // The buyer is not told the operator's reason, nor what of its agent is blocked:
        // a bot told "agents containing 'evilbot'" knows what to drop.
        #expect(user.errorMessage == "this request is blocked in sale s1", "\(user.body)")
        #expect(agent.errorMessage == "this request is blocked in sale s1", "\(agent.body)")
        // A second User-Agent, which read as one would be "evilbot/1.0, x", is refused
        // rather than matched as a whole.
        let twoAgents = try await served.send(.POST, Self.book, user: "alice", headers: [("User-Agent", "x"), ("User-Agent", "y")])
        #expect(twoAgents.status == 400, "\(twoAgents.body)")
        #expect(twoAgents.errorMessage == "more than one User-Agent header", "\(twoAgents.body)")
        #expect(try await served.send(.POST, Self.book, user: "alice").status == 201)

        #expect(try await served.send(.POST, "/booking-service/book-item/s3", user: "alice").status == 201)
        let overLimit = try await served.send(.POST, "/booking-service/book-item/s3", user: "bob")
        #expect(overLimit.status == 403)
        #expect(overLimit.errorCode == "blocked")
        // Found by probing: the per-IP limit's words told the buyer its address's bookings
        // and the attempts counted from its /64 (what `suspects` ranks it by). The log
        // line has them, as it has which block matched.
        #expect(overLimit.errorMessage == "this address is at the per-IP limit of sale s3", "\(overLimit.body)")
        let forbidden = try await served.logged(4) { $0["status"] as? Int == 403 }.compactMap { $0["error"] as? String }
        #expect(forbidden.count == 4, "\(served.log)")
        #expect(forbidden.contains { $0.contains("per-IP limit") && $0.contains("attempts") }, "\(served.log)")
        #expect(forbidden.contains { $0.contains("fraud ring 42") }, "\(served.log)")
    }

    /// Found by probing: a client that reset its connection while its body was arriving
    /// was answered, logged and counted as a 500, a bug of serve's, which alerts fire on;
    /// a client that closes instead is a 400, as this one now is.
    @Test func aClientThatResetsItsConnectionMidBodyIsNoServerError() async throws {
        let served = try Self.served()
        let inFlight = "flashsale_http_requests_in_flight"
        // A reset the server meets with the request started: seen in flight first. On a
        // loaded machine the look may miss it (its 10 s passed first, a 408): then again.
        var reset = 0
        for _ in 0..<5 where reset == 0 {
            let connection = try BlockingConnection(port: served.port)
            try connection.write("POST \(Self.book) HTTP/1.1\r\nHost: x\r\nX-User: alice\r\nContent-Type: application/json\r\n"
                                 + "Content-Length: 10\r\n\r\n{")
            let seen = try await served.waitForMetric(inFlight, toBe: 1)
            connection.reset()
            guard seen else { continue }
            reset += 1
            // Answered 400 at once, or, if a machine this loaded reads the reset after the
            // body's 10 s, 408 then: a CI run under load took longer than 10 s to see either.
            #expect(try await served.waitForMetric(inFlight, toBe: 0, within: .seconds(40)))
        }
        #expect(reset > 0, "no request was seen in flight to be reset")
        let metrics = try await served.metrics()
        let answered = metrics.filter { $0.key.hasPrefix("flashsale_http_requests_total") }
        #expect(answered.keys.allSatisfy { $0.hasSuffix(#"status="400"}"#) || $0.hasSuffix(#"status="408"}"#) }, "\(answered)")
        // Each reset the server met as the client's: 400, the log saying why.
        let refused = Int(answered[#"flashsale_http_requests_total{route="book",status="400"}"#] ?? 0)
        let cut = try await served.logged(refused) { $0["status"] as? Int == 400 }.map { $0["error"] as? String }
        #expect(cut.count == refused, "\(served.log)")
        #expect(cut.allSatisfy { $0 == "the client reset the connection before its request was whole" }, "\(served.log)")
        #expect(try served.counter("held") == 0)
    }

    /// Found by probing: a client that reset its connection while its head was arriving
    /// was neither logged nor counted, where one that closes it then, or resets it during
    /// its body, is a 400.
    @Test func aClientThatResetsItsConnectionMidHeadIsLoggedAndCounted() async throws {
        let served = try Self.served()
        // Reset once the server has read the head's start (all of it sent, none of it
        // unread), so that it meets the reset mid-head: a reset of bytes not read yet
        // discards them. Under a full suite's load the server once did not read the start
        // within the head's 10 s, and twice was not told of the reset (no 400, and a 408
        // when the head's 10 s ran out, though its socket was gone): then again, on a new
        // connection.
        func refused() throws -> Bool { try logObjects(served.log).contains { $0["status"] as? Int == 400 } }
        for _ in 0..<3 where try !refused() {
            let connection = try BlockingConnection(port: served.port)
            try connection.write("GET /booking-service/sales/s1 HTTP/1.1\r\nHost: x\r\n")
            let (client, server) = (connection.localPort, served.port)
            _ = await eventually(within: .seconds(5)) {
                KernelSocket(local: client, remote: server)?.sent == 0 && KernelSocket(local: server, remote: client)?.unread == 0
            }
            connection.reset()
            _ = try await eventually(within: .seconds(3), refused)
        }
        // One 400 for each reset the server met mid-head: an earlier try's may count too.
        let lines = try await served.logged(1) { $0["status"] as? Int == 400 }
        let cut = lines.map { $0["error"] as? String }
        #expect(!cut.isEmpty && cut.allSatisfy { $0 == "the client reset the connection before its request was whole" },
                "\(served.log)")
        // Found by probing: without its peer, which NIO forgets once the connection closes.
        #expect(lines.allSatisfy { $0["peer"] as? String == "127.0.0.1" }, "\(served.log)")
        let metrics = try await served.metrics()
        #expect(metrics[#"flashsale_http_requests_total{route="none",status="400"}"#] == Double(cut.count), "\(metrics)")
    }

    /// Found by probing: a booking sent whole on a connection reset at once mostly meets
    /// serve after the reset, when the kernel no longer has the peer's address. Decided with
    /// none, it went past its address's block: 299 holds of 300 from a blocked address.
    @Test func aBookingResetBeforeItsConnectionIsAcceptedIsNotDecidedPastItsBlock() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        try #require(served.flashsale(["block", "ip", "127.0.0.1"]).status == .exit(0))
        try served.start()
        let unknown = "the client reset the connection before it was accepted: its address is unknown, so nothing it sent is decided"
        // Almost every reset comes before serve accepts its connection, the client being
        // that much quicker; rounds of 50 until one has.
        var answered: [[String: Any]] = []
        for round in 1...5 where !answered.contains(where: { $0["error"] as? String == unknown }) {
            for _ in 0..<50 {
                let connection = try BlockingConnection(port: served.port)
                try connection.write("POST \(Self.book) HTTP/1.1\r\nHost: x\r\nX-User: alice\r\nContent-Length: 0\r\n\r\n")
                connection.reset()
            }
            // Each booking serve reads is logged: blocked (403) if its connection was
            // accepted before its reset, not decided (400, before any route) if after.
            answered = try await served.logged(50 * round) { ["book", "none"].contains($0["route"] as? String) }
        }
        #expect(try await served.waitForMetric("flashsale_http_requests_in_flight", toBe: 0))
        #expect(try served.counter("held") == 0, "\(served.log)")
        #expect(answered.allSatisfy { [400, 403].contains($0["status"] as? Int) }, "\(served.log)")
        #expect(answered.contains { $0["error"] as? String == unknown }, "no reset came before its accept: \(served.log)")
    }

    @Test func theDeclinesAre409WithTheirCodes() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 1)
        try served.createSale("empty", inventory: 0)
        try served.createSale("paused", inventory: 5)
        try served.createSale("later", inventory: 5, ["--starts", "+1h"])
        try #require(served.flashsale(["pause", "paused"]).status == .exit(0))
        try served.start()

        #expect(try await served.send(.POST, Self.book, user: "alice").status == 201)
        let cases: [(String, String, String)] = [
            ("s1", "alice", "user_limit"), ("s1", "bob", "sold_out"), ("empty", "bob", "sold_out"),
            ("paused", "bob", "not_open"), ("later", "bob", "not_open"),
        ]
        for (sale, user, code) in cases {
            let answer = try await served.send(.POST, "/booking-service/book-item/\(sale)", user: user)
            #expect(answer.status == 409, "\(sale) \(user): \(answer.body)")
            #expect(answer.errorCode == code, "\(sale) \(user)")
            #expect((answer.object["error"] as? [String: Any])?["message"] is String)
        }
        // The command line's "resume it to take bookings" is the operator's to read.
        #expect(try await served.send(.POST, "/booking-service/book-item/paused", user: "bob").errorMessage == "sale paused is paused")
    }

    /// Found by probing: a `--sale` naming no sale (a typo) served 404 for ever without a
    /// word, and the start-up line said neither the sales nor the trusted proxies.
    @Test func aSaleToServeThatIsNotThereIsSaidAtTheStart() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        try served.start(ServedDatabase.headerAuth + ["--sale", "s1", "--sale", "s9", "--trusted-proxy", "10.0.0.0/8"])
        let serving = try #require(try await served.logged(1) { $0["message"] as? String == "serving" }.first, "\(served.log)")
        #expect(serving["sales"] as? [String] == ["s1", "s9"] && serving["trusted_proxies"] as? [String] == ["10.0.0.0/8"], "\(serving)")
        let warnings = try await served.logged(1) { ($0["message"] as? String)?.hasPrefix("no such sale") == true }
        #expect(warnings.count == 1 && warnings.first?["sale"] as? String == "s9", "\(served.log)")
    }

    @Test func anUnknownSaleAndOneOutsideSaleAre404AndAnInvalidSaleIdIs400() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        try served.createSale("s2", inventory: 5)
        try served.start(ServedDatabase.headerAuth + ["--sale", "s1"])
        for sale in ["s9", "s2"] {
            for (method, path) in [(HTTPMethod.POST, "/booking-service/book-item/\(sale)"), (.GET, "/booking-service/book-item/\(sale)"),
                                   (.POST, "/booking-service/requests/\(sale)"), (.GET, "/booking-service/sales/\(sale)"),
                                   (.GET, "/booking-service/book-item/\(sale)/bk_x")] {
                let answer = try await served.send(method, path, user: "alice")
                #expect(answer.status == 404, "\(method) \(path): \(answer.body)")
                #expect(answer.errorCode == "not_found")
            }
        }
        // A sale outside --sale is exactly an unknown one.
        let outside = try await served.send(.GET, "/booking-service/sales/s2")
        let unknown = try await served.send(.GET, "/booking-service/sales/s9")
        #expect(outside.body.replacingOccurrences(of: "s2", with: "S") == unknown.body.replacingOccurrences(of: "s9", with: "S"))
        #expect(try served.flashsale(["status", "s2", "--json"]).stdout.contains(#""held":0"#))
        // alice's own request, in a sale this server does not serve.
        let queued = try served.flashsale(["submit", "s2", "alice"]).stdout.trimmingCharacters(in: .newlines)
        let request = try await served.send(.GET, "/booking-service/requests/\(queued)", user: "alice")
        #expect(request.status == 404, "\(queued): \(request.body)")
        // An id the command line would not take names none either, and is said as given
        // (it was "no request 0 of yours").
        let malformed = try await served.send(.GET, "/booking-service/requests/abc", user: "alice")
        #expect(malformed.status == 404)
        #expect(malformed.body == #"{"error":{"code":"not_found","message":"no request abc of yours"}}"#, "\(malformed.body)")

        for invalid in ["-s1", "s%201", String(repeating: "s", count: 65), "s%2F1", "s1%00", "s1%FF", "s1%zz"] {
            let answer = try await served.send(.POST, "/booking-service/book-item/\(invalid)", user: "alice")
            #expect(answer.status == 400, "\(invalid): \(answer.body)")
            #expect(answer.errorCode == "bad_input")
            // Credentials are checked first (http.md's order), whatever the sale id.
            #expect(try await served.send(.POST, "/booking-service/book-item/\(invalid)").status == 401, "\(invalid)")
        }
    }

    @Test func aKnownPathWithAnotherMethodIs405WithAllow() async throws {
        let served = try Self.served()
        let cases: [(HTTPMethod, String, String)] = [
            (.PATCH, Self.book, "POST, GET, HEAD"), (.DELETE, "/booking-service/sales/s1", "GET, HEAD"),
            (.POST, "/booking-service/book-item/s1/bk_x", "PUT, DELETE, GET, HEAD"),
            (.PUT, "/booking-service/requests/1", "POST, GET, HEAD"), (.POST, "/booking-service/events", "GET, HEAD"),
        ]
        for (method, path, allowed) in cases {
            // Before credentials: no user is named.
            let answer = try await served.send(method, path)
            #expect(answer.status == 405, "\(method) \(path): \(answer.body)")
            #expect(answer.errorCode == "bad_input")
            #expect(answer[header: "Allow"] == allowed, "\(method) \(path)")
        }
    }

    @Test func anAcceptThatRefusesJSONIs406() async throws {
        let served = try Self.served()
        let html = try await served.send(.GET, Self.book, user: "alice", headers: [("Accept", "text/html")])
        #expect(html.status == 406, "\(html.body)")
        #expect(html.errorCode == "bad_input")
        #expect(html[header: "Content-Type"] == "application/json")
        for accept in ["application/json", "application/*", "*/*", "text/html, application/json;q=0.5", "*/*; q=0.1",
                       "*/*;q=0, application/json", "application/json; charset=UTF-8", "application/json;charset=\"utf-8\";q=1",
                       // Found by probing: a range with a parameter this answer lacks does
                       // not speak of it; the plain type's does.
                       "application/json;level=1;q=0, application/json", "application/json;q=0.5;level=1",
                       // Found by probing: a lone `*`, Java's default header's, was 406.
                       "*", "text/html, *; q=.2",
                       // Found by probing: spaces around `=`, and an empty parameter, were 406.
                       "application/json; charset = utf-8", "application/json; ;charset=utf-8", "application/json; q = 0.5"] {
            #expect(try await served.send(.GET, Self.book, user: "alice", headers: [("Accept", accept)]).status == 200, "\(accept)")
        }
        // q=0 is "not acceptable", and the most specific range decides (RFC 9110, 12.5.1).
        for accept in ["application/json;q=0", "application/json; q=0.0, */*", "text/html, */*;q=0",
                       "application/json;level=1", "application/json;charset=latin1, */*;q=0",
                       "application/json; charset = latin1, */*;q=0"] {
            #expect(try await served.send(.GET, Self.book, user: "alice", headers: [("Accept", accept)]).status == 406, "\(accept)")
        }
    }

    @Test func aBodyOver4KiBIs413EvenChunkedAnd4KiBIsAccepted() async throws {
        let served = try Self.served()
        let big = #"{"key": "k", "pad": ""# + String(repeating: "x", count: 5 * 1024) + #""}"#
        let declared = try await served.send(.POST, Self.book, user: "alice", body: big)
        #expect(declared.status == 413, "\(declared.body)")
        #expect(declared.errorCode == "bad_input")

        let chunked = try await RawConnection.open(port: served.port)
        let chunk = String(repeating: " ", count: 1024)
        try await chunked.send("POST \(Self.book) HTTP/1.1\r\nHost: x\r\nX-User: alice\r\nContent-Type: application/json\r\n"
                               + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                               + "1\r\n{\r\n" + String(repeating: "400\r\n\(chunk)\r\n", count: 5) + "1\r\n}\r\n0\r\n\r\n")
        #expect(await chunked.closed(within: .seconds(10)))
        #expect(chunked.answer.hasPrefix("HTTP/1.1 413"), "\(chunked.answer)")

        // Exactly 4096 bytes, chunked too, is a body.
        let exact = "{" + String(repeating: " ", count: 4094) + "}"
        let accepted = try await RawConnection.open(port: served.port, sending: "POST \(Self.book) HTTP/1.1\r\nHost: x\r\nX-User: bob\r\nContent-Type: application/json\r\n"
                                + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                + "800\r\n\(exact.prefix(2048))\r\n800\r\n\(exact.dropFirst(2048))\r\n0\r\n\r\n")
        #expect(await accepted.closed(within: .seconds(10)))
        #expect(accepted.answer.hasPrefix("HTTP/1.1 201"), "\(accepted.answer)")
        let status = try served.flashsale(["status", "s1", "--json"])
        #expect(status.stdout.contains(#""held":1"#), "\(status.stdout)")
    }

    @Test func aBodyThatIsNotJSONIs415() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 10)
        try served.start(ServedDatabase.headerAuth)
        // A charset other than UTF-8 too (found by probing: refused as a body not valid
        // UTF-8, 400, for the same rule as Accept's 406).
        for type in ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", "application/json; charset=iso-8859-1",
                     "application/json;charset=\"UTF-16\"", "application/json; charset = latin1", "application/json; charset",
                     "application/json;;charset=latin1", "application/json; q=1; Charset=\"Latin1\"", "application/json; charset=utf-8x"] {
            let answer = try await served.send(.POST, Self.book, user: "alice", headers: [("Content-Type", type)], body: "{}")
            #expect(answer.status == 415, "\(type): \(answer.body)")
            #expect(answer.errorCode == "bad_input")
        }
        let missing = try await RawConnection.open(port: served.port, sending: "POST \(Self.book) HTTP/1.1\r\nHost: x\r\nX-User: alice\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        #expect(await missing.closed(within: .seconds(10)))
        #expect(missing.answer.hasPrefix("HTTP/1.1 415"), "\(missing.answer)")
        // Parameters are allowed.
        let charset = try await served.send(.POST, Self.book, user: "alice", headers: [("Content-Type", "Application/JSON; charset=utf-8")],
                                            body: "{}")
        #expect(charset.status == 201, "\(charset.body)")
        let spaced = try await served.send(.POST, Self.book, user: "carol", headers: [("Content-Type", "application/JSON ;charset=utf-8")],
                                           body: "{}")
        #expect(spaced.status == 201, "\(spaced.body)")
        for (user, type) in [("dave", "application/json; CHARSET=\"UTF-8\""), ("erin", "application/json; ; charset = utf-8"),
                                 ("frank", "application/json; boundary=x;charset=\t\"utf-8\""), ("grace", "application/json;")] {
            let spelled = try await served.send(.POST, Self.book, user: user, headers: [("Content-Type", type)], body: "{}")
            #expect(spelled.status == 201, "\(type): \(spelled.body)")
        }
    }

    /// Found by probing: NIO reads any Transfer-Encoding ending in chunked as chunked, and
    /// serve read a body as it came whatever its Content-Encoding, so each of these made a
    /// hold from bytes it had not understood. A transfer coding serve does not read is 501
    /// (RFC 9112, 6.1), a content coding 415 (RFC 9110, 8.4); nothing is booked.
    @Test func bodiesInCodingsServeDoesNotReadChangeNothing() async throws {
        let served = try Self.served()
        for coding in ["gzip, chunked", "x-unknown, chunked"] {
            let raw = try await RawConnection.open(port: served.port, sending: "POST \(Self.book) HTTP/1.1\r\nHost: x\r\nX-User: te\r\n"
                + "Content-Type: application/json\r\nTransfer-Encoding: \(coding)\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            #expect(await raw.closed(within: .seconds(10)))
            #expect(raw.answer.hasPrefix("HTTP/1.1 501"), "\(coding): \(raw.answer)")
            #expect(raw.answer.contains(#""code":"bad_input""#), "\(raw.answer)")
        }
        let encoded = try await served.send(.POST, Self.book, user: "ce", headers: [("Content-Encoding", "gzip")], body: "{}")
        #expect(encoded.status == 415, "\(encoded.body)")
        #expect(encoded.errorCode == "bad_input")
        #expect(try await served.send(.POST, Self.book, user: "ok", headers: [("Content-Encoding", "identity")], body: "{}").status == 201)
        #expect(try await served.send(.GET, "/booking-service/book-item/s1", user: "te").body == "[]")
        #expect(try await served.send(.GET, "/booking-service/book-item/s1", user: "ce").body == "[]")
    }

    @Test func headersOver16KiBAre431() async throws {
        let served = try Self.served()
        let padding = (0..<20).map { ("X-Pad-\($0)", String(repeating: "p", count: 1024)) }
        let answer = try await served.send(.GET, Self.book, user: "alice", headers: padding)
        #expect(answer.status == 431, "\(answer.body)")
        #expect(answer.errorCode == "bad_input")
        let one = try await served.send(.GET, Self.book, user: "alice", headers: [("X-Pad", String(repeating: "p", count: 20 * 1024))])
        #expect(one.status == 431, "\(one.body)")
        // Past what the HTTP decoder itself reads, in one field or in many: 431 all the same.
        for headers in ["X-Pad: " + String(repeating: "p", count: 100 * 1024) + "\r\n",
                        (0..<5000).map { "X-Pad-\($0): \(String(repeating: "p", count: 20))\r\n" }.joined()] {
            let raw = try await RawConnection.open(port: served.port, sending: "GET \(Self.book) HTTP/1.1\r\nHost: x\r\nX-User: alice\r\n" + headers + "\r\n")
            #expect(await raw.closed(within: .seconds(10)))
            #expect(raw.answer.hasPrefix("HTTP/1.1 431"), "\(raw.answer)")
            #expect(raw.answer.contains(#""code":"bad_input""#), "\(raw.answer)")
            // Found by probing: 1,000 short fields were said to be too many bytes alone.
            #expect(raw.answer.contains("(headers: 16384 bytes and 1000 fields at most)"), "\(raw.answer)")
        }
    }

    @Test func malformedBodiesWrongTypesUnknownStatusesAre400() async throws {
        let served = try Self.served()
        let held = try #require(try await served.send(.POST, Self.book, user: "alice")[field: "id"])
        let cases: [(HTTPMethod, String, String)] = [
            (.POST, Self.book, #"{"key": "#), (.POST, Self.book, "[]"), (.POST, Self.book, #""key""#), (.POST, Self.book, "nul"),
            (.POST, Self.book, #"{"key": 5}"#), (.POST, Self.book, #"{"key": ["a"]}"#), (.POST, Self.book, #"{"key": "a\u0000b"}"#),
            (.POST, Self.book, #"{"key": ""# + String(repeating: "k", count: 257) + #""}"#),
            (.POST, "/booking-service/requests/s1", #"{"key": {}}"#),
            (.PUT, bookingPath("s1", held), #"{"status": "cancelled"}"#), (.PUT, bookingPath("s1", held), #"{"status": 1}"#),
            (.PUT, bookingPath("s1", held), "{}"), (.DELETE, bookingPath("s1", held), #"{"status": "booked"}"#),
            (.DELETE, bookingPath("s1", held), #"{"status": null, "x": }"#),
            // What a lenient decoder took: a trailing comma, a name twice (first or last?).
            (.POST, Self.book, #"{"key": "k1",}"#), (.POST, Self.book, #"{"key": "k1", "key": "k2"}"#),
            (.POST, Self.book, #"{"x": 1, "\u0078": 2}"#),
            // "" is no status (only a key of "" is none).
            (.DELETE, bookingPath("s1", held), #"{"status": ""}"#),
        ]
        for (method, path, body) in cases {
            let answer = try await served.send(method, path, user: "bob", body: body)
            #expect(answer.status == 400, "\(method) \(body): \(answer.status) \(answer.body)")
            #expect(answer.errorCode == "bad_input", "\(method) \(body)")
            // In the API's words, not the decoder's Swift types ("Dictionary<String, Any>").
            #expect(!answer.body.contains("Expected to decode") && !answer.body.contains("Swift"), "\(body): \(answer.body)")
        }
        #expect(try await served.send(.POST, Self.book, user: "bob", body: "[]").errorMessage == "the body: not a JSON object")
        #expect(try await served.send(.POST, Self.book, user: "bob", body: #"{"key": 5}"#).errorMessage == "the body: key must be a string")
        #expect(try await served.send(.POST, Self.book, user: "bob", body: #"{"key": ""# + String(repeating: "k", count: 257) + #""}"#)
                    .errorMessage == "the body: key is 257 bytes; the limit is 256")
        #expect(try await served.send(.POST, Self.book, user: "bob", body: #"{"key": "a", "key": "b"}"#).errorMessage
                == #"the body: duplicate key "key""#)
        #expect(try await served.send(.POST, Self.book, user: "bob", body: #"{"key": "k1",}"#).errorMessage
                == "the body: invalid JSON at byte 14")
        let twin = try served.flashsale(["booking", "s1", held, "--json"])
        #expect(twin.stdout.contains(#""status":"held""#))
    }

    /// Found by probing: a field an endpoint does not read was held to its type elsewhere,
    /// `{"status": 5}` a 400 for a booking. http.md: unknown fields are ignored; what one
    /// endpoint reads is unknown to another, whatever it holds.
    @Test func aFieldTheEndpointDoesNotReadIsIgnoredWhateverItHolds() async throws {
        let served = try Self.served()
        let booked = try await served.send(.POST, Self.book, user: "alice", body: #"{"status": 5, "key": "k1"}"#)
        #expect(booked.status == 201, "\(booked.body)")
        let held = try #require(booked[field: "id"])
        let queued = try await served.send(.POST, "/booking-service/requests/s1", user: "bob", body: #"{"status": {"a": [1]}}"#)
        #expect(queued.status == 202, "\(queued.body)")
        let cancelled = try await served.send(.DELETE, bookingPath("s1", held), user: "alice", body: #"{"key": 5}"#)
        #expect(cancelled.status == 200, "\(cancelled.body)")
    }

    /// Found by probing (of NDJSON and CSV, which share the rule): `{"Key": "k1"}` was
    /// ignored as an unknown field, and a retry held twice. The endpoint's own field
    /// written otherwise is a 400; another endpoint's still is no field of this one.
    @Test func theEndpointsFieldWrittenOtherwiseIs400() async throws {
        let served = try Self.served()
        let refused = try await served.send(.POST, Self.book, user: "alice", body: #"{"Key": "k1"}"#)
        #expect(refused.status == 400, "\(refused.body)")
        #expect(refused.errorMessage == #"the body: key "Key" is not read: keys are lowercase, with _ (key)"#)
        #expect(try served.flashsale(["status", "s1", "--json"]).stdout.contains(#""held":0"#))
        #expect(try await served.send(.POST, Self.book, user: "alice", body: #"{"Status": "x", "key": "k1"}"#).status == 201)
    }

    /// Bytes that are not UTF-8 in the user's header (header mode) or in User-Agent: the
    /// decoder makes U+FFFD of them, which made "caf\xE9" and "caf\xFF" one user.
    @Test func invalidUTF8InTheUserOrAgentHeaderIsRefused() async throws {
        let served = try Self.served()
        for (header, value, status) in [("X-User", [0x63, 0x61, 0x66, 0xE9] as [UInt8], "401"),
                                        ("User-Agent", [0x62, 0x6F, 0x74, 0xFF], "400")] {
            let user = header == "X-User" ? "" : "X-User: alice\r\n"
            let head = Array("POST \(Self.book) HTTP/1.1\r\nHost: x\r\n\(user)Connection: close\r\n\(header): ".utf8)
            let raw = try await RawConnection.open(port: served.port, sendingBytes: head + value + Array("\r\n\r\n".utf8))
            #expect(await raw.closed(within: .seconds(10)))
            #expect(raw.answer.hasPrefix("HTTP/1.1 \(status)"), "\(header): \(raw.answer)")
            #expect(raw.answer.contains("not valid UTF-8"), "\(header): \(raw.answer)")
        }
        #expect(try served.flashsale(["status", "s1", "--json"]).stdout.contains(#""held":0"#))
    }

    @Test func invalidUTF8InTheBodyIs400() async throws {
        let served = try Self.served()
        // In the key, or in a member the server does not read: the body is not text.
        for (name, bytes): (String, [UInt8]) in [("key", [0xFF, 0xFE]), ("key", [0xC0, 0xAF]), ("key", [0xED, 0xA0, 0x80]),
                                                 ("note", [0xFF, 0xFE])] {
            let body = Array("{\"\(name)\": \"".utf8) + bytes + Array(#""}"#.utf8)
            let head = "POST \(Self.book) HTTP/1.1\r\nHost: x\r\nX-User: alice\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            let raw = try await RawConnection.open(port: served.port, sendingBytes: Array(head.utf8) + body)
            #expect(await raw.closed(within: .seconds(10)))
            #expect(raw.answer.hasPrefix("HTTP/1.1 400"), "\(bytes): \(raw.answer)")
            #expect(raw.answer.contains(#""code":"bad_input""#))
        }
        #expect(try served.flashsale(["status", "s1", "--json"]).stdout.contains(#""held":0"#))
    }

    /// A chunked body the decoder cannot follow is the client's error, not the server's.
    @Test func aBrokenChunkedBodyIs400() async throws {
        let served = try Self.served()
        for chunks in ["2\r\n{}\r\nzz\r\n", "2\r\n{}x\r\n0\r\n\r\n", "-1\r\n{}\r\n0\r\n\r\n"] {
            let raw = try await RawConnection.open(port: served.port, sending: "POST \(Self.book) HTTP/1.1\r\nHost: x\r\nX-User: alice\r\nContent-Type: application/json\r\n"
                               + "Transfer-Encoding: chunked\r\n\r\n" + chunks)
            #expect(await raw.closed(within: .seconds(10)), "\(chunks.debugDescription)")
            #expect(raw.answer.hasPrefix("HTTP/1.1 400"), "\(chunks.debugDescription): \(raw.answer)")
        }
        #expect(try served.flashsale(["status", "s1", "--json"]).stdout.contains(#""held":0"#))
        #expect(!served.log.contains(#""level":"error""#), "\(served.log)")
    }

    @Test func noOrBadCredentialsAre401WithABearerChallenge() async throws {
        let served = try Self.served()
        for headers in [[], [("X-User", "")], [("X-User", String(repeating: "u", count: 257))]] {
            let answer = try await served.send(.POST, Self.book, headers: headers)
            #expect(answer.status == 401, "\(headers.map(\.1.count)): \(answer.body)")
            #expect(answer.errorCode == "unauthenticated")
            #expect(answer[header: "WWW-Authenticate"] == "Bearer")
        }
        // Two user headers name nobody (a gateway that adds its own without removing the client's).
        let two = try await served.send(.POST, Self.book, user: "alice", headers: [("X-User", "bob")])
        #expect(two.status == 401, "\(two.body)")
        #expect(two[header: "WWW-Authenticate"] == "Bearer")
        // One field is one user, whatever it holds.
        let comma = try await served.send(.POST, Self.book, user: "alice, bob")
        #expect(comma.status == 201 && comma[field: "user"] == "alice, bob", "\(comma.body)")
        // Credentials come before the body: a bad body without them is 401.
        let both = try await served.send(.POST, Self.book, body: "{")
        #expect(both.status == 401)
    }

    /// Another connection holds the write lock past `--busy-timeout`: 503 `busy`, retry
    /// after a second; nothing happened; once the lock is gone the server books again.
    @Test func aWriteLockHeldPastTheBusyTimeoutIs503BusyWithRetryAfter() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        try served.start(ServedDatabase.headerAuth + ["--busy-timeout", "200ms"])
        let holder = try served.writeLockHeld()

        let busy = try await served.send(.POST, Self.book, user: "alice")
        #expect(busy.status == 503, "\(busy.body)")
        #expect(busy.errorCode == "busy")
        #expect(busy[header: "Retry-After"] == "1")
        // "raise --busy-timeout" is the operator's to read, in the log.
        #expect(busy.errorMessage == "the database is busy just now; retry", "\(busy.body)")
        let queued = try await served.send(.POST, "/booking-service/requests/s1", user: "alice")
        #expect(queued.status == 503)
        // A sale that is not there is not found, after the wait as without it (found by
        // probing: 503, retry, which could never succeed).
        for path in ["/booking-service/book-item/s9", "/booking-service/requests/s9"] {
            let missing = try await served.send(.POST, path, user: "alice")
            #expect(missing.status == 404 && missing.errorCode == "not_found", "\(path): \(missing.body)")
        }
        // Reads do not wait for the writer.
        #expect(try await served.send(.GET, "/booking-service/sales/s1").status == 200)

        try holder.execute("ROLLBACK")
        #expect(try await served.send(.POST, Self.book, user: "alice").status == 201)
        let status = try served.flashsale(["status", "s1", "--json"])
        #expect(status.stdout.contains(#""held":1"#) && status.stdout.contains(#""queued":0"#), "\(status.stdout)")
    }

    /// Found by probing: serve started while another process kept everyone out of the
    /// database (an operator's `sqlite3` in exclusive locking mode) exited 75 at once, where
    /// it waits out the same lock later. It waits, says so in its log, and serves after.
    @Test func serveStartedWhileTheDatabaseIsLockedWaitsForIt() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        var holder: Connection? = try lockingEveryoneOut(of: served.database)
        try served.start(ServedDatabase.headerAuth + ["--busy-timeout", "100ms"]) {
            if served.log.contains("waiting for it") { holder = nil }
        }
        #expect(holder == nil, "serve answered while the database was locked: \(served.log)")
        #expect(try await served.send(.POST, Self.book, user: "alice").status == 201)
        // The log's lines are written by a thread of their own, in order.
        _ = await eventually(within: .seconds(10)) { served.log.contains(#""route":"book","status":201"#) }
        #expect(served.log.contains("longer than --busy-timeout; waiting for it") && served.log.contains("the database is free again"),
                "\(served.log)")
    }

    /// Every kind of bad input at once, then the database: the same counters, no new event.
    @Test func badInputChangesNothing() async throws {
        let served = try Self.served()
        let held = try #require(try await served.send(.POST, Self.book, user: "alice")[field: "id"])
        let before = try snapshot(served)
        let requests: [(HTTPMethod, String, String?, [(String, String)], String?)] = [
            (.POST, Self.book, nil, [], "{}"),
            (.POST, Self.book, "bob", [("Content-Type", "text/plain")], "{}"),
            (.POST, Self.book, "bob", [], "{"),
            (.POST, Self.book, "bob", [], #"{"key": 1}"#),
            (.POST, Self.book, "bob", [], String(repeating: " ", count: 5000)),
            (.POST, Self.book, "bob", [("Accept", "text/html")], "{}"),
            (.POST, Self.book, "bob", [("X-Pad", String(repeating: "p", count: 17 * 1024))], "{}"),
            (.PATCH, Self.book, "bob", [], "{}"),
            (.POST, "/booking-service/book-item/s1%00", "bob", [], "{}"),
            (.POST, "/booking-service/requests/s1", "bob", [], #"{"key": false}"#),
            (.PUT, bookingPath("s1", held), "alice", [], #"{"status": "cancelled"}"#),
            (.PUT, bookingPath("s1", held), "bob", [], #"{"status": "booked"}"#),
            (.DELETE, bookingPath("s1", held), "bob", [], nil),
            (.DELETE, bookingPath("s1", held), "alice", [], #"{"status": "nope"}"#),
            (.POST, Self.book, "bob", [("User-Agent", String(repeating: "a", count: 1025))], "{}"),
        ]
        for (method, path, user, headers, body) in requests {
            let answer = try await served.send(method, path, user: user, headers: headers, body: body)
            #expect((400..<500).contains(answer.status), "\(method) \(path): \(answer.status) \(answer.body)")
        }
        #expect(try snapshot(served) == before)
    }

    /// The sale's counters, its bookings and the event log, as the command line reads them.
    private func snapshot(_ served: ServedDatabase) throws -> [String] {
        try [["status", "s1", "--json"], ["bookings", "s1", "--json"], ["events"], ["verify"]].map { try served.flashsale($0).stdout }
    }
}
