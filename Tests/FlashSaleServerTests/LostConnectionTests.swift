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
}
