import Foundation
import FlashSaleCore
@testable import FlashSaleStore

let T = Instant(milliseconds: 1_795_532_400_000)  // 2026-11-24T15:00:00Z

func minutes(_ m: Int64) -> Instant { T.adding(.seconds(m * 60)) }

/// A store on a fresh database in its own temporary directory, removed afterwards.
final class StoreFixture {
    let directory: URL
    let path: String
    let store: SaleStore

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("test.db").path
        store = try SaleStore(path: path, busyTimeout: .seconds(5), createIfMissing: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A sale opened at T: `inventory` items, 5 minute holds, `perUser` each.
    @discardableResult
    func sale(_ id: String = "s1", inventory: Int64 = 10, perUser: Int64 = 1, endsAt: Instant? = nil) throws -> SaleStatus {
        try store.createSale(SaleDefinition(id: SaleID(id), name: nil, inventory: inventory, hold: .seconds(300),
                                            perUser: perUser, startsAt: T, endsAt: endsAt), clock: T)
    }

    func book(_ user: String, sale: String = "s1", key: String? = nil, at clock: Instant = T) throws -> Booking {
        let request = BookingRequest(sale: try SaleID(sale), user: user, ip: nil, userAgent: nil, key: key)
        switch try store.book(request, clock: clock) {
        case .held(let booking), .repeated(let booking): return booking
        }
    }

    func counters(_ sale: String = "s1", at clock: Instant = T) throws -> Counters {
        try store.status(SaleID(sale), clock: clock).sale.counters
    }

    func count(_ sql: String) throws -> Int64 {
        try store.db.firstRow(sql) { $0.int64(0) } ?? -1
    }
}

/// The contract error a call threw, or nil.
func failure(_ body: () throws -> Void) -> FlashSaleError? {
    do {
        try body()
        return nil
    } catch let error as FlashSaleError {
        return error
    } catch {
        return .internalFailure("\(error)")
    }
}

func counters(_ total: Int64, available: Int64, held: Int64, booked: Int64, cancelled: Int64 = 0, expired: Int64 = 0) -> Counters {
    Counters(total: total, available: available, held: held, booked: booked, cancelled: cancelled, expired: expired)
}
