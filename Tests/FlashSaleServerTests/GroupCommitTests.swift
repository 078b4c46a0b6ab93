import Testing
import FlashSaleTestSupport

extension LoadTests {
    /// Group commit across connections (issue 13): requests that arrive while a commit runs
    /// share the next one, and an idle server commits a lone request at once. Seen through
    /// `/metrics`, not through timings.
    @Suite struct GroupCommitTests {
        static let commits = "flashsale_http_group_commits_total"
        static let decisions = "flashsale_http_group_decisions_total"

        @Test func manyConcurrentClientsShareCommits() async throws {
            let served = try ServedDatabase()
            try served.createSale(inventory: 1_000, ["--per-user", "1"])
            try served.start()
            let before = try await served.metrics()
            let port = served.port
            let answers = await concurrently(200) { index in
                try await ServedDatabase.send(.POST, "/booking-service/book-item/s1", port: port, user: "u\(index)")
            }
            #expect(answers.allSatisfy { $0?.status == 201 })
            let after = try await served.metrics()
            let commits = (after[Self.commits] ?? 0) - (before[Self.commits] ?? 0)
            let decisions = (after[Self.decisions] ?? 0) - (before[Self.decisions] ?? 0)
            print("group commit: 200 concurrent clients, \(Int(decisions)) decisions in \(Int(commits)) commits")
            #expect(decisions == 200)
            #expect(commits >= 1 && decisions / commits > 1)
        }

        @Test func aLoneRequestIsCommittedWithoutWaitingForOthers() async throws {
            let served = try ServedDatabase()
            try served.createSale(inventory: 10)
            try served.start()
            let before = try await served.metrics()
            // Nothing else will arrive: the answer comes only if the committer does not wait for company.
            let held = try await served.send(.POST, "/booking-service/book-item/s1", user: "alice")
            #expect(held.status == 201)
            let after = try await served.metrics()
            #expect((after[Self.commits] ?? 0) - (before[Self.commits] ?? 0) == 1)
            #expect((after[Self.decisions] ?? 0) - (before[Self.decisions] ?? 0) == 1)
        }
    }
}
