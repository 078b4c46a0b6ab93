@testable import FlashSaleStore

/// Changes a database behind flashsale's back, as a careless operator with sqlite3 would,
/// so tests can prove that verify notices.
enum FlashSaleStoreBackdoor {
    static func execute(_ database: String, _ sql: String) throws {
        try Connection(path: database, busyTimeout: .seconds(5)).execute(sql)
    }
}
