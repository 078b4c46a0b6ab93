import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleStore
@testable import FlashSalePostgres
import FlashSaleTestSupport

/// Every store the conformance suite runs against. Each test of this target takes each of
/// them in turn (litestream's `RunWithReplicaClient`): the rules are written once, against
/// `Engine` on `any Store`, and a new store joins by adding its kind here, passing the
/// whole suite unchanged. PostgreSQL joins when a server is given (FLASHSALE_TEST_PG);
/// `postgresHalf` says when it is not.
let stores: [StoreKind] = TestPostgres.isConfigured ? [.sqlite, .postgres] : [.sqlite]

/// Reported skipped without a server, so that the PostgreSQL half never passes unseen.
@Test("The conformance suite's PostgreSQL half", .enabled(if: TestPostgres.isConfigured, "FLASHSALE_TEST_PG is not set"))
func postgresHalf() throws {
    #expect(stores.contains { $0.name == StoreKind.postgres.name })
    _ = try PostgresTestDatabase().connect()
}

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
    /// Runs `sql` behind the engine's back, as an operator with the store's own client
    /// would: a change `verify` must notice.
    func tamper(_ sql: String) throws
}

extension StoreKind {
    static let sqlite = StoreKind(name: "SQLite") { try SQLiteDatabase() }
    static let postgres = StoreKind(name: "PostgreSQL") { try PostgresTestDatabase() }
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

    func tamper(_ sql: String) throws {
        try Connection(path: path, busyTimeout: .seconds(30)).execute(sql)
    }
}

/// A schema of its own on the tests' server, dropped when the test lets go of it.
final class PostgresTestDatabase: TestDatabase {
    let location: PostgresLocation

    init() throws {
        guard let server = TestPostgres.server else { throw FlashSaleError.usage("FLASHSALE_TEST_PG is not set") }
        location = PostgresLocation(endpoint: .tcp(host: server.host, port: server.port), user: server.user,
                                    password: server.password, database: server.database, tls: .disable,
                                    schema: TestPostgres.newSchema())
    }

    deinit {
        if let store = try? PostgresStore(location: location, busyTimeout: .seconds(30), createIfMissing: true) {
            _ = try? store.session.execute("DROP SCHEMA \(quotedIdentifier(location.schema)) CASCADE")
        }
    }

    func connect() throws -> any Store {
        try PostgresStore(location: location, busyTimeout: .seconds(30), createIfMissing: true)
    }

    func violations(clock: Instant) throws -> [String] {
        try PostgresStore(location: location, busyTimeout: .seconds(30), createIfMissing: false).verify(nil, clock: clock)
    }

    func tamper(_ sql: String) throws {
        try PostgresStore(location: location, busyTimeout: .seconds(30), createIfMissing: false).session.execute(sql)
    }
}
