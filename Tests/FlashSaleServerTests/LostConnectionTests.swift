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
}
