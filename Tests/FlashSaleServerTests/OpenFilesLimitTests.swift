@testable import FlashSaleServer
import Glibc
import Testing

/// serve raises its soft limit of descriptors to the hard one, as Go's runtime does: a
/// service manager's soft 1,024 is far below `--max-connections`.
@Suite struct OpenFilesLimitTests {
    @Test func theSoftLimitIsRaisedToTheHardOne() throws {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        try #require(getrlimit(resource, &limit) == 0)
        // One below the hard limit: this process's own, so that the raise has something to
        // do and nothing running beside this test runs short.
        var lowered = limit
        lowered.rlim_cur = limit.rlim_max - 1
        try #require(setrlimit(resource, &lowered) == 0)
        #expect(OpenFilesLimit.raise() == UInt64(limit.rlim_max))
        var after = rlimit()
        try #require(getrlimit(resource, &after) == 0)
        #expect(after.rlim_cur == limit.rlim_max)
    }

    /// Found by probing: under an open files limit below --max-connections, the connections
    /// took every descriptor; accepting then failed over and over (a core spinning on
    /// EMFILE), and those past the limit waited in the kernel's queue, unserved and never
    /// closed. serve holds what the limit leaves beside its reserve, closes each one more as
    /// soon as it is accepted, and serves on.
    @Test func pastWhatTheOpenFilesLimitHoldsAConnectionIsClosedAtOnce() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        try served.start(openFiles: 128)
        let room = OpenFilesLimit.connections(asked: 10_000, openFiles: 128)
        try #require(room > 0 && room < 100, "\(room)")
        // Said in the log, which its writer thread may not have written yet.
        #expect(await eventually(within: .seconds(30), every: .milliseconds(20)) { served.log.contains(#""connections":\#(room)"#) },
                "\(served.log)")
        var connections: [RawConnection] = []
        for _ in 0..<150 { connections.append(try await RawConnection.open(port: served.port)) }
        // Well before the idle timeout (60 s), which would close them all in the end: looks
        // counted, not the clock, since the whole suite on two cores starves the server of
        // turns (a wait of its connections' lifetimes failed there, 4 of 86 under 30 s).
        let closed = await eventually(within: .seconds(30), every: .milliseconds(50)) {
            connections.filter { !$0.isOpen }.count >= 150 - room
        }
        #expect(closed, "\(connections.filter { !$0.isOpen }.count) of 150 closed")
        let open = try #require(connections.first { $0.isOpen })
        try await open.send("POST /booking-service/book-item/s1 HTTP/1.1\r\nHost: x\r\nX-User: alice\r\n"
                            + "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        #expect(await open.answer(contains: "HTTP/1.1 201", within: .seconds(30)), "\(open.answer)")
        #expect(try await HTTPClient.send(.GET, "/healthz", port: served.adminPort).status == 200)
    }

    /// With no descriptor left beside the reserve, serve would hold no connection: it says
    /// so and does not start.
    @Test func aLimitThatLeavesNoRoomIsRefusedAtStart() throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        let limit = Int(OpenFilesLimit.reserve)
        #expect(throws: (any Error).self) { try served.start(openFiles: limit) }
        #expect(served.log.contains("serve: the open files limit (\(limit)) leaves no descriptor for a buyer's connection beside the "
                                    + "\(limit) serve keeps: raise it (ulimit -Hn, LimitNOFILE=)"), "\(served.log)")
    }

    /// Found by probing: under a limit that leaves serve fewer descriptors than the
    /// rehearsal's connections beside its reserve, serve closed those past its own, and
    /// `rehearse --via http` ended as a bug (exit 1, "serve closed a connection before it
    /// answered"). It is said as the other limits are, exit 74.
    @Test func aRehearsalOverHTTPUnderTooLowALimitSaysSo() throws {
        let served = try ServedDatabase()
        let limit = Int(OpenFilesLimit.reserve) + 20
        let result = try served.flashsale(["rehearse", "--via", "http", "--buyers", "200", "--inventory", "20"], openFiles: limit)
        #expect(result.status == .exit(74), "\(result.stderr)")
        #expect(result.stderr.hasSuffix("what failed: the open files limit (\(limit)) leaves too few descriptors for the rehearsal's 64 "
                                        + "connections to serve, beside the \(OpenFilesLimit.reserve) serve keeps: raise it to "
                                        + "\(OpenFilesLimit.reserve + 64) or more (ulimit -Hn)\n"), "\(result.stderr)")
    }
}
