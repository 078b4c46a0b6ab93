import Testing
import FlashSaleCore
import FlashSaleEngine

/// `verify`'s words: a count of one takes the singular, its verb agreeing (it said "1
/// bookings are held", "1 seconds ... belong").
@Suite struct ViolationTests {
    private let sale = SaleID(trusted: "s1")

    @Test func oneIsSingularAndManyPlural() {
        #expect(Violation.counterDiffers(sale, .held, counter: 0, bookings: 1).text == "sale s1: counter held is 0 but 1 booking is held")
        #expect(Violation.counterDiffers(sale, .held, counter: 1, bookings: 0).text == "sale s1: counter held is 1 but 0 bookings are held")
        #expect(Violation.malformedBookings(sale, 1).text
                == "sale s1: 1 booking lacks the time of its status, has a time of a later one, or expires before it was made")
        #expect(Violation.malformedBookings(sale, 2).text
                == "sale s1: 2 bookings lack the time of their status, have a time of a later one, or expire before they were made")
        #expect(Violation.eventsAfterTheSalesTime(sale, 1).text
                == "sale s1: 1 event of its bookings is dated after its time (high_water), which the next decision would be dated before")
        #expect(Violation.secondsOfNoSale(1).text == "1 second of expiring holds (hold_second) belongs to no sale")
        #expect(Violation.bookingsOfNoSale(3).text == "3 bookings belong to no sale")
        #expect(Violation.malformedRuns(sale, 1).text
                == "sale s1: 1 rejected run does not hold the line from its first request to its last")
        #expect(Violation.bookingsWithoutHeldEvents(sale, bookings: 1, events: 2).text == "sale s1: 1 booking but 2 'held' events")
    }
}
