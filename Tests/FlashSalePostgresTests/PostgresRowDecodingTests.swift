import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
@testable import FlashSalePostgres
import FlashSaleTestSupport

/// PostgreSQL's rows are decoded by column name, as SQLite's (`RowDecodingTests`): found
/// once per answer and by the name literal's address after that (`ColumnFinder`), which
/// must still read each row's own cells, in whatever order the SELECT names them, and fail
/// loudly for a column the answer lacks or has twice.
@Suite(.enabled(if: TestPostgres.isConfigured, "FLASHSALE_TEST_PG is not set: no PostgreSQL server to test"))
struct PostgresRowDecodingTests {
    let store: PostgresStore
    let engine: Engine

    init() throws {
        store = try PostgresStore(location: try #require(TestPostgres.server).newLocation(), busyTimeout: .seconds(30),
                                  createIfMissing: true)
        engine = Engine(store: store)
        for sale in ["s1", "s2"] {
            _ = try engine.createSale(SaleDefinition(id: SaleID(sale), name: nil, inventory: 10, hold: .seconds(300),
                                                 perUser: 1, waitlist: false, startsAt: T, endsAt: nil), clock: T)
        }
    }

    private func dropSchema() {
        _ = try? store.session.execute("DROP SCHEMA \(quotedIdentifier(store.session.location.schema)) CASCADE")
    }

    private func book(_ user: String) throws -> Booking {
        try engine.book(BookingRequest(sale: SaleID("s1"), user: UserID(trusted: user), ip: nil, userAgent: nil, key: nil), clock: T)
    }

    @Test func everyRowOfAnAnswerReadsItsOwnCellsInAnyColumnOrder() throws {
        defer { dropSchema() }
        let holds = try ["alice", "bob", "carol"].map { try book($0) }
        let read = try store.session.rows("SELECT \(reversedColumns(bookingColumns)) FROM booking ORDER BY made", [], decodeBooking)
        #expect(read == holds)
        let sales = try store.session.rows("SELECT \(reversedColumns(saleColumns)) FROM sale ORDER BY id", [], decodeSale)
        #expect(sales.map { "\($0)" } == [try engine.sale(SaleID("s1")), try engine.sale(SaleID("s2"))].map { "\($0)" })
    }

    @Test func aDecoderMissingAColumnFailsLoudly() throws {
        defer { dropSchema() }
        _ = try book("alice")
        let missing = "SELECT \(reversedColumns(bookingColumns, leaving: "expires_at")) FROM booking"
        let error = #expect(throws: PostgresError.self) { try store.session.firstRow(missing, [], decodeBooking) }
        #expect(error?.description.contains("no column expires_at") == true, "\(String(describing: error))")
        #expect(error != nil && error?.failure == nil, "a missing column is a bug, not a failure of the database")
    }

    @Test func aColumnNamedTwiceIsNotGuessed() throws {
        defer { dropSchema() }
        _ = try book("alice")
        let twice = "SELECT \(bookingColumns), 'mallory' AS \"user\" FROM booking"
        let error = #expect(throws: PostgresError.self) { try store.session.firstRow(twice, [], decodeBooking) }
        #expect(error?.description.contains("column user more than once") == true, "\(String(describing: error))")
    }
}
