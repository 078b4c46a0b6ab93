import Foundation
import Glibc
import Testing
@testable import FlashSaleServer
import FlashSaleTestSupport

/// What HTTP/1 asks of a server that Hummingbird's HTTP types, which carry no version, left
/// undone (`HTTP1Rules`), and what serve says when it cannot listen.
@Suite struct HTTP1RulesTests {
    static let sale = "/booking-service/sales/s1"

    /// An HTTP/1.0 client is answered in HTTP/1.0 and its connection closed after the
    /// answer: it was kept open for the idle timeout, and the live stream came chunked.
    @Test func anHTTP10RequestIsAnsweredInHTTP10AndItsConnectionClosed() async throws {
        let served = try HostileHTTPTests.served()
        let plain = try await RawConnection.open(port: served.port, sending: "GET \(Self.sale) HTTP/1.0\r\n\r\n")
        #expect(await plain.closed(within: .seconds(5)), "\(plain.answer)")
        #expect(plain.answer.hasPrefix("HTTP/1.0 200 OK\r\n"), "\(plain.answer)")
        #expect(plain.answer.contains("\r\nConnection: close\r\n"), "\(plain.answer)")
        #expect(plain.answer.hasSuffix("}"), "\(plain.answer)")

        let stream = try await RawConnection.open(port: served.port, sending: "GET /booking-service/events HTTP/1.0\r\nX-User: alice\r\n\r\n")
        #expect(await stream.answer(contains: ": following", within: .seconds(5)), "\(stream.answer)")
        #expect(stream.answer.hasPrefix("HTTP/1.0 200 OK\r\n"), "\(stream.answer)")
        #expect(!stream.answer.lowercased().contains("transfer-encoding"), "\(stream.answer)")
    }

    /// Found by probing: an HTTP/1.0 POST with a body's type and no length was a booking
    /// made without the body, so without its key, and a retry held twice. It is 411, nothing
    /// is made, and the connection closes. In HTTP/1.1 such a request has no body (RFC 9112,
    /// 6.3), as curl sends `-X POST -H 'Content-Type: application/json'`: `{}`, a booking.
    @Test func anHTTP10BodyWithoutALengthIs411AndMakesNothing() async throws {
        let served = try HostileHTTPTests.served()
        let raw = try await RawConnection.open(port: served.port, sending: "POST /booking-service/book-item/s1 HTTP/1.0\r\n"
            + "X-User: alice\r\nContent-Type: application/json\r\n\r\n{\"key\":\"k1\"}")
        #expect(await raw.closed(within: .seconds(5)), "\(raw.answer)")
        #expect(raw.answer.hasPrefix("HTTP/1.0 411 Length Required\r\n"), "\(raw.answer)")
        #expect(raw.answer.contains("\"code\":\"bad_input\""), "\(raw.answer)")
        #expect(raw.answer.components(separatedBy: "\r\n\r\n").count == 2, "one answer only: \(raw.answer)")
        // Nor without a type (probe of the change).
        let untyped = try await RawConnection.open(port: served.port, sending: "POST /booking-service/book-item/s1 HTTP/1.0\r\n"
            + "X-User: alice\r\n\r\n{\"key\":\"k1\"}")
        #expect(await untyped.closed(within: .seconds(5)), "\(untyped.answer)")
        #expect(untyped.answer.hasPrefix("HTTP/1.0 411 Length Required\r\n"), "\(untyped.answer)")
        #expect(try served.flashsale(["status", "s1", "--json"]).stdout.contains(#""held":0"#))

        let bodiless = try await RawConnection.open(port: served.port, sending: "POST /booking-service/book-item/s1 HTTP/1.1\r\n"
            + "Host: x\r\nX-User: alice\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        #expect(await bodiless.closed(within: .seconds(5)))
        #expect(bodiless.answer.hasPrefix("HTTP/1.1 201 Created\r\n"), "\(bodiless.answer)")
    }

    /// The admin listener keeps the same rules: an HTTP/1.0 health checker was answered
    /// in HTTP/1.1 and its connection kept open for the idle timeout.
    @Test func theAdminListenerAnswersHTTP10AndCloses() async throws {
        let served = try HostileHTTPTests.served()
        let raw = try await RawConnection.open(port: served.adminPort, sending: "GET /healthz HTTP/1.0\r\n\r\n")
        #expect(await raw.closed(within: .seconds(5)), "\(raw.answer)")
        #expect(raw.answer.hasPrefix("HTTP/1.0 200 OK\r\n") && raw.answer.hasSuffix("ok\n"), "\(raw.answer)")
    }

    /// `Expect: 100-continue` is answered with `100 Continue` before the body is sent
    /// (RFC 9110, 10.1.1): the client waited for it, curl a second. The body follows half
    /// a second later from the connection's event loop (`Timed`): sent from the test's
    /// task, which a full run may keep waiting for a thread, it came after the server's
    /// 10 s for a body.
    @Test func expectContinueIsAnsweredBeforeTheBody() async throws {
        let served = try HostileHTTPTests.served()
        let raw = try await RawConnection.open(port: served.port, script: [
            Timed(after: .zero, "POST /booking-service/book-item/s1 HTTP/1.1\r\nHost: x\r\nX-User: alice\r\n"
                  + "Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"),
            Timed(after: .milliseconds(500), "{}"),
        ])
        #expect(await raw.answer(contains: "HTTP/1.1 201 Created", within: .seconds(10)), "\(raw.answer)")
        #expect(raw.answer.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created"), "\(raw.answer)")
        #expect(try served.flashsale(["status", "s1", "--json"]).stdout.contains(#""held":1"#))
    }

    /// Behind another request on the same connection, the 100 waits for that request's
    /// answer to be whole: written at once, it went into the answer being sent (and ended
    /// the chunking of a live stream).
    @Test func aPipelinedExpectContinueWaitsForTheAnswerBeforeIt() async throws {
        let served = try HostileHTTPTests.served()
        let raw = try await RawConnection.open(port: served.port, script: [
            Timed(after: .zero, "GET \(Self.sale) HTTP/1.1\r\nHost: x\r\n\r\n"
                  + "POST /booking-service/book-item/s1 HTTP/1.1\r\nHost: x\r\nX-User: alice\r\nContent-Type: application/json\r\n"
                  + "Content-Length: 2\r\nExpect: 100-continue\r\n\r\n"),
            Timed(after: .milliseconds(500), "{}"),
        ])
        #expect(await raw.answer(contains: "HTTP/1.1 201 Created", within: .seconds(10)), "\(raw.answer)")
        let continued = try #require(raw.answer.range(of: "HTTP/1.1 100 Continue"), "\(raw.answer)")
        let first = try #require(raw.answer.range(of: "HTTP/1.1 200 OK"))
        #expect(first.lowerBound < continued.lowerBound, "\(raw.answer)")
        #expect(raw.answer[..<continued.lowerBound].hasSuffix("}"), "the 100 cut the answer before it: \(raw.answer)")
    }

    /// RFC 9112, 3.2: an HTTP/1.1 request without Host MUST be 400. Counted and logged as
    /// every answer is, with route none.
    @Test func anHTTP11RequestWithoutHostIs400AndCounted() async throws {
        let served = try HostileHTTPTests.served()
        // A booking behind it on the same connection is never made: the connection closes.
        let raw = try await RawConnection.open(port: served.port, sending: "GET \(Self.sale) HTTP/1.1\r\n\r\n"
            + "POST /booking-service/book-item/s1 HTTP/1.1\r\nHost: x\r\nX-User: alice\r\n\r\n")
        #expect(await raw.closed(within: .seconds(5)))
        #expect(raw.answer.hasPrefix("HTTP/1.1 400"), "\(raw.answer)")
        #expect(raw.answer.contains(#""message":"a request needs exactly one Host header""#), "\(raw.answer)")
        #expect(!raw.answer.contains("201"), "\(raw.answer)")
        // Two, words or a list, in any version; and HTTP/1.0 has no chunked bodies.
        for request in ["GET \(Self.sale) HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "GET \(Self.sale) HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
                        "GET \(Self.sale) HTTP/1.1\r\nHost: a b\r\n\r\n", "GET \(Self.sale) HTTP/1.1\r\nHost: a, b\r\n\r\n",
                        // A user, a path, a query, two ports, a port past 65535, an IPv6 literal that is none.
                        "GET \(Self.sale) HTTP/1.1\r\nHost: u@a\r\n\r\n", "GET \(Self.sale) HTTP/1.1\r\nHost: a/b\r\n\r\n",
                        "GET \(Self.sale) HTTP/1.1\r\nHost: a?b\r\n\r\n", "GET \(Self.sale) HTTP/1.1\r\nHost: a:80:90\r\n\r\n",
                        "GET \(Self.sale) HTTP/1.1\r\nHost: a:99999\r\n\r\n", "GET \(Self.sale) HTTP/1.1\r\nHost: [zz]:80\r\n\r\n",
                        "POST /booking-service/book-item/s1 HTTP/1.0\r\nX-User: bob\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"] {
            let refused = try await RawConnection.open(port: served.port, sending: request)
            #expect(await refused.closed(within: .seconds(5)))
            // In the request's version, dated as every answer is.
            let version = request.contains(" HTTP/1.0\r\n") ? "HTTP/1.0" : "HTTP/1.1"
            #expect(refused.answer.hasPrefix("\(version) 400"), "\(request.debugDescription): \(refused.answer)")
            #expect(refused.answer.contains("\r\ndate: ") || refused.answer.contains("\r\nDate: "), "\(refused.answer)")
            // Never stored, as every other error (found by probing: these had no Cache-Control).
            #expect(refused.answer.lowercased().contains("\r\ncache-control: no-store\r\n"), "\(refused.answer)")
        }
        #expect(try served.flashsale(["status", "s1", "--json"]).stdout.contains(#""held":0"#))
        #expect(try await served.metrics()[#"flashsale_http_requests_total{route="none",status="400"}"#] == 12)
        // The log is written by a thread of its own: waited for.
        _ = await eventually(within: .seconds(5)) { served.log.contains(#""route":"none","status":400"#) }
        #expect(served.log.contains(#""method":"-","peer":"127.0.0.1","request_id":"#) && served.log.contains(#""route":"none","status":400"#),
                "\(served.log)")
    }

    /// A refusal of what follows pipelined requests waits until each of them is answered
    /// whole: sent after the first answer, it took the booking's place, so a committed
    /// hold read as 400.
    @Test func aRefusalFollowsEveryAnswerBeforeIt() async throws {
        let served = try HostileHTTPTests.served()
        let raw = try await RawConnection.open(port: served.port, sending: "GET \(Self.sale) HTTP/1.1\r\nHost: x\r\n\r\n"
            + "POST /booking-service/book-item/s1 HTTP/1.1\r\nHost: x\r\nX-User: alice\r\nContent-Type: application/json\r\n"
            + "Content-Length: 2\r\n\r\n{}" + "GET \(Self.sale) HTTP/1.1\r\nHost: x\r\nX-Bad\u{1}: y\r\n\r\n")
        #expect(await raw.closed(within: .seconds(5)))
        let statuses = raw.answer.components(separatedBy: "HTTP/1.1 ").compactMap { Int($0.prefix(3)) }
        #expect(statuses == [200, 201, 400], "\(raw.answer)")
    }

    /// Bytes after a request that closes the connection are no request: one answer, not
    /// an unasked-for 400 after it. And a request answered before its body, whose client
    /// then goes, is counted once.
    @Test func bytesAfterAClosingRequestGetNoAnswer() async throws {
        let served = try HostileHTTPTests.served()
        for request in ["GET \(Self.sale) HTTP/1.0\r\n\r\nx", "GET \(Self.sale) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGARBAGE\r\n\r\n"] {
            let raw = try await RawConnection.open(port: served.port, sending: request)
            #expect(await raw.closed(within: .seconds(5)))
            let statuses = raw.answer.components(separatedBy: "HTTP/1.").dropFirst().map { $0.dropFirst(2).prefix(3) }
            #expect(statuses == ["200"], "\(request.debugDescription): \(raw.answer)")
        }
        let gone = try await RawConnection.open(port: served.port, sending: "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        #expect(await gone.answer(contains: "404", within: .seconds(5)))
        try await gone.close()
        #expect(try await served.send(.GET, Self.sale).status == 200)
        let counted = try await served.metrics().filter { $0.key.hasPrefix("flashsale_http_requests_total{") }
        #expect(counted.values.reduce(0, +) == 4, "\(counted)")
        #expect(counted[#"flashsale_http_requests_total{route="none",status="404"}"#] == 1, "\(counted)")
    }

    /// Requests that come with their client's close of its side (a FIN in the same flush)
    /// are each answered before the connection closes: closed at once, with the last
    /// answer still queued, the connection dropped it (found leaving HTTP1Channel).
    @Test func requestsSentWithTheClientsCloseAreAllAnswered() async throws {
        let served = try HostileHTTPTests.served()
        for count in 1...3 {
            let raw = try await RawConnection.open(port: served.port, script: [
                Timed(after: .zero, String(repeating: "GET \(Self.sale) HTTP/1.1\r\nHost: x\r\n\r\n", count: count)),
                .closingOutput(after: .zero),
            ])
            #expect(await raw.closed(within: .seconds(5)), "\(raw.answer)")
            #expect(raw.answer.components(separatedBy: "HTTP/1.1 200 OK").count == count + 1, "\(count): \(raw.answer)")
        }
    }

    /// After a request that closes the connection, what follows is not passed on: passed
    /// on, it counted as in progress, and the idle connection was never timed out. And a
    /// request answered without reading its broken body gets no second, bare 400.
    @Test func aClosingRequestEndsTheConnectionAndOneRequestHasOneAnswer() async throws {
        let served = try HostileHTTPTests.served()
        for request in ["GET \(Self.sale) HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET \(Self.sale) HTTP/1.0\r\n\r\n",
                        "GET \(Self.sale) HTTP/1.1\r\nHost: x\r\nUpgrade: a\r\n\r\nGET \(Self.sale) HTTP/1.1\r\nHost: x\r\n\r\n",
                        "POST /booking-service/book-item/s1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"] {
            let raw = try await RawConnection.open(port: served.port, sending: request)
            #expect(await raw.closed(within: .seconds(5)), "\(request.debugDescription): \(raw.answer)")
            #expect(raw.answer.components(separatedBy: "HTTP/1.").count == 2, "\(request.debugDescription): \(raw.answer)")
        }
    }

    /// A body past the limit that the client waits to send (`Expect: 100-continue`) is
    /// refused without the 100, and the connection closed: the server would otherwise
    /// wait for those bytes and read the next request as them.
    @Test func aBodyPastTheLimitIsRefusedAndItsConnectionClosed() async throws {
        let served = try HostileHTTPTests.served()
        let raw = try await RawConnection.open(port: served.port, sending: "POST /booking-service/book-item/s1 HTTP/1.1\r\nHost: x\r\n"
            + "X-User: alice\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
        #expect(await raw.closed(within: .seconds(5)), "\(raw.answer)")
        #expect(raw.answer.hasPrefix("HTTP/1.1 413"), "\(raw.answer)")
        #expect(raw.answer.contains("\r\nConnection: close\r\n") && !raw.answer.contains("100 Continue"), "\(raw.answer)")
    }

    /// A request that would take the connection over (CONNECT, Upgrade), which serve does
    /// not do, is answered and its connection closed: it went silent for 60 s. And the
    /// answer to `Connection: close` says it closes.
    @Test func connectUpgradeAndCloseEndTheConnectionAfterTheAnswer() async throws {
        let served = try HostileHTTPTests.served()
        for request in ["CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
                        "GET \(Self.sale) HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                        "GET \(Self.sale) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"] {
            let raw = try await RawConnection.open(port: served.port, sending: request)
            #expect(await raw.closed(within: .seconds(5)), "\(request.prefix(40).debugDescription): \(raw.answer)")
            #expect(raw.answer.contains("\r\nConnection: close\r\n"), "\(request.prefix(40).debugDescription): \(raw.answer)")
        }
    }

    /// Every answer's `Date` is the second it was written in, on both listeners
    /// (`HTTPDateTests` has the lag this mends).
    @Test func everyAnswersDateIsTheSecondItIsWrittenIn() async throws {
        let served = try HostileHTTPTests.served()
        for (port, path) in Array(repeating: [(served.port, Self.sale), (served.adminPort, "/healthz")], count: 5).joined() {
            let sent = time(nil)
            let answer = try await HTTPClient.send(.GET, path, port: port)
            let received = time(nil)
            let date = try #require(answer[header: "Date"])
            #expect((sent...received).map(HTTPDate.format).contains(date), "\(date), sent at \(HTTPDate.format(sent))")
        }
    }

    /// HEAD is GET without its body (RFC 9110: a general-purpose server MUST support
    /// both): it was 405. The connection goes on after it, the live stream's included,
    /// which answers its headers and starts no stream.
    @Test func headIsGetWithoutTheBody() async throws {
        let served = try HostileHTTPTests.served()
        let get = try await served.send(.GET, Self.sale)
        let raw = try await RawConnection.open(port: served.port, sending:
            "HEAD \(Self.sale) HTTP/1.1\r\nHost: x\r\n\r\n"
            + "HEAD /booking-service/events HTTP/1.1\r\nHost: x\r\nX-User: alice\r\n\r\n"
            + "HEAD /booking-service/book-item/s1 HTTP/1.1\r\nHost: x\r\nX-User: alice\r\n\r\n"
            + "GET \(Self.sale) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(await raw.closed(within: .seconds(5)), "\(raw.answer)")
        let answers = raw.answer.components(separatedBy: "HTTP/1.1 ").dropFirst()
        #expect(answers.map { $0.prefix(3) } == ["200", "200", "200", "200"], "\(raw.answer)")
        #expect(answers.first?.contains("\r\nContent-Length: \(get.body.utf8.count)\r\n") == true, "\(raw.answer)")
        #expect(answers.dropFirst().first?.contains("text/event-stream") == true, "\(raw.answer)")
        // A stream's length is not known: not Content-Length: 0, which GET never says.
        #expect(answers.dropFirst().first?.contains("Content-Length") == false, "\(raw.answer)")
        // Only the last, a GET, has a body.
        #expect(answers.dropLast().allSatisfy { $0.hasSuffix("\r\n\r\n") }, "\(raw.answer)")
        #expect(raw.answer.hasSuffix(get.body), "\(raw.answer)")
    }

    /// A listener that cannot listen is named, in words: "bind(descriptor:ptr:bytes:):
    /// Address already in use) (errno: 98)" said neither which of serve's nor why plainly.
    /// Said in serve's JSON log alone (found by probing: a plain line after it stopped `jq`),
    /// with no error of the other listeners' beside it.
    @Test func anAddressInUseIsNamed() async throws {
        let (taken, port) = try loopbackSocket(listening: true)
        defer { close(taken) }
        let served = try ServedDatabase()
        try served.createSale(inventory: 1)
        let result = try served.flashsale(["serve", "--listen", "127.0.0.1:\(port)", "--admin-listen", "127.0.0.1:\(try freePort())"]
                                          + ServedDatabase.headerAuth)
        #expect(result.status == .exit(73))
        let log = try logObjects(result.stderr)
        #expect(log.filter { $0["level"] as? String == "error" }.count == 1, "\(result.stderr)")
        #expect(log.last?["message"] as? String == "stopped", "\(result.stderr)")
        #expect(log.last?["error"] as? String == "cannot listen on 127.0.0.1:\(port): address already in use", "\(result.stderr)")
        // With --json the error object is on stdout still, as for every command.
        let json = try served.flashsale(["serve", "--json", "--listen", "127.0.0.1:\(port)", "--admin-listen", "127.0.0.1:\(try freePort())"]
                                        + ServedDatabase.headerAuth)
        #expect(json.status == .exit(73))
        #expect((try object(json.stdout)["error"] as? [String: Any])?["code"] as? String == "cant_open", "\(json.stdout)")
        #expect(try logObjects(json.stderr).last?["message"] as? String == "stopped", "\(json.stderr)")
    }

    /// A socket path that cannot be listened on is said as an address in use is, in the
    /// JSON log (found by probing: a plain line, before the log began).
    @Test func aSocketPathThatCannotBeListenedOnIsSaidInTheLog() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 1)
        let path = served.directory + "/not-a-socket"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        let result = try served.flashsale(["serve", "--socket", path, "--admin-listen", "127.0.0.1:\(try freePort())"]
                                          + ServedDatabase.headerAuth)
        #expect(result.status == .exit(73))
        let log = try logObjects(result.stderr)
        #expect(log.filter { $0["level"] as? String == "error" }.count == 1, "\(result.stderr)")
        #expect(log.last?["error"] as? String == "cannot listen on \(path): it is there and is not a socket", "\(result.stderr)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "x")
    }

    /// Found by probing: a host that does not resolve was NIO's error's Swift text.
    @Test func aHostThatDoesNotResolveIsNamed() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 1)
        let result = try served.flashsale(["serve", "--listen", "127.0.0.1:\(try freePort())", "--admin-listen", "no-such-host.invalid:9"]
                                          + ServedDatabase.headerAuth)
        #expect(result.status == .exit(73))
        let error = try logObjects(result.stderr).last?["error"] as? String ?? ""
        #expect(error.hasPrefix("cannot listen on no-such-host.invalid:9: "), "\(result.stderr)")
        #expect(!error.contains("SocketAddressError"), "\(result.stderr)")
    }
}
