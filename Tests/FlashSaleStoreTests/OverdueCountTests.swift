import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport
@testable import FlashSaleStore

/// A sale's overdue holds are counted from `hold_second`, a row per second of expiry, and
/// through the index within the current second: exact at every instant, whatever wrote or
/// unwrote the holds.
@Suite struct OverdueCountTests {
    private func overdue(_ f: StoreFixture, at clock: Instant) throws -> Int64 {
        try f.engine.status(SaleID("s1"), clock: clock).overdue
    }

    /// Holds made at T, T+0.5 s and T+1 s (5 minute holds): their expiries straddle a
    /// second's boundary.
    private func threeHolds() throws -> (StoreFixture, [Booking]) {
        let f = try StoreFixture()
        try f.sale(inventory: 3)
        let holds = try [0, 500, 1000].enumerated().map { user, offset in
            try f.book("u\(user)", at: T.adding(Span(milliseconds: Int64(offset))))
        }
        return (f, holds)
    }

    private func afterExpiry(_ milliseconds: Int64) -> Instant {
        minutes(5).adding(Span(milliseconds: milliseconds))
    }

    @Test func theCountIsExactAcrossASecondsBoundary() throws {
        let (f, _) = try threeHolds()
        for (offset, expected) in [(-1, 0), (0, 1), (499, 1), (500, 2), (999, 2), (1000, 3), (60_000, 3)] as [(Int64, Int64)] {
            #expect(try overdue(f, at: afterExpiry(offset)) == expected, "at expiry + \(offset) ms")
        }
        #expect(try f.store.verify(nil, clock: T) == [])
    }

    @Test func aConfirmedACancelledAndASweptHoldLeaveTheCount() throws {
        let (f, holds) = try threeHolds()
        _ = try f.engine.confirm(holds[0].id, in: SaleID("s1"), user: nil, clock: T.adding(.seconds(2)))
        #expect(try overdue(f, at: afterExpiry(1000)) == 2)
        _ = try f.engine.cancel(holds[2].id, in: SaleID("s1"), user: nil, force: false, clock: T.adding(.seconds(2)))
        #expect(try overdue(f, at: afterExpiry(1000)) == 1)
        #expect(try f.store.verify(nil, clock: T) == [])
        #expect(try f.engine.sweep(nil, limit: nil, dryRun: false, clock: afterExpiry(1000)).total == 1)
        #expect(try overdue(f, at: afterExpiry(1000)) == 0)
        #expect(try f.count("SELECT count(*) FROM hold_second") == 0)
        #expect(try f.store.verify(nil, clock: T) == [])
    }

    @Test func aReclaimedHoldLeavesTheCount() throws {
        let f = try StoreFixture()
        try f.sale(inventory: 1)
        _ = try f.book("a")
        #expect(try overdue(f, at: minutes(5)) == 1)
        // Sold out: b's booking expires a's overdue hold and takes its item.
        let b = try f.book("b", at: minutes(5))
        #expect(try overdue(f, at: minutes(5)) == 0)
        #expect(try overdue(f, at: b.expiresAt) == 1)
        #expect(try f.store.verify(nil, clock: T) == [])
    }

    /// The store's one transaction object keeps a transaction's changes to `hold_second`
    /// until its commit: a read inside it sees them, a rollback drops them.
    @Test func aRolledBackHoldLeavesNoCount() throws {
        let (f, holds) = try threeHolds()
        let transaction = try f.store.beginWrite()
        let extra = Booking(id: BookingID(trusted: "bk_extra"), sale: SaleID(trusted: "s1"), user: "x", status: .held,
                            createdAt: T, expiresAt: minutes(5), confirmedAt: nil, cancelledAt: nil, expiredAt: nil,
                            ip: nil, userAgent: nil, key: nil)
        try transaction.insertHold(extra, countedByAddress: false)
        try transaction.setStatus(of: holds[2], to: .cancelled, at: T)
        #expect(try transaction.overdueHoldCount(in: SaleID("s1"), at: afterExpiry(1000)) == 3)
        transaction.rollback()
        #expect(try overdue(f, at: afterExpiry(1000)) == 3)
        #expect(try f.store.verify(nil, clock: T) == [])
        // Nothing of the rolled-back transaction reaches the next one.
        _ = try f.engine.cancel(holds[1].id, in: SaleID("s1"), user: nil, force: false, clock: T.adding(.seconds(2)))
        #expect(try overdue(f, at: afterExpiry(1000)) == 2)
        #expect(try f.store.verify(nil, clock: T) == [])
    }
}
