import Foundation
import Glibc
import JWTKit
import Testing
import FlashSaleTestSupport

/// One server-sent event: its `id:` and its `data:`.
struct ServerSentEvent: Equatable, CustomStringConvertible {
    let id: String
    let data: String

    var description: String { "\(id) \(data)" }
}

extension StreamingAnswer {
    /// The events so far (comments left out), each with when its last part arrived.
    var events: [(event: ServerSentEvent, at: ContinuousClock.Instant)] { StreamingAnswer.events(in: parts) }

    /// The events of a body that arrived in `parts`.
    static func events(in parts: [(text: String, at: ContinuousClock.Instant)]) -> [(event: ServerSentEvent, at: ContinuousClock.Instant)] {
        var found: [(event: ServerSentEvent, at: ContinuousClock.Instant)] = []
        var pending = ""
        for part in parts {
            pending += part.text
            var start = pending.startIndex
            while let end = pending[start...].range(of: "\n\n") {
                var id: String?
                var data: [Substring] = []
                for line in pending[start..<end.lowerBound].split(separator: "\n") {
                    if line.hasPrefix("id: ") { id = String(line.dropFirst(4)) }
                    if line.hasPrefix("data: ") { data.append(line.dropFirst(6)) }
                }
                start = end.upperBound
                if let id, !data.isEmpty { found.append((ServerSentEvent(id: id, data: data.joined(separator: "\n")), part.at)) }
            }
            pending = String(pending[start...])
        }
        return found
    }
}

/// The events of a raw HTTP/1.1 answer with a chunked body: its head left out, its chunks
/// joined, then read as a stream's body. Bytes, not characters: "\r\n" is one Character.
func events(ofRawAnswer raw: String) -> [ServerSentEvent] {
    var bytes = Array(raw.utf8)[...]
    let crlf = Array("\r\n".utf8)
    func nextLine() -> ArraySlice<UInt8>? {
        guard let end = bytes.indices.first(where: { bytes[$0...].starts(with: crlf) }) else { return nil }
        defer { bytes = bytes[(end + 2)...] }
        return bytes[..<end]
    }
    while let line = nextLine(), !line.isEmpty {}
    var body: [UInt8] = []
    while let line = nextLine(), let size = Int(String(decoding: line, as: UTF8.self), radix: 16), size > 0, bytes.count >= size + 2 {
        body += bytes.prefix(size)
        bytes = bytes.dropFirst(size + 2)
    }
    return StreamingAnswer.events(in: [(String(decoding: body, as: UTF8.self), ContinuousClock.now)]).map(\.event)
}

extension ServedDatabase {
    /// `GET /booking-service/events` as `user`, answered 200 and left open.
    func follow(_ user: String, lastEventID: String? = nil) async throws -> StreamingAnswer {
        let stream = try await HTTPClient.stream(.GET, "/booking-service/events", port: port,
                                                 headers: [("X-User", user)] + (lastEventID.map { [("Last-Event-ID", $0)] } ?? []))
        guard stream.status == 200 else { throw Failed("events for \(user): \(stream.status) \(stream.body)") }
        return stream
    }

    /// The user's events after `seq`, as the stream should carry them: the `events`
    /// command's line as the data, its seq as the id.
    func expectedEvents(of user: String, after seq: Int64) throws -> [ServerSentEvent] {
        try eventLines(after: seq).compactMap { line in
            let event = try object(line)
            guard event["user"] as? String == user, let seq = event["seq"] as? Int else { return nil }
            return ServerSentEvent(id: String(seq), data: line)
        }
    }

    /// A hold for `user` over HTTP: its booking id.
    func hold(_ user: String) async throws -> String {
        let answer = try await send(.POST, "/booking-service/book-item/s1", user: user)
        guard answer.status == 201, let id = try object(answer.body)["id"] as? String else {
            throw Failed("book for \(user): \(answer.status) \(answer.body)")
        }
        return id
    }

    /// A stream of `user`'s whose client reads nothing (a small receive buffer, never read
    /// until the test says), returned once the server has opened it.
    func unreadStream(of user: String) async throws -> BlockingConnection {
        let opened = "flashsale_http_requests_total{route=\"events\",status=\"200\"}"
        let before = try await metrics()[opened] ?? 0
        let connection = try BlockingConnection(port: port, receiveBuffer: 4096)
        try connection.write("GET /booking-service/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User: \(user)\r\n\r\n")
        guard try await waitForMetric(opened, toBe: before + 1) else { throw Failed("the stream of \(user) did not open") }
        return connection
    }

    /// `count` events for `user` at once, more than a stream's backlog: a hold from the
    /// queue, then rejections (the user's limit).
    func burstOfEvents(for user: String, count: Int) throws {
        let requests = directory + "/requests-\(UUID().uuidString).ndjson"
        try String(repeating: "{\"user\": \"\(user)\"}\n", count: count).write(toFile: requests, atomically: true, encoding: .utf8)
        try succeed(["submit", "s1", "--file", requests])
        try succeed(["process"])
    }

    /// The command line, which must exit 0.
    func succeed(_ arguments: [String], environment: [String: String] = [:]) throws {
        let result = try flashsale(arguments, environment: environment)
        guard result.status == .exit(0) else { throw Failed("\(arguments): \(result.status) \(result.stderr)") }
    }
}

extension LoadTests {
    /// `GET /booking-service/events` (http.md, "Live updates"): each change to the user's own
    /// bookings and requests, whichever process made it, once, in order, resumable.
    @Suite struct EventStreamTests {
        @Test(arguments: ServedStore.all)
        func aFollowerSeesEachOfItsChangesOnceInOrderWhicheverProcessMadeThem(store: ServedStore) async throws {
            let served = try ServedDatabase(store)
            try served.createSale(inventory: 10, ["--per-user", "5", "--hold", "5m"])
            try served.start()
            let start = try served.latestSeq()
            let alice = try await served.follow("alice")
            let bob = try await served.follow("bob")
            // Past every hold's expiry: sweep and process decide there.
            let later = ["FLASHSALE_NOW": String(Int(Date().timeIntervalSince1970) + 600)]

            var latencies: [String] = []
            var seen = 0
            /// Makes one change of alice's, then waits for her stream to carry it (http.md: within
            /// 100 ms; 5 s here, for a loaded machine, and the latency printed).
            func change(_ name: String, _ make: () async throws -> Void) async throws {
                let began = ContinuousClock.now
                try await make()
                let made = ContinuousClock.now
                seen += 1
                #expect(await alice.wait { $0.events.count >= seen }, "\(name): no event within 5 s")
                if let arrived = alice.events.dropFirst(seen - 1).first?.at {
                    let since = (began: milliseconds(arrived - began), made: milliseconds(arrived - made))
                    latencies.append("\(name): \(since.began.rounded()) ms after it began, \(since.made.rounded()) ms after it returned")
                }
            }

            _ = try await served.hold("bob")
            var booking = ""
            try await change("held over HTTP") { booking = try await served.hold("alice") }
            try await change("booked over HTTP") {
                let confirmed = try await served.send(.PUT, "/booking-service/book-item/s1/\(booking)", user: "alice",
                                                      body: "{\"status\": \"booked\"}")
                #expect(confirmed.status == 200)
            }
            try await change("cancel --force") { try served.succeed(["cancel", "s1", booking, "--force"]) }
            try await change("held over HTTP") { booking = try await served.hold("alice") }
            try await change("sweep") { try served.succeed(["sweep"], environment: later) }
            let submitted = try await served.send(.POST, "/booking-service/requests/s1", user: "alice")
            #expect(submitted.status == 202)
            try await change("process") { try served.succeed(["process"], environment: later) }
            let accepted = try #require(served.bookings().values.first { $0["user"] as? String == "alice" && $0["status"] as? String == "held" })
            try await change("cancelled over HTTP") {
                let cancelled = try await served.send(.DELETE, "/booking-service/book-item/s1/\(accepted["id"] as? String ?? "")",
                                                      user: "alice")
                #expect(cancelled.status == 200)
            }
            print("SSE latency: " + latencies.joined(separator: "; "))

            let expected = try served.expectedEvents(of: "alice", after: start)
            #expect(expected.count == 7)
            #expect(alice.events.map(\.event) == expected)
            #expect(await bob.wait { $0.events.count >= 2 })
            #expect(bob.events.map(\.event) == (try served.expectedEvents(of: "bob", after: start)))
            alice.close()
            bob.close()
        }

        @Test(arguments: ServedStore.all)
        func aStreamResumesAfterLastEventIDWithoutGapsOrRepeats(store: ServedStore) async throws {
            let served = try ServedDatabase(store)
            try served.createSale(inventory: 10, ["--per-user", "5"])
            try served.start()
            let first = try await served.follow("alice")
            let booking = try await served.hold("alice")
            #expect(await first.wait { $0.events.count == 1 })
            let last = try #require(first.events.first?.event.id)
            first.close()

            // Missed while away: changes over HTTP and from the command line, and someone else's.
            let confirmed = try await served.send(.PUT, "/booking-service/book-item/s1/\(booking)", user: "alice",
                                                  body: "{\"status\": \"booked\"}")
            #expect(confirmed.status == 200)
            try served.succeed(["cancel", "s1", booking, "--force"])
            _ = try await served.hold("bob")
            let second = try await served.hold("alice")

            let resumed = try await served.follow("alice", lastEventID: last)
            #expect(await resumed.wait { $0.events.count >= 3 })
            let cancelled = try await served.send(.DELETE, "/booking-service/book-item/s1/\(second)", user: "alice")
            #expect(cancelled.status == 200)
            #expect(await resumed.wait { $0.events.count >= 4 })
            let expected = try served.expectedEvents(of: "alice", after: try #require(Int64(last)))
            #expect(expected.count == 4)
            #expect(resumed.events.map(\.event) == expected)
            resumed.close()
        }

        @Test(arguments: ["abc", "-1", "+3", "1.5", "99999999999999999999", "3 4", "1000"])
        func aLastEventIDThatIsNoEventIDIs400(id: String) async throws {
            let served = try ServedDatabase()
            try served.createSale(inventory: 1)
            try served.start()
            let answer = try await served.send(.GET, "/booking-service/events", user: "alice", headers: [("Last-Event-ID", id)])
            #expect(answer.status == 400)
            #expect(try (object(answer.body)["error"] as? [String: Any])?["code"] as? String == "bad_input")
        }

        /// Found by probing: a client that closed its stream was noticed only at the next
        /// heartbeat (15 s), its connection (a descriptor, a place under --max-connections)
        /// held until then. Its close now closes the connection at once.
        @Test func aStreamsClientThatLeavesGivesUpItsConnectionAtOnce() async throws {
            let served = try ServedDatabase()
            try served.createSale(inventory: 1)
            try served.start()
            let stream = try await RawConnection.open(port: served.port,
                                                      sending: "GET /booking-service/events HTTP/1.1\r\nHost: x\r\nX-User: alice\r\n\r\n")
            #expect(await stream.answer(contains: ": following", within: .seconds(10)))
            try await stream.closeOutput()
            #expect(await stream.closed(within: .seconds(3)))
            // Or that closes its side with its request, before the stream begins: it was
            // held open through the heartbeats.
            let early = try await RawConnection.open(port: served.port)
            try await early.send("GET /booking-service/events HTTP/1.1\r\nHost: x\r\nX-User: alice\r\n\r\n")
            try await early.closeOutput()
            #expect(await early.closed(within: .seconds(3)), "\(early.answer)")
            // Answered before the close, not closed on with nothing said.
            #expect(early.answer.hasPrefix("HTTP/1.1 200 "), "\(early.answer)")
        }

        /// A change another process committed just before the stream opened is history:
        /// the stream starts after it, even if the server has not looked at the log since.
        @Test func withoutLastEventIDOnlyEventsAfterTheStreamOpened() async throws {
            let served = try ServedDatabase()
            try served.createSale(inventory: 20, ["--per-user", "20"])
            try served.start()
            for _ in 0..<5 {
                try served.succeed(["book", "s1", "alice"])
                let stream = try await served.follow("alice")
                let booking = try await served.hold("alice")
                #expect(await stream.wait { $0.events.count >= 1 })
                #expect(stream.events.map { $0.event.data.contains(booking) } == [true])
                stream.close()
            }
        }

        /// Two servers on one file, each following the log at its own pace: a client that
        /// saw an event on the one and resumes on the other does not see it again.
        @Test func resumingOnAnotherServerRepeatsNothing() async throws {
            let first = try ServedDatabase()
            try first.createSale(inventory: 20, ["--per-user", "20"])
            try first.start()
            let second = try ServedDatabase(sharing: first)
            try second.start()
            for _ in 0..<5 {
                let onFirst = try await first.follow("alice")
                _ = try await first.hold("alice")
                #expect(await onFirst.wait { $0.events.count == 1 })
                let seen = try #require(onFirst.events.first?.event.id)
                onFirst.close()

                let onSecond = try await second.follow("alice", lastEventID: seen)
                let booking = try await second.hold("alice")
                #expect(await onSecond.wait { $0.events.contains { $0.event.data.contains(booking) } })
                #expect(onSecond.events.map { $0.event.data.contains(booking) } == [true], "resumed after \(seen)")
                onSecond.close()
            }
        }

        /// A client that stops reading (a frozen tab) falls behind until its stream's backlog
        /// is full: that stream ends, and everyone else's go on; nor does SIGTERM wait for it.
        @Test func aStreamWhoseClientStoppedReadingEndsAloneAndDoesNotHoldUpSIGTERM() async throws {
            let served = try ServedDatabase()
            try served.createSale(inventory: 2)
            try served.start()
            // The longest user id: the 10,000 events her stream holds (3.9 MB) are more than
            // the kernel's send buffer takes (4 MiB with its overhead, Debian's largest), so
            // the server's writes wait for a client that reads nothing.
            let alice = String(repeating: "a", count: 256)
            let stuck = try await served.unreadStream(of: alice)
            let bob = try await served.follow("bob")
            try served.burstOfEvents(for: alice, count: 20_000)
            // Bob's event comes after all of alice's: once he has it, hers were handed out.
            _ = try await served.hold("bob")
            #expect(await bob.wait(within: .seconds(20)) { $0.events.count == 1 }, "\(served.log)")
            served.server?.send(SIGTERM)
            #expect(await served.exit(within: .seconds(15)) == .exit(0), "http.md: exit 0 within 10 s of SIGTERM; \(served.log)")
            // Connected, reading nothing, until the server is gone.
            withExtendedLifetime(stuck) {}
        }

        /// Found by probing: a client that read nothing kept its stream, and SIGTERM waited 60
        /// s for it, when what waited for it in the server was under NIO's high-water mark
        /// (64 KiB): the kernel's buffer full, a few hundred events behind. Events come a
        /// hundred at a time until the kernel takes no more (most at once, less than the 2
        /// MB it took here); the connection then ends within its 10 s.
        @Test func aStreamEndsOnceItsClientHasReadNothingFor10sWhateverWaitsForIt() async throws {
            let served = try ServedDatabase()
            try served.createSale(inventory: 2)
            try served.start()
            let stuck = try await served.unreadStream(of: "heavy")
            let (server, client) = (served.port, stuck.localPort)
            try served.burstOfEvents(for: "heavy", count: 8_000)
            var queued = -1
            for _ in 0..<400 {
                try await Task.sleep(for: .milliseconds(300))
                let socket = try #require(KernelSocket(local: server, remote: client), "the connection ended before the kernel's buffer filled")
                if socket.sent == queued { break }
                queued = socket.sent
                try served.burstOfEvents(for: "heavy", count: 100)
            }
            _ = await eventually(within: .seconds(20), every: .milliseconds(200)) {
                KernelSocket(local: server, remote: client)?.established != true
            }
            #expect(KernelSocket(local: server, remote: client)?.established != true,
                    "still open with \(queued) bytes in the kernel: \(served.log)")
            served.server?.send(SIGTERM)
            #expect(await served.exit(within: .seconds(10)) == .exit(0), "\(served.log)")
            withExtendedLifetime(stuck) {}
        }

        /// A stream that fell behind ends at the last event it holds: resumed from there, it
        /// misses nothing and repeats nothing.
        @Test func aStreamThatFellBehindResumesWithoutAGap() async throws {
            let served = try ServedDatabase()
            try served.createSale(inventory: 1)
            try served.start()
            let start = try served.latestSeq()
            let slow = try await served.unreadStream(of: "alice")
            try served.burstOfEvents(for: "alice", count: 20_000)

            // Read late: what the stream held, to its end.
            let first = events(ofRawAnswer: slow.readToEnd(within: 20, orThrough: "\r\n0\r\n\r\n"))
            let expected = try served.expectedEvents(of: "alice", after: start)
            #expect(first.count >= 1 && first.count < expected.count, "the stream ended after \(first.count) of \(expected.count)")
            let last = try #require(first.last?.id)
            let resumed = try await served.follow("alice", lastEventID: last)
            #expect(await resumed.wait(within: .seconds(20)) { $0.body.contains("id: \(expected.last?.id ?? "")\n") })
            #expect(first + resumed.events.map(\.event) == expected)
            resumed.close()
        }

        /// Found by probing: one user's streams could take every place of --max-connections.
        /// A user's stream past `streamsPerUser` ends their oldest; nobody else's.
        @Test func aUsersStreamPastSixteenEndsTheirOldestAlone() async throws {
            let served = try ServedDatabase()
            try served.createSale(inventory: 10)
            try served.start()
            let bob = try await served.follow("bob")
            var alices: [StreamingAnswer] = []
            for _ in 0..<16 { alices.append(try await served.follow("alice")) }
            let seventeenth = try await served.follow("alice")
            #expect(await alices[0].wait { $0.ended }, "the oldest of alice's streams goes on")
            // And its connection with it (found by review: kept, it held its place of
            // --max-connections, and could ask for another stream).
            #expect(alices[0].headers["connection"] == ["close"])
            #expect(await alices[0].wait { !$0.isConnected }, "the displaced stream's connection stays open")
            _ = try await served.hold("alice")
            _ = try await served.hold("bob")
            for stream in alices.dropFirst() + [seventeenth] {
                #expect(await stream.wait { $0.events.count == 1 })
                #expect(!stream.ended)
            }
            #expect(await bob.wait { $0.events.count == 1 })
            #expect(!bob.ended)
            for stream in alices + [seventeenth, bob] { stream.close() }
        }

        /// Found by probing: a stream went on after its token expired, for as long as the
        /// connection lasted. It ends when a request with the token would be refused (exp
        /// and the 30 s of leeway), and a stream whose token holds longer goes on.
        @Test func aStreamEndsWhenItsTokenExpires() async throws {
            let secret = "stream-secret-stream-secret-0001"
            let served = try AuthenticationTests.served(key: secret)
            var expiring = TestClaims()
            // Signed just before it is sent: 15 s left with the leeway, for a loaded machine.
            expiring.exp = ExpirationClaim(value: TestClaims.at(-15))
            let stream = try await HTTPClient.stream(.GET, "/booking-service/events", port: served.port,
                                                     headers: bearer(Tokens.hs256(expiring, secret: secret)))
            #expect(stream.status == 200, "\(stream.body)")
            let lasting = try await HTTPClient.stream(.GET, "/booking-service/events", port: served.port,
                                                      headers: bearer(Tokens.hs256(secret: secret)))
            #expect(await stream.wait(within: .seconds(40)) { $0.ended }, "the stream outlived its token")
            #expect(!lasting.ended)
            let held = try await served.send(.POST, AuthenticationTests.bookings, headers: bearer(Tokens.hs256(secret: secret)))
            #expect(held.status == 201)
            #expect(await lasting.wait { $0.events.count == 1 })
            lasting.close()
        }

        @Test func sigtermEndsOpenStreamsAndExitsZeroPromptly() async throws {
            let served = try ServedDatabase()
            try served.createSale(inventory: 10)
            try served.start()
            let streams = [try await served.follow("alice"), try await served.follow("bob"), try await served.follow("alice")]
            _ = try await served.hold("alice")
            #expect(await streams[0].wait { $0.events.count == 1 })
            let signalled = ContinuousClock.now
            served.server?.send(SIGTERM)
            #expect(await served.exit(within: .seconds(10)) == .exit(0), "\(served.log)")
            print("SIGTERM with open streams: exited in \(milliseconds(ContinuousClock.now - signalled)) ms")
            #expect(await streams[0].wait(within: .seconds(1)) { _ in streams.allSatisfy(\.ended) })
        }
    }
}
