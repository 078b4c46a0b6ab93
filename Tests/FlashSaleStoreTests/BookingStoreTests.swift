import Testing
import FlashSaleCore
import FlashSaleEngine
@testable import FlashSaleStore

@Suite struct BookTests {
    @Test func bookHoldsOneItemAndWritesItsEvent() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 2)
        let booking = try f.book("alice")
        #expect(booking.status == .held)
        #expect(booking.expiresAt == minutes(5))
        #expect(try f.counters() == counters(2, available: 1, held: 1, booked: 0))
        #expect(try f.count("SELECT count(*) FROM event WHERE kind = 'held' AND booking = '\(booking.id)'") == 1)
    }

    @Test func createSaleRefusesADuplicateID() throws {
        let f = try StoreFixture()
        try f.sale()
        #expect(failure { try f.sale() }?.exitCode == 4)
    }

    @Test func unknownSaleIsNotFound() throws {
        let f = try StoreFixture()
        #expect(failure { _ = try f.book("alice", sale: "nope") }?.exitCode == 3)
    }

    @Test func soldOutIsDeclinedAndWritesNothing() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 1)
        _ = try f.book("alice")
        let events = try f.count("SELECT count(*) FROM event")
        #expect(failure { _ = try f.book("bob") }?.exitCode == 6)
        #expect(try f.count("SELECT count(*) FROM event") == events)
        #expect(try f.count("SELECT count(*) FROM booking") == 1)
        #expect(try f.counters() == counters(1, available: 0, held: 1, booked: 0))
    }

    @Test func secondActiveBookingOfAUserIsDeclined() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("alice")
        #expect(failure { _ = try f.book("alice") }?.exitCode == 7)
        #expect(try f.counters().held == 1)
    }

    @Test func perUserLimitAllowsThatManyActiveBookings() throws {
        let f = try StoreFixture()
        try f.sale(perUser: 2)
        _ = try f.book("alice")
        _ = try f.book("alice")
        #expect(failure { _ = try f.book("alice") }?.exitCode == 7)
    }

    @Test func anOverdueHoldDoesNotCountAgainstItsUserEvenBeforeSweep() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("alice")
        #expect(failure { _ = try f.book("alice", at: T.adding(Span(milliseconds: 299_999))) }?.exitCode == 7)
        let second = try f.book("alice", at: minutes(5))
        #expect(second.status == .held)
    }

    @Test func usersAreComparedByteForByte() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("caf\u{E9}")
        #expect(try f.book("cafe\u{301}").status == .held)
        #expect(try f.book("Caf\u{E9}").status == .held)
    }

    @Test func aSoldOutSaleReclaimsAnOverdueHoldInline() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 1)
        let first = try f.book("alice")
        let second = try f.book("bob", at: minutes(5))
        #expect(second.status == .held)
        #expect(try f.engine.booking(first.id, in: SaleID("s1"), clock: minutes(5)).status == .expired)
        #expect(try f.counters(at: minutes(5)) == counters(1, available: 0, held: 1, booked: 0, expired: 1))
        #expect(try f.count("SELECT count(*) FROM booking WHERE status = 'expired'") == 1)
    }

    @Test func theSameKeyReturnsTheFirstBooking() throws {
        let f = try StoreFixture()
        try f.sale()
        let first = try f.book("alice", key: "k1")
        let again = try f.book("alice", key: "k1")
        #expect(again.id == first.id)
        #expect(try f.counters().held == 1)
    }

    @Test func theSameKeyForAnotherUserIsAConflict() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("alice", key: "k1")
        #expect(failure { _ = try f.book("bob", key: "k1") }?.exitCode == 4)
    }

    @Test func keysArePerSale() throws {
        let f = try StoreFixture()
        try f.sale("s1")
        try f.sale("s2")
        let one = try f.book("alice", sale: "s1", key: "k1")
        let two = try f.book("alice", sale: "s2", key: "k1")
        #expect(one.id != two.id)
    }

    @Test func pausedScheduledEndedAndClosedSalesDecline() throws {
        let f = try StoreFixture()
        try f.sale("ends", endsAt: minutes(10))
        #expect(failure { _ = try f.book("a", sale: "ends", at: minutes(10)) }?.exitCode == 8)
        try f.engine.createSale(SaleDefinition(id: SaleID("later"), name: nil, inventory: 1, hold: .seconds(300),
                                              perUser: 1, startsAt: minutes(60), endsAt: nil), clock: T)
        #expect(failure { _ = try f.book("a", sale: "later") }?.exitCode == 8)
        #expect(try f.book("a", sale: "later", at: minutes(60)).status == .held)
        try f.sale("p")
        _ = try f.engine.change(SaleID("p"), by: .pause, clock: T)
        #expect(failure { _ = try f.book("a", sale: "p") }?.exitCode == 8)
        _ = try f.engine.change(SaleID("p"), by: .resume, clock: T)
        #expect(try f.book("a", sale: "p").status == .held)
        _ = try f.engine.change(SaleID("p"), by: .close, clock: T)
        #expect(failure { _ = try f.book("b", sale: "p") }?.exitCode == 8)
    }

    @Test func aClockSteppedBackCannotExtendAHold() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("alice", at: minutes(10))
        let late = try f.book("bob", at: minutes(1))
        #expect(late.createdAt == minutes(10))
        #expect(late.expiresAt == minutes(15))
    }
}

@Suite struct ConfirmAndCancelTests {
    let s1 = SaleID(trusted: "s1")

    @Test func confirmMovesHeldToBookedAndIsIdempotent() throws {
        let f = try StoreFixture()
        try f.sale()
        let hold = try f.book("alice")
        let booked = try f.engine.confirm(hold.id, in: s1, user: nil, clock: minutes(1))
        #expect(booked.status == .booked)
        #expect(booked.confirmedAt == minutes(1))
        let again = try f.engine.confirm(hold.id, in: s1, user: nil, clock: minutes(60))
        #expect(again == booked)
        #expect(try f.counters() == counters(10, available: 9, held: 0, booked: 1))
        #expect(try f.count("SELECT count(*) FROM event WHERE kind = 'booked'") == 1)
    }

    @Test func confirmOneMillisecondBeforeExpirySucceeds() throws {
        let f = try StoreFixture()
        try f.sale()
        let hold = try f.book("alice")
        let at = Instant(milliseconds: hold.expiresAt.milliseconds - 1)
        #expect(try f.engine.confirm(hold.id, in: s1, user: nil, clock: at).status == .booked)
    }

    @Test func confirmAtTheExpiryInstantIsRefusedAndExpiresTheHold() throws {
        let f = try StoreFixture()
        try f.sale()
        let hold = try f.book("alice")
        #expect(failure { _ = try f.engine.confirm(hold.id, in: s1, user: nil, clock: hold.expiresAt) }?.exitCode == 5)
        #expect(try f.count("SELECT count(*) FROM booking WHERE status = 'expired'") == 1)
        #expect(try f.counters() == counters(10, available: 10, held: 0, booked: 0, expired: 1))
        #expect(try f.engine.sale(s1).highWater == hold.expiresAt)
    }

    @Test func confirmOfACancelledBookingIsAConflict() throws {
        let f = try StoreFixture()
        try f.sale()
        let hold = try f.book("alice")
        _ = try f.engine.cancel(hold.id, in: s1, user: nil, force: false, clock: T)
        #expect(failure { _ = try f.engine.confirm(hold.id, in: s1, user: nil, clock: T) }?.exitCode == 4)
    }

    @Test func confirmWithAnotherUserOrSaleIsNotFound() throws {
        let f = try StoreFixture()
        try f.sale()
        try f.sale("s2")
        let hold = try f.book("alice")
        #expect(failure { _ = try f.engine.confirm(hold.id, in: s1, user: "bob", clock: T) }?.exitCode == 3)
        #expect(failure { _ = try f.engine.confirm(hold.id, in: SaleID("s2"), user: nil, clock: T) }?.exitCode == 3)
        #expect(failure { _ = try f.engine.confirm(BookingID.random(), in: s1, user: nil, clock: T) }?.exitCode == 3)
        #expect(try f.engine.confirm(hold.id, in: s1, user: "alice", clock: T).status == .booked)
    }

    @Test func cancelReturnsAHeldItemToStock() throws {
        let f = try StoreFixture()
        try f.sale()
        let hold = try f.book("alice")
        let cancelled = try f.engine.cancel(hold.id, in: s1, user: nil, force: false, clock: minutes(1))
        #expect(cancelled.status == .cancelled)
        #expect(cancelled.cancelledAt == minutes(1))
        #expect(try f.counters() == counters(10, available: 10, held: 0, booked: 0, cancelled: 1))
        // Cancelling again is a no-op.
        #expect(try f.engine.cancel(hold.id, in: s1, user: nil, force: true, clock: minutes(2)) == cancelled)
        #expect(try f.counters().cancelled == 1)
    }

    @Test func cancelOfAConfirmedBookingNeedsForce() throws {
        let f = try StoreFixture()
        try f.sale()
        let hold = try f.book("alice")
        _ = try f.engine.confirm(hold.id, in: s1, user: nil, clock: T)
        #expect(failure { _ = try f.engine.cancel(hold.id, in: s1, user: nil, force: false, clock: T) }?.exitCode == 4)
        #expect(try f.counters() == counters(10, available: 9, held: 0, booked: 1))
        #expect(try f.engine.cancel(hold.id, in: s1, user: nil, force: true, clock: T).status == .cancelled)
        #expect(try f.counters() == counters(10, available: 10, held: 0, booked: 0, cancelled: 1))
    }

    @Test func cancelOfAnOverdueHoldExpiresItOnTheSpot() throws {
        let f = try StoreFixture()
        try f.sale()
        let hold = try f.book("alice")
        let result = try f.engine.cancel(hold.id, in: s1, user: nil, force: false, clock: minutes(5))
        #expect(result.status == .expired)
        #expect(result.expiredAt == hold.expiresAt)
        #expect(try f.counters(at: minutes(5)) == counters(10, available: 10, held: 0, booked: 0, expired: 1))
    }

    @Test func cancelWithAnotherUserIsNotFound() throws {
        let f = try StoreFixture()
        try f.sale()
        let hold = try f.book("alice")
        #expect(failure { _ = try f.engine.cancel(hold.id, in: s1, user: "mallory", force: true, clock: T) }?.exitCode == 3)
        #expect(try f.counters().held == 1)
    }

    @Test func pausedAndClosedSalesStillConfirmHolds() throws {
        let f = try StoreFixture()
        try f.sale()
        let a = try f.book("a")
        let b = try f.book("b")
        _ = try f.engine.change(s1, by: .pause, clock: T)
        #expect(try f.engine.confirm(a.id, in: s1, user: nil, clock: T).status == .booked)
        _ = try f.engine.change(s1, by: .close, clock: T)
        #expect(try f.engine.confirm(b.id, in: s1, user: nil, clock: minutes(4)).status == .booked)
    }
}
