import Testing
@testable import FlashSaleCLI
@testable import FlashSaleCore

/// The command line's words for the engine's refusals: what happened, and what to do next.
@Suite struct RefusalMessageTests {
    static let sale = Sale(
        id: SaleID(trusted: "s1"), name: "s1", operatorState: .open,
        counters: Counters(total: 1, available: 0, held: 1, booked: 0, cancelled: 0, expired: 0),
        hold: .seconds(300), perUser: 1, waitlist: false, startsAt: Instant(milliseconds: 0), endsAt: nil,
        createdAt: Instant(milliseconds: 0), highWater: Instant(milliseconds: 0))

    @Test func declineMessagesSayWhy() {
        #expect(Decline(.soldOut, Self.sale, state: .open).message == "sale s1 is sold out")
        #expect(Decline(.notOpen, Self.sale, state: .paused).message == "sale s1 is paused; resume it to take bookings")
        #expect(Decline(.userLimit, Self.sale, state: .open).message == "the user already has 1 active booking in sale s1, the limit")
    }

    @Test func refusalsKeepTheirCodeAndNameTheOption() {
        let refusal = SaleError.bookingConfirmed(BookingID(trusted: "bk_x"))
        #expect(refusal.commandLineError == .conflict("booking bk_x is confirmed; use --force to cancel it and return the item to stock"))
        let nested = SaleError.inRecord(line: 3, .keyUsedByAnotherUser(key: "k", sale: SaleID(trusted: "s1")))
        #expect(nested.commandLineError == .conflict("line 3: key k was already used by another user in sale s1; nothing was enqueued"))
        #expect(SaleError.settingOutOfRange(.perIP).commandLineError.exitCode == 2)
    }
}
