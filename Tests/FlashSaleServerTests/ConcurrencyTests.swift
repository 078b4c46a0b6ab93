import Testing
import FlashSaleTestSupport

extension LoadTests {
    /// serve and the command line on one database at once (http.md, "Guarantees"): decisions
    /// for a sale are made as if each came from a `book` process, whoever makes them.
    @Suite struct ConcurrencyTests {
        @Test func twoHundredClientsAndBookProcessesHoldExactlyTheFiftyItems() async throws {
            let served = try ServedDatabase()
            try served.createSale(inventory: 50)
            try served.start()
            let port = served.port
            let processes = try (0..<20).map { try served.launch(["book", "s1", "cli\($0)"]) }
            let answers = await concurrently(200) { index in
                try await ServedDatabase.send(.POST, "/booking-service/book-item/s1", port: port, user: "web\(index)")
            }
            var processHolds = 0
            for process in processes {
                let result = await process.finished()
                if result.status == .exit(0) { processHolds += 1 } else { #expect(result.status == .exit(6), "\(result.stderr)") }
            }

            let statuses = answers.map { $0?.status ?? 0 }
            // No 5xx, and no connection that failed: each one a hold or a sold-out decline.
            #expect(statuses.allSatisfy { $0 == 201 || $0 == 409 }, "\(statuses.filter { $0 != 201 && $0 != 409 })")
            #expect(answers.compactMap { $0 }.filter { $0.status == 409 }.allSatisfy { $0.body.contains("\"sold_out\"") })
            #expect(statuses.count { $0 == 201 } + processHolds == 50)
            #expect(try served.bookings().count == 50)
            #expect(try served.counter("held") == 50)
            #expect(try served.counter("available") == 0)
            #expect(try served.verifies())
        }
    }
}
