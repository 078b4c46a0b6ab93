import Testing
import FlashSaleTestSupport

/// The server starts through `flashsale serve`, books, and stops cleanly on SIGTERM.
@Suite struct SmokeTests {
    @Test(arguments: ServedStore.all)
    func aBookingOverHTTPIsHeldAndSIGTERMExitsZero(store: ServedStore) async throws {
        let served = try ServedDatabase(store)
        try served.createSale(inventory: 1)
        try served.start()
        let held = try await served.send(.POST, "/booking-service/book-item/s1", user: "alice")
        #expect(held.status == 201, "\(held.body)")
        #expect(held[header: "Location"]?.hasPrefix("/booking-service/book-item/s1/bk_") == true)
        let soldOut = try await served.send(.POST, "/booking-service/book-item/s1", user: "bob")
        #expect(soldOut.status == 409)
        #expect(soldOut.body.contains("\"code\":\"sold_out\""))
        #expect(served.stop() == .exit(0), "\(served.log)")
        let status = try served.flashsale(["status", "s1", "--json"])
        #expect(status.stdout.contains("\"held\":1"))
    }
}
