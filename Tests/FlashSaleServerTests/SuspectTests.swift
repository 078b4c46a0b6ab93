import Foundation
import Testing
import FlashSaleTestSupport

/// Every attempt through `serve` is counted for bot defence, declined ones too (issue 13):
/// a script hammering a sold-out sale leaves its trace in `suspects`. serve commits the
/// counts at most a second late (`Committer.telemetryDelay`), and all of them when it stops.
@Suite struct SuspectTests {
    @Test func tenThousandDeclinedAttemptsFromOneAddressPutItFirstInSuspects() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 0)
        try served.start(ServedDatabase.headerAuth + ["--trusted-proxy", "127.0.0.1"])
        let book = "/booking-service/book-item/s1"
        // A few buyers, each from an address of their own, and one script from one address.
        for buyer in 1...20 {
            let answer = try await served.send(.POST, book, user: "buyer\(buyer)", headers: [("X-Forwarded-For", "203.0.113.\(buyer)")])
            #expect(answer.status == 409)
        }
        let workers = 32
        let port = served.port
        let declined = try await withThrowingTaskGroup(of: Int.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var declined = 0
                    for attempt in stride(from: worker, to: 10_000, by: workers) {
                        let answer = try await HTTPClient.send(.POST, book, port: port, headers: [
                            ("X-User", "bot\(attempt % 100)"), ("X-Forwarded-For", "198.51.100.7"), ("User-Agent", "python-requests/2.31"),
                        ])
                        if answer.status == 409 { declined += 1 }
                    }
                    return declined
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(declined == 10_000)
        #expect(served.stop() == .exit(0))
        let suspects = try served.flashsale(["suspects", "s1", "--json"])
        #expect(suspects.status == .exit(0), "\(suspects.stderr)")
        let ranked = try JSONSerialization.jsonObject(with: Data(suspects.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(ranked.first?["kind"] as? String == "ip")
        #expect(ranked.first?["value"] as? String == "198.51.100.7", "\(suspects.stdout.prefix(500))")
        let metrics = try served.flashsale(["metrics", "--sale", "s1"])
        #expect(metrics.stdout.contains("flashsale_attempts_total{sale=\"s1\"} 10020"), "\(metrics.stdout)")
    }

    /// A server that nobody asks anything more still writes the counts it carries, about
    /// a second after them (the committer's idle commit), while it runs: another process's
    /// `metrics` sees them without serve stopping.
    @Test func anIdleServerWritesTheCountsItCarriesWhileItRuns() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 1)
        try served.start(ServedDatabase.headerAuth)
        for user in ["a", "b", "c"] {
            _ = try await served.send(.POST, "/booking-service/book-item/s1", user: user)
        }
        let written = "flashsale_attempts_total{sale=\"s1\"} 3\n"
        var metrics = ""
        _ = try await eventually(within: .seconds(10), every: .milliseconds(50)) {
            metrics = try served.flashsale(["metrics", "--sale", "s1"]).stdout
            return metrics.contains(written)
        }
        #expect(metrics.contains(written), "\(metrics)")
        #expect(served.server?.isRunning == true, "\(served.log)")
        #expect(served.stop() == .exit(0))
    }
}
