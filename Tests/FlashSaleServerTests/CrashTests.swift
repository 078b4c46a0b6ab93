import Glibc
import NIOConcurrencyHelpers
import Testing
import FlashSaleTestSupport

extension LoadTests {
    /// `kill -9` of serve under load (http.md, "Guarantees"): a 2xx answer means committed, a
    /// request without an answer may or may not have happened, and its key settles which.
    @Suite struct CrashTests {
        /// What the clients sent and what they were told.
        struct Ledger: Sendable {
            /// Every key sent, with its user.
            var sent: [String: String] = [:]
            /// Keys answered 201, with their booking.
            var held: [String: String] = [:]
            /// Bookings whose confirm was answered 200.
            var confirmed: Set<String> = []
        }

        @Test func everyAnswerOfAKilledServerIsInTheDatabaseAndARestartedOneGoesOn() async throws {
            let served = try ServedDatabase()
            try served.createSale(inventory: 100_000)
            try served.start()
            let port = served.port
            let ledger = NIOLockedValueBox(Ledger())

            // Each client books and confirms every other hold, until the server is gone.
            let clients = Task {
                await withTaskGroup(of: Void.self) { group in
                    for client in 0..<16 {
                        group.addTask {
                            for round in 0... {
                                let (user, key) = ("c\(client)-\(round)", "k\(client)-\(round)")
                                ledger.withLockedValue { $0.sent[key] = user }
                                guard let held = try? await ServedDatabase.send(.POST, "/booking-service/book-item/s1", port: port,
                                                                                user: user, body: "{\"key\": \"\(key)\"}"),
                                      held.status == 201, let booking = try? object(held.body)["id"] as? String else { return }
                                ledger.withLockedValue { $0.held[key] = booking }
                                guard round.isMultiple(of: 2) else { continue }
                                guard let confirmed = try? await ServedDatabase.send(.PUT, "/booking-service/book-item/s1/\(booking)",
                                                                                     port: port, user: user, body: "{\"status\": \"booked\"}"),
                                      confirmed.status == 200 else { return }
                                ledger.withLockedValue { _ = $0.confirmed.insert(booking) }
                            }
                        }
                    }
                }
            }
            _ = await eventually(within: .seconds(60)) { ledger.withLockedValue { $0.held.count } >= 300 }
            served.server?.send(SIGKILL)
            #expect(await served.exit(within: .seconds(10)) == .signal(SIGKILL))
            await clients.value
            let answered = ledger.withLockedValue { $0 }
            #expect(answered.held.count >= 300)

            // Every answer is in the database as it was answered; nothing is there that no client sent.
            let bookings = try served.bookings()
            for (key, booking) in answered.held {
                #expect(bookings[booking]?["key"] as? String == key, "\(key) answered \(booking)")
            }
            for booking in answered.confirmed {
                #expect(bookings[booking]?["status"] as? String == "booked", "\(booking) was answered confirmed")
            }
            #expect(bookings.values.allSatisfy { ($0["key"] as? String).map { answered.sent[$0] != nil } ?? false })
            #expect(try served.verifies())

            // A new server on the file settles every key sent: the answered ones as they were
            // answered, the others once each.
            try served.start()
            for (key, user) in answered.sent {
                let again = try await served.send(.POST, "/booking-service/book-item/s1", user: user, body: "{\"key\": \"\(key)\"}")
                if let booking = answered.held[key] {
                    #expect(again.status == 200, "\(key): \(again.body)")
                    #expect(try object(again.body)["id"] as? String == booking)
                } else {
                    #expect(again.status == 200 || again.status == 201, "\(key): \(again.body)")
                }
            }
            #expect(try served.bookings().count == answered.sent.count)
            #expect(try served.verifies())
            #expect(served.stop() == .exit(0), "\(served.log)")
        }
    }
}
