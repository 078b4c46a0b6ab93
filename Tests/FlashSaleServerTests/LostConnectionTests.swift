import Glibc
import Testing
import FlashSaleTestSupport

/// `serve` on PostgreSQL outlives a restart of the server: the requests whose transaction
/// the restart cut are answered 503, and it connects anew for the next, without a restart
/// of its own.
@Suite struct LostConnectionTests {
    @Test(.enabled(if: installed("pg_ctl", in: postgresBinaries) != nil, "needs PostgreSQL's pg_ctl"),
          .timeLimit(.minutes(2)))
    func serveAnswersAgainOnceItsServerIsBack() async throws {
        let cluster = try OwnCluster()
        let served = try ServedDatabase(url: cluster.url(schema: "flashsale"))
        try served.createSale(inventory: 10)
        try served.start()
        #expect(try await served.send(.POST, "/booking-service/book-item/s1", user: "before").status == 201)

        try cluster.restart()
        var statuses: [Int] = []
        for attempt in 0..<20 {
            let status = try await served.send(.POST, "/booking-service/book-item/s1", user: "after-\(attempt)").status
            statuses.append(status)
            if status == 201 { break }
        }
        #expect(statuses.last == 201 && statuses.dropLast().allSatisfy { $0 == 503 }, "\(statuses)")
        let sale = try await served.send(.GET, "/booking-service/sales/s1")
        #expect(sale.status == 200)
        #expect(try served.flashsale(["verify"]).status == .exit(0))
        withExtendedLifetime(cluster) {}
    }

    /// Found by probing: a group whose COMMIT never reached PostgreSQL (lost on the way, the
    /// server's side of the connection still open) left its transaction open there,
    /// holding the sale's row, and every later booking was 503 busy until the server saw
    /// the connection gone, hours over a failed network. The group is answered 503 ("may
    /// have been made"), then asked about, its transaction ended: the next booking is made.
    @Test(.enabled(if: TestPostgres.isConfigured, "FLASHSALE_TEST_PG is not set"), .timeLimit(.minutes(2)))
    func aGroupWhoseCommitNeverReachedTheServerHoldsNothingUp() async throws {
        let owner = try ServedDatabase(.postgres)
        try owner.createSale(inventory: 10)
        let server = try #require(TestPostgres.server)
        let proxy = try CommitCuttingProxy(to: server.port, cuttingTheCommitAfter: "booking", .withholdingTheCommit)
        defer { proxy.endWithheldTransactions() }
        proxy.disarmed = true
        let proxied = owner.database.replacingOccurrences(of: ":\(server.port)/", with: ":\(proxy.port)/") + "&sslmode=disable"
        let served = try ServedDatabase(url: proxied)
        try served.start(ServedDatabase.headerAuth + ["--busy-timeout", "1s"])
        proxy.disarmed = false
        let lost = try await served.send(.POST, "/booking-service/book-item/s1", user: "first")
        #expect(proxy.cut)
        #expect(lost.status == 503, "\(lost.body)")
        let next = try await served.send(.POST, "/booking-service/book-item/s1", user: "next")
        #expect(next.status == 201, "\(next.body) \(served.log)")
        #expect(served.log.contains("the group whose commit's answer was lost did not commit"), "\(served.log)")
        #expect(try owner.flashsale(["verify"]).status == .exit(0))
    }

    /// The database's trouble is the operator's: the buyer's 503 names no host, port, role
    /// or advice, and the log line of the answer says what it was (probe of 2026-12-04).
    @Test(.enabled(if: installed("pg_ctl", in: postgresBinaries) != nil, "needs PostgreSQL's pg_ctl"),
          .timeLimit(.minutes(2)))
    func aServerThatIsDownIsTheLogsToNameNotTheBuyers() async throws {
        let cluster = try OwnCluster()
        let served = try ServedDatabase(url: cluster.url(schema: "flashsale"))
        try served.createSale(inventory: 10)
        try served.start()
        try cluster.stop()
        let answer = try await served.send(.POST, "/booking-service/book-item/s1", user: "u1")
        try cluster.start()
        #expect(answer.status == 503)
        #expect(answer.body == #"{"error":{"code":"io","message":"the database cannot be reached or written just now; retry"}}"#)
        #expect(served.log.contains(#""error":"cannot connect to PostgreSQL at 127.0.0.1:\#(cluster.port)"#), "\(served.log)")
        withExtendedLifetime(cluster) {}
    }

    /// Found by probing: with PostgreSQL gone quiet through SIGTERM (a hung disk, a stuck
    /// proxy), serve took 19 to 38 s to stop: after the group under way gave up waiting for
    /// its answer, the next group and the last attempt counts each waited for a connection
    /// anew. As behind another's lock, one wait that runs out after the signal is the
    /// last: here a booking waits for a lock psql holds as the server goes quiet, and is
    /// given up 5 s past its statement timeout (61 s); the three read meanwhile then fail at
    /// once, where each group would wait 60 s for a connection. The lock's wait is long, so
    /// that it outlasts the reading of the three on a loaded machine (CI runs: with 3 s and
    /// 15 s, it did not; this test's task waited 12 s for a thread of the pool).
    @Test(.enabled(if: installed("pg_ctl", in: postgresBinaries) != nil, "needs PostgreSQL's pg_ctl"),
          .timeLimit(.minutes(4)))
    func aServerGoneQuietThroughTheStopDelaysItByOneWait() async throws {
        let cluster = try OwnCluster()
        defer { cluster.thaw() }
        let served = try ServedDatabase(url: cluster.url(schema: "flashsale") + "&connect_timeout=60")
        try served.createSale(inventory: 10)
        try served.start(ServedDatabase.headerAuth + ["--busy-timeout", "60s"])
        let psql = try #require(installed("psql", in: postgresBinaries))
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(null) }
        let holder = try ChildProcess(psql, [cluster.serverURL, "-c", "BEGIN", "-c", "LOCK TABLE flashsale.sale IN EXCLUSIVE MODE",
                                             "-c", "SELECT pg_sleep(120)"], environment: [:], stdin: null, stdout: null, stderr: null)
        defer { holder.send(SIGKILL) }
        let locked = "SELECT count(*) FROM pg_locks WHERE relation = 'flashsale.sale'::regclass AND mode = 'ExclusiveLock' AND granted"
        #expect(try await eventually(within: .seconds(10), every: .milliseconds(100)) { try runTool(psql, [cluster.serverURL, "-tAc", locked], environment: [:]) == "1\n" })
        // Sent from this task, not from tasks of their own: under a CI run's load those waited
        // for a thread of the pool until the lock's wait had run out.
        let booking = { (user: String) in
            "POST /booking-service/book-item/s1 HTTP/1.1\r\nHost: x\r\nX-User: \(user)\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        }
        let first = try await RawConnection.open(port: served.port, sending: booking("u0"))
        #expect(try await served.waitForMetric(LoadTests.ShutdownTests.inFlight, toBe: 1), "\(served.log)")
        // The next group, read meanwhile.
        var connections = [first]
        for index in 1...3 { connections.append(try await RawConnection.open(port: served.port, sending: booking("u\(index)"))) }
        #expect(try await served.waitForMetric(LoadTests.ShutdownTests.inFlight, toBe: 4), "\(served.log)")
        cluster.freeze()
        served.server?.send(SIGTERM)
        #expect(await served.exit(within: .seconds(80)) == .exit(0), "\(served.log)")
        for connection in connections {
            #expect(await connection.answer(contains: "HTTP/1.1 503", within: .seconds(5)), "\(connection.answer)")
        }
    }

    /// Found by probing: after PostgreSQL restarted, other clients took the connections
    /// left before the health check made its own anew, and /healthz said 503 while the
    /// buyers were served. The admin's read then goes through a buyers' connection. Here
    /// the role's CONNECTION LIMIT (which a superuser would not be held to) is set to the
    /// connections serve has made anew, the buyers' reader's among them.
    @Test(.enabled(if: installed("pg_ctl", in: postgresBinaries) != nil, "needs PostgreSQL's pg_ctl"),
          .timeLimit(.minutes(2)))
    func aServerWithNoConnectionFreeForTheHealthCheckIsUpWhileBuyersAreServed() async throws {
        let cluster = try OwnCluster()
        let psql = try #require(installed("psql", in: postgresBinaries))
        let sql = { (statement: String) in try runTool(psql, [cluster.serverURL, "-tAc", statement], environment: [:]) }
        _ = try sql("CREATE ROLE buyers LOGIN PASSWORD 'buyers'")
        _ = try sql("GRANT CREATE ON DATABASE postgres TO buyers")
        let served = try ServedDatabase(url: "postgresql://buyers:buyers@127.0.0.1:\(cluster.port)/postgres?schema=flashsale")
        try served.createSale(inventory: 10)
        try served.start()
        #expect(try await served.send(.GET, "/booking-service/sales/s1").status == 200)

        try cluster.restart()
        var statuses: [Int] = []
        for _ in 0..<20 {
            statuses.append(try await served.send(.GET, "/booking-service/sales/s1").status)
            if statuses.last == 200 { break }
        }
        try #require(statuses.last == 200, "\(statuses)")
        let made = try sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'buyers'").trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try sql("ALTER ROLE buyers CONNECTION LIMIT \(made)")
        // The first may find its connection cut by the restart; the next makes one anew.
        var health: [Int] = []
        for _ in 0..<3 {
            health.append(try await HTTPClient.send(.GET, "/healthz", port: served.adminPort).status)
            if health.last == 200 { break }
        }
        #expect(health.last == 200, "\(health) \(served.log)")
        // And the role has no connection free: the admin's own could not be made.
        #expect(throws: (any Error).self) { try runTool(psql, [served.database.replacingOccurrences(of: "?schema=flashsale", with: ""),
                                                             "-c", "SELECT 1"], environment: [:]) }
        #expect(try await served.metrics()["flashsale_database_up"] == 1)
        withExtendedLifetime(cluster) {}
    }
}
