import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport

/// `verify` on each store finds what was changed behind the engine's back, in the same words.
@Suite struct VerifyConformanceTests {
    /// Found by probing: a held booking with the times of later states, and a sale whose
    /// time (`high_water`) was set back before its bookings' events, which let the next
    /// decision be dated before them (the log ran backwards), were both said ok.
    @Test(arguments: stores, [
        ("UPDATE booking SET confirmed_at = created_at",
         "sale s1: 1 booking lacks the time of its status, has a time of a later one, or expires before it was made"),
        ("UPDATE booking SET cancelled_at = created_at, expired_at = created_at",
         "sale s1: 1 booking lacks the time of its status, has a time of a later one, or expires before it was made"),
        ("UPDATE sale SET high_water = 0",
         "sale s1: 3 events of its bookings are dated after its time (high_water), which the next decision would be dated before"),
    ])
    func aChangeBehindTheEnginesBackIsFound(_ kind: StoreKind, tampering: (sql: String, finding: String)) throws {
        let f = try Fixture(kind)
        try f.sale()
        let confirmed = try f.book("a")
        _ = try f.engine.confirm(confirmed.id, in: SaleID("s1"), user: nil, clock: T.adding(.seconds(1)))
        _ = try f.book("b", at: T.adding(.seconds(2)))
        try f.database.tamper(tampering.sql + (tampering.sql.hasPrefix("UPDATE booking") ? " WHERE status = 'held'" : ""))
        #expect(try f.database.violations(clock: T.adding(.seconds(3))) == [tampering.finding])
    }
}
