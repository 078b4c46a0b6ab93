import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport

@Suite struct ReportTests {
    /// Four connections book on four threads while a fifth reads the log in small pages,
    /// each starting after the last seq it saw: it sees every event once, in order, with
    /// no gap, because seq grows in commit order.
    @Test(arguments: stores) func pagingByLastSeqSeesEveryEventOnceWhileOthersWrite(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 1000)
        let database = f.database
        let writers = DispatchGroup()
        for worker in 0..<4 {
            DispatchQueue.global().async(group: writers) {
                guard let store = try? database.connect() else { return }
                let engine = Engine(store: store)
                for n in 0..<100 {
                    let request = BookingRequest(sale: SaleID(trusted: "s1"), user: "u\(worker)-\(n)", ip: nil, userAgent: nil, key: nil)
                    _ = try? engine.book(request, clock: T)
                }
            }
        }
        let reader = Engine(store: try database.connect())
        var seen: [Int64] = []
        let deadline = Date().addingTimeInterval(30)
        while seen.count < 401, Date() < deadline {
            seen += try reader.events(after: seen.last ?? 0, sale: nil, limit: 7).map(\.seq)
        }
        writers.wait()
        seen += try reader.events(after: seen.last ?? 0, sale: nil, limit: 1000).map(\.seq)
        #expect(seen == Array(1...401))
    }

    @Test(arguments: stores) func eventsOfOneSaleSkipTheOthersAndAnUnknownSaleIsNotFound(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale("s1")
        try f.sale("s2")
        _ = try f.book("alice", sale: "s2")
        let events = try f.engine.events(after: 0, sale: SaleID("s2"), limit: 10)
        #expect(events.map(\.seq) == [2, 3])
        #expect(events.map(\.kind) == [.saleCreated, .held])
        #expect(events[1].user == "alice")
        #expect(events[1].detail == nil)
        #expect(failure { _ = try f.engine.events(after: 0, sale: SaleID("s3"), limit: 10) }?.exitCode == 3)
    }

    @Test(arguments: stores) func oldestQueuedIsTheHeadOfTheLineAtTheSalesTime(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        #expect(try f.engine.metrics(of: nil, clock: minutes(1)).map(\.oldestQueued) == [Span(milliseconds: 0)])
        _ = try f.engine.submit(BookingRequest(sale: SaleID("s1"), user: "a", ip: nil, userAgent: nil, key: nil), clock: minutes(1))
        _ = try f.engine.submit(BookingRequest(sale: SaleID("s1"), user: "b", ip: nil, userAgent: nil, key: nil), clock: minutes(2))
        let metrics = try f.engine.metrics(of: SaleID("s1"), clock: minutes(3).adding(Span(milliseconds: 500)))
        #expect(metrics.map(\.oldestQueued) == [Span(milliseconds: 120_500)])
        #expect(metrics.map(\.status.queued) == [2])
    }

    /// A million bookings must not be held in memory at once: `body` sees each one as it
    /// is read, an overdue hold already as expired.
    @Test(arguments: stores) func exportHandsOverBookingsOneAtATimeAsTheyAreNow(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let first = try f.book("alice")
        let second = try f.book("bob", at: minutes(4))
        var seen: [(BookingID, BookingStatus)] = []
        let count = try f.engine.forEachBooking(of: SaleID("s1"), status: nil, user: nil, clock: minutes(5)) { seen.append(($0.id, $0.status)) }
        #expect(count == 2)
        #expect(seen.map(\.0) == [first.id, second.id])
        #expect(seen.map(\.1) == [.expired, .held])
        #expect(try f.engine.forEachBooking(of: SaleID("s1"), status: .held, user: nil, clock: minutes(5)) { _ in } == 1)
    }

    /// serve's list of a user's bookings, a page at a time: through the pages every one of
    /// the user's once, in order, and no one else's; a page that holds the last says no
    /// more follow; a page after another user's booking is none of this user's business.
    @Test(arguments: stores) func aUsersBookingsComeAPageAtATime(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale(inventory: 20, perUser: 20)
        var made: [BookingID] = []
        for n in 0..<7 {
            made.append(try f.book("alice").id)
            if n == 3 { _ = try f.book("bob") }
        }
        let bob = try #require(try f.engine.bookings(of: SaleID("s1"), status: nil, user: "bob", clock: T).first)
        var seen: [BookingID] = []
        var after: BookingID?
        var pages = 0
        while pages < 10 {
            let page = try f.engine.bookingPage(of: SaleID("s1"), user: "alice", after: after, limit: 3, clock: T)
            seen += page.bookings.map(\.id)
            pages += 1
            guard page.more else { break }
            after = page.bookings.last?.id
        }
        #expect(seen == made)
        #expect(pages == 3)
        let whole = try f.engine.bookingPage(of: SaleID("s1"), user: "alice", after: nil, limit: 7, clock: T)
        #expect(whole.bookings.map(\.id) == made && !whole.more)
        #expect(failure { _ = try f.engine.bookingPage(of: SaleID("s1"), user: "alice", after: bob.id, limit: 3, clock: T) }?.exitCode == 3)
    }

    /// The log keeps a block's value whole and as given, where an error message shortens it
    /// to 40 characters and escapes it; the unblock names the block in the same words.
    @Test(arguments: stores) func blockEventsNameTheBlockWholeAndAlike(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        let agent = "Mozilla/5.0 (X11; Linux x86_64) 'scripted' crawler \u{e9}t\u{e9} 2026 edition"
        let block = try Block(kind: .agent, value: agent, contains: true, sale: SaleID("s1"), reason: "rule 'bots'", createdAt: T)
        try f.engine.addBlock(block, clock: T)
        try f.engine.removeBlock(Block(kind: .agent, value: agent, contains: true, sale: SaleID("s1"), reason: nil, createdAt: T), clock: T)
        try f.engine.addBlock(try Block(kind: .ip, value: "203.0.113.0/24", contains: false, sale: nil, reason: nil, createdAt: T), clock: T)
        #expect(try f.events(.blocked).map(\.detail) == ["agent containing \(agent): rule 'bots'", "ip 203.0.113.0/24"])
        #expect(try f.events(.unblocked).map(\.detail) == ["agent containing \(agent)"])
    }

    /// A sale's block and unblock are its events, at its time: with the clock stepped back
    /// after a decision at 5 minutes, they are not logged before it, and the sale's later
    /// decisions are not before them (found by probing). A block of every sale is at the
    /// clock's time.
    @Test(arguments: stores) func aSalesBlockEventsKeepItsTimeWhenTheClockStepsBack(_ kind: StoreKind) throws {
        let f = try Fixture(kind)
        try f.sale()
        _ = try f.book("alice", at: minutes(5))
        let block = try Block(kind: .user, value: "mallory", contains: false, sale: SaleID("s1"), reason: nil, createdAt: T)
        // The block says the time its event says (it said the clock's: found by probing).
        #expect(try f.engine.addBlock(block, clock: T).createdAt == minutes(5))
        #expect(try f.engine.blocks(in: SaleID("s1")).map(\.createdAt) == [minutes(5)])
        try f.engine.removeBlock(Block(kind: .user, value: "mallory", contains: false, sale: SaleID("s1"), reason: nil, createdAt: T), clock: T)
        try f.engine.addBlock(try Block(kind: .user, value: "eve", contains: false, sale: nil, reason: nil, createdAt: T), clock: T)
        #expect(try f.events("s1").map(\.at) == [T, minutes(5), minutes(5), minutes(5)])
        #expect(try f.events(.blocked).map(\.at) == [minutes(5), T])
        #expect(try f.engine.sale(SaleID("s1")).highWater == minutes(5))
    }
}
