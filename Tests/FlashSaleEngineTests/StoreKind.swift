import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleStore

/// Every store the conformance suite runs against. Each test of this target takes each of
/// them in turn (litestream's `RunWithReplicaClient`): the rules are written once, against
/// `Engine` on `any Store`, and a new store joins by adding its kind here, passing the
/// whole suite unchanged.
let stores: [StoreKind] = [.sqlite]

/// How to make an empty database of one store.
struct StoreKind: Sendable, CustomTestStringConvertible {
    let name: String
    /// A new, empty database for one test.
    let makeDatabase: @Sendable () throws -> any TestDatabase

    var testDescription: String { name }
}

/// One test's database, removed when the test lets go of it.
protocol TestDatabase: AnyObject, Sendable {
    /// A new connection, as another process would open it: only the database is shared.
    func connect() throws -> any Store
    /// The store's own recount of every invariant (`verify`), done in its own terms and
    /// independently of the engine: the violations found, none when all is well.
    func violations(clock: Instant) throws -> [String]
}

extension StoreKind {
    static let sqlite = StoreKind(name: "SQLite") { try SQLiteDatabase() }
}

/// A database file in a temporary directory of its own.
final class SQLiteDatabase: TestDatabase {
    private let directory: URL
    private let path: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-conformance-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("test.db").path
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    func connect() throws -> any Store {
        try SQLiteStore(path: path, busyTimeout: .seconds(30), createIfMissing: true)
    }

    func violations(clock: Instant) throws -> [String] {
        try SQLiteStore(path: path, busyTimeout: .seconds(30)).verify(nil, clock: clock)
    }
}
