import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport

@Suite struct BookTests {
    @Test(arguments: stores) func bookHoldsOneItemAndWritesItsEvent(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 2)
        let booking = try f.book("alice")
        #expect(booking.status == .held)
        #expect(booking.expiresAt == minutes(5))
        #expect(try f.counters() == counters(2, available: 1, held: 1, booked: 0))
        #expect(try f.events(.held).filter { $0.booking == booking.id }.count == 1)
    }

    @Test(arguments: stores) func createSaleRefusesADuplicateID(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        #expect(failure { try f.sale() }?.exitCode == 4)
    }

    @Test(arguments: stores) func unknownSaleIsNotFound(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        #expect(failure { _ = try f.book("alice", sale: "nope") }?.exitCode == 3)
    }

    @Test(arguments: stores) func soldOutIsDeclinedAndWritesNothing(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 1)
        _ = try f.book("alice")
        let events = try f.events()
        #expect(failure { _ = try f.book("bob") }?.exitCode == 6)
        #expect(try f.events() == events)
        #expect(try f.engine.bookings(of: SaleID("s1"), status: nil, user: nil, clock: T).map(\.user) == ["alice"])
        #expect(try f.counters() == counters(1, available: 0, held: 1, booked: 0))
    }

    @Test(arguments: stores) func secondActiveBookingOfAUserIsDeclined(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        _ = try f.book("alice")
        #expect(failure { _ = try f.book("alice") }?.exitCode == 7)
        #expect(try f.counters().held == 1)
    }

    @Test(arguments: stores) func perUserLimitAllowsThatManyActiveBookings(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(perUser: 2)
        _ = try f.book("alice")
        _ = try f.book("alice")
        #expect(failure { _ = try f.book("alice") }?.exitCode == 7)
    }

    @Test(arguments: stores) func anOverdueHoldDoesNotCountAgainstItsUserEvenBeforeSweep(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        _ = try f.book("alice")
        #expect(failure { _ = try f.book("alice", at: T.adding(Span(milliseconds: 299_999))) }?.exitCode == 7)
        let second = try f.book("alice", at: minutes(5))
        #expect(second.status == .held)
    }

    @Test(arguments: stores) func usersAreComparedByteForByte(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        _ = try f.book("caf\u{E9}")
        #expect(try f.book("cafe\u{301}").status == .held)
        #expect(try f.book("Caf\u{E9}").status == .held)
    }

    @Test(arguments: stores) func aSoldOutSaleReclaimsAnOverdueHoldInline(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 1)
        let first = try f.book("alice")
        let second = try f.book("bob", at: minutes(5))
        #expect(second.status == .held)
        #expect(try f.engine.booking(first.id, in: SaleID("s1"), clock: minutes(5)).status == .expired)
        // Written expired, not only seen so: no overdue hold is left, and its event says who.
        #expect(try f.status(at: minutes(5)).overdue == 0)
        #expect(try f.counters(at: minutes(5)) == counters(1, available: 0, held: 1, booked: 0, expired: 1))
        #expect(try f.events(.expired).map { [$0.booking?.text, $0.detail] } == [[first.id.text, "book"]])
    }

    @Test(arguments: stores) func theSameKeyReturnsTheFirstBooking(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let first = try f.book("alice", key: "k1")
        let again = try f.book("alice", key: "k1")
        #expect(again.id == first.id)
        #expect(try f.counters().held == 1)
    }

    @Test(arguments: stores) func theSameKeyForAnotherUserIsAConflict(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        _ = try f.book("alice", key: "k1")
        #expect(failure { _ = try f.book("bob", key: "k1") }?.exitCode == 4)
    }

    @Test(arguments: stores) func keysArePerSale(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale("s1")
        try f.sale("s2")
        let one = try f.book("alice", sale: "s1", key: "k1")
        let two = try f.book("alice", sale: "s2", key: "k1")
        #expect(one.id != two.id)
    }

    @Test(arguments: stores) func pausedScheduledEndedAndClosedSalesDecline(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale("ends", endsAt: minutes(10))
        #expect(failure { _ = try f.book("a", sale: "ends", at: minutes(10)) }?.exitCode == 8)
        try f.sale("later", inventory: 1, startsAt: minutes(60))
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

    @Test(arguments: stores) func aClockSteppedBackCannotExtendAHold(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        _ = try f.book("alice", at: minutes(10))
        let late = try f.book("bob", at: minutes(1))
        #expect(late.createdAt == minutes(10))
        #expect(late.expiresAt == minutes(15))
    }
}

@Suite struct ConfirmAndCancelTests {
    let s1 = SaleID(trusted: "s1")

    @Test(arguments: stores) func confirmMovesHeldToBookedAndIsIdempotent(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let hold = try f.book("alice")
        let booked = try f.engine.confirm(hold.id, in: s1, user: nil, clock: minutes(1))
        #expect(booked.status == .booked)
        #expect(booked.confirmedAt == minutes(1))
        let again = try f.engine.confirm(hold.id, in: s1, user: nil, clock: minutes(60))
        #expect(again == booked)
        #expect(try f.counters() == counters(10, available: 9, held: 0, booked: 1))
        #expect(try f.events(.booked).count == 1)
    }

    @Test(arguments: stores) func confirmOneMillisecondBeforeExpirySucceeds(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let hold = try f.book("alice")
        let at = Instant(milliseconds: hold.expiresAt.milliseconds - 1)
        #expect(try f.engine.confirm(hold.id, in: s1, user: nil, clock: at).status == .booked)
    }

    @Test(arguments: stores) func confirmAtTheExpiryInstantIsRefusedAndExpiresTheHold(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let hold = try f.book("alice")
        #expect(failure { _ = try f.engine.confirm(hold.id, in: s1, user: nil, clock: hold.expiresAt) }?.exitCode == 5)
        // Written expired, for good: not merely overdue.
        #expect(try f.status().overdue == 0)
        #expect(try f.events(.expired).map { [$0.booking?.text, $0.detail] } == [[hold.id.text, "confirm"]])
        #expect(try f.counters() == counters(10, available: 10, held: 0, booked: 0, expired: 1))
        #expect(try f.engine.sale(s1).highWater == hold.expiresAt)
    }

    @Test(arguments: stores) func confirmOfACancelledBookingIsAConflict(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let hold = try f.book("alice")
        _ = try f.engine.cancel(hold.id, in: s1, user: nil, force: false, clock: T)
        #expect(failure { _ = try f.engine.confirm(hold.id, in: s1, user: nil, clock: T) }?.exitCode == 4)
    }

    @Test(arguments: stores) func confirmWithAnotherUserOrSaleIsNotFound(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        try f.sale("s2")
        let hold = try f.book("alice")
        #expect(failure { _ = try f.engine.confirm(hold.id, in: s1, user: "bob", clock: T) }?.exitCode == 3)
        #expect(failure { _ = try f.engine.confirm(hold.id, in: SaleID("s2"), user: nil, clock: T) }?.exitCode == 3)
        #expect(failure { _ = try f.engine.confirm(BookingIDGenerator().make(at: T), in: s1, user: nil, clock: T) }?.exitCode == 3)
        #expect(try f.engine.confirm(hold.id, in: s1, user: "alice", clock: T).status == .booked)
    }

    @Test(arguments: stores) func cancelReturnsAHeldItemToStock(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
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

    @Test(arguments: stores) func cancelOfAConfirmedBookingNeedsForce(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let hold = try f.book("alice")
        _ = try f.engine.confirm(hold.id, in: s1, user: nil, clock: T)
        #expect(failure { _ = try f.engine.cancel(hold.id, in: s1, user: nil, force: false, clock: T) }?.exitCode == 4)
        #expect(try f.counters() == counters(10, available: 9, held: 0, booked: 1))
        #expect(try f.engine.cancel(hold.id, in: s1, user: nil, force: true, clock: T).status == .cancelled)
        #expect(try f.counters() == counters(10, available: 10, held: 0, booked: 0, cancelled: 1))
    }

    @Test(arguments: stores) func cancelOfAnOverdueHoldExpiresItOnTheSpot(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let hold = try f.book("alice")
        let result = try f.engine.cancel(hold.id, in: s1, user: nil, force: false, clock: minutes(5))
        #expect(result.status == .expired)
        #expect(result.expiredAt == hold.expiresAt)
        #expect(try f.counters(at: minutes(5)) == counters(10, available: 10, held: 0, booked: 0, expired: 1))
    }

    @Test(arguments: stores) func cancelWithAnotherUserIsNotFound(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let hold = try f.book("alice")
        #expect(failure { _ = try f.engine.cancel(hold.id, in: s1, user: "mallory", force: true, clock: T) }?.exitCode == 3)
        #expect(try f.counters().held == 1)
    }

    @Test(arguments: stores) func pausedAndClosedSalesStillConfirmHolds(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let a = try f.book("a")
        let b = try f.book("b")
        _ = try f.engine.change(s1, by: .pause, clock: T)
        #expect(try f.engine.confirm(a.id, in: s1, user: nil, clock: T).status == .booked)
        _ = try f.engine.change(s1, by: .close, clock: T)
        #expect(try f.engine.confirm(b.id, in: s1, user: nil, clock: minutes(4)).status == .booked)
    }
}
