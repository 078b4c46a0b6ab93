@testable import FlashSaleStore

/// Changes a database behind flashsale's back, as a careless operator with sqlite3 would,
/// so tests can prove that verify notices.
enum FlashSaleStoreBackdoor {
    static func execute(_ database: String, _ sql: String) throws {
        try execute(database, [sql])
    }

    /// Runs `statements` in turn on one connection (a PRAGMA holds for those after it).
    static func execute(_ database: String, _ statements: [String]) throws {
        let connection = try Connection(path: database, busyTimeout: .seconds(5))
        for sql in statements { try connection.execute(sql) }
    }

    /// The schema version this build writes, for a test that sets a file's back by hand.
    static var schemaVersion: Int64 { Schema.currentVersion }
}
