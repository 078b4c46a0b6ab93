import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport
import Testing

/// A user's (or an address's) active bookings, read once and counted at any later time:
/// a hold stops counting at its expiry (`Rules.isExpired`), a booked item never does.
@Suite struct ActiveBookingEndsTests {
    let s1 = SaleID(trusted: "s1")

    private func at(_ seconds: Int64) -> Instant { T.adding(.seconds(seconds)) }

    private func hold(_ user: String, expiring expiry: Instant, sale: SaleID? = nil) -> Booking {
        Booking(id: BookingID(trusted: "bk_\(expiry.milliseconds)"), sale: sale ?? s1, user: UserID(trusted: user), status: .held,
                createdAt: T, expiresAt: expiry, confirmedAt: nil, cancelledAt: nil, expiredAt: nil, ip: nil, userAgent: nil, key: nil)
    }

    @Test func aHoldCountsUntilItsExpiryAndABookedItemForEver() {
        var ends = ActiveBookingEnds(sale: s1, readAt: T)
        ends.learn("alice", ends: [at(30), nil, at(10), at(20)], at: T)
        #expect(ends.count(of: "alice", in: s1, at: T) == 4)
        #expect(ends.count(of: "alice", in: s1, at: at(10)) == 3, "a hold expires at its expiry")
        #expect(ends.count(of: "alice", in: s1, at: at(29)) == 2)
        #expect(ends.count(of: "alice", in: s1, at: at(1_000)) == 1)
    }

    @Test func theTransactionsHoldsCountInOrderOrNot() {
        var ends = ActiveBookingEnds(sale: s1, readAt: T)
        ends.learn("alice", ends: [at(10)], at: T)
        ends.add(hold("alice", expiring: at(40)), owner: "alice")
        ends.add(hold("alice", expiring: at(20)), owner: "alice")
        ends.add(hold("alice", expiring: at(30), sale: SaleID(trusted: "s2")), owner: "alice")
        #expect(ends.count(of: "alice", in: s1, at: at(15)) == 2)
        #expect(ends.count(of: "alice", in: s1, at: at(25)) == 1)
        #expect(ends.count(of: "alice", in: s1, at: at(40)) == 0)
    }

    @Test func whatIsNotKnownHereIsNil() {
        var ends = ActiveBookingEnds(sale: s1, readAt: T)
        ends.learn("alice", ends: [], at: at(5))
        ends.add(hold("bob", expiring: at(60)), owner: "bob")
        #expect(ends.count(of: "alice", in: s1, at: at(5)) == 0)
        #expect(ends.count(of: "alice", in: s1, at: at(4)) == nil, "before it was read")
        #expect(ends.count(of: "alice", in: SaleID(trusted: "s2"), at: at(5)) == nil, "another sale")
        #expect(ends.count(of: "bob", in: s1, at: at(5)) == nil, "never read")
        #expect(ends.count(of: "cafe\u{301}", in: s1, at: at(5)) == nil)
        ends.learn("caf\u{E9}", ends: [nil], at: at(5))
        #expect(ends.count(of: "cafe\u{301}", in: s1, at: at(5)) == nil, "compared byte for byte")
    }
}
