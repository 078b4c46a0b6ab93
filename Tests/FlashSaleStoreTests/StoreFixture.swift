import Foundation
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport
@testable import FlashSaleStore

/// An SQLite store on a fresh database in its own temporary directory, removed afterwards,
/// for what only SQL can see or do: the rules themselves are in the conformance suite
/// (FlashSaleEngineTests), run against every store.
final class StoreFixture {
    let directory: URL
    let path: String
    let store: SQLiteStore
    let engine: Engine

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("test.db").path
        store = try SQLiteStore(path: path, busyTimeout: .seconds(5), createIfMissing: true)
        engine = Engine(store: store)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A sale opened at T: `inventory` items, 5 minute holds, `perUser` each.
    @discardableResult
    func sale(_ id: String = "s1", inventory: Int64 = 10, perUser: Int64 = 1) throws -> SaleStatus {
        try engine.createSale(SaleDefinition(id: SaleID(id), name: nil, inventory: inventory, hold: .seconds(300),
                                            perUser: perUser, startsAt: T, endsAt: nil), clock: T)
    }

    func book(_ user: String, sale: String = "s1", at clock: Instant = T) throws -> Booking {
        try engine.book(BookingRequest(sale: SaleID(sale), user: UserID(trusted: user), ip: nil, userAgent: nil, key: nil), clock: clock)
    }

    func counters(_ sale: String = "s1", at clock: Instant = T) throws -> Counters {
        try engine.status(SaleID(sale), clock: clock).sale.counters
    }

    func count(_ sql: String) throws -> Int64 {
        try store.db.firstRow(sql) { $0.int64(0) } ?? -1
    }
}
