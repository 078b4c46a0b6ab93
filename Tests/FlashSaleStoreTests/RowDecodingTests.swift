import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport
@testable import FlashSaleStore

/// Rows are decoded by column name, as GRDB's `row["total"]`: a SELECT whose columns are
/// reordered still decodes right, and one that lacks a column, or names one twice, fails
/// loudly instead of reading another column in its place.
@Suite struct RowDecodingTests {
    @Test func aDecoderReadsColumnsByNameNotPosition() throws {
        let f = try StoreFixture()
        try f.sale()
        let hold = try f.book("alice")
        #expect(try f.store.db.firstRow("SELECT \(reversedColumns(bookingColumns)) FROM booking", [:], decodeBooking) == hold)
        let sale = try f.store.db.firstRow("SELECT \(reversedColumns(saleColumns)) FROM sale", [:], decodeSale)
        #expect(sale.map { "\($0)" } == "\(try f.engine.sale(SaleID("s1")))")
    }

    @Test func aDecoderMissingAColumnFailsLoudly() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("alice")
        let missing = "SELECT \(reversedColumns(bookingColumns, leaving: "expires_at")) FROM booking"
        let error = #expect(throws: SQLiteError.self) { try f.store.db.firstRow(missing, [:], decodeBooking) }
        #expect(error?.description.contains("no column expires_at") == true, "\(String(describing: error))")
        #expect(error != nil && error?.failure == nil, "a missing column is a bug, not a failure of the database")
    }

    @Test func aColumnNamedTwiceIsNotGuessed() throws {
        let f = try StoreFixture()
        try f.sale()
        _ = try f.book("alice")
        let twice = "SELECT \(bookingColumns), 'mallory' AS user FROM booking"
        #expect(failure { _ = try f.store.db.firstRow(twice, [:], decodeBooking) }?.exitCode == 1)
    }
}
