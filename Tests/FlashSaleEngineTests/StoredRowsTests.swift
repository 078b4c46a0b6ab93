import Testing
import FlashSaleCore
import FlashSaleEngine

/// The decoders both stores share, on rows no store wrote: what a database changed by
/// hand can hold, each refused with the same words whichever store read it.
@Suite struct StoredRowsTests {
    /// A row of named cells; a column it lacks fails as a store's own error does.
    private struct CellRow: StoredRow {
        var cells: [String: Any?]

        private func cell<T>(_ column: StaticString) throws -> T? {
            guard let cell = cells["\(column)"] else { throw MissingColumn(name: "\(column)") }
            return cell as? T
        }

        func text(_ column: StaticString) throws -> String { try cell(column) ?? "" }
        func optionalText(_ column: StaticString) throws -> String? { try cell(column) }
        func int64(_ column: StaticString) throws -> Int64 { try cell(column) ?? 0 }
        func optionalInt64(_ column: StaticString) throws -> Int64? { try cell(column) }
        func bool(_ column: StaticString) throws -> Bool { try cell(column) ?? false }
    }

    private struct MissingColumn: StoreError, Equatable {
        let name: String
        var failure: StoreFailure? { nil }
    }

    private func unusable(_ body: () throws -> Void) -> String? {
        do {
            try body()
        } catch StoreFailure.unusable(let detail) {
            return detail
        } catch {
            return "\(error)"
        }
        return nil
    }

    private let block: [String: Any?] = [
        "kind": "ip", "value": "203.0.113.0/24", "contains": false, "sale": nil, "reason": nil, "created_at": Int64(5),
    ]

    @Test func aBlockIsDecodedWithItsBoolean() throws {
        var row = block
        row["kind"] = "agent"
        row["value"] = "curl"
        row["contains"] = true
        row["sale"] = "s1"
        let decoded = try decodeBlock(CellRow(cells: row))
        #expect(decoded == (try Block(kind: .agent, value: "curl", contains: true, sale: SaleID("s1"), reason: nil,
                                      createdAt: Instant(milliseconds: 5))))
    }

    @Test func aBlockThatBlockWouldRefuseIsAnUnusableDatabase() {
        var row = block
        row["value"] = "not an address"
        #expect(unusable { _ = try decodeBlock(CellRow(cells: row)) } == "the ip block 'not an address' is not a valid block")
        row["kind"] = "planet"
        #expect(unusable { _ = try decodeBlock(CellRow(cells: row)) } == "a block has the unknown kind 'planet'")
    }

    /// A store's own error inside is its own: a bug in the SQL stays a bug, not a
    /// database changed by hand.
    @Test func aStoreErrorInsideABlockPassesThroughUnchanged() {
        var row = block
        row.removeValue(forKey: "created_at")
        #expect(throws: MissingColumn(name: "created_at")) { _ = try decodeBlock(CellRow(cells: row)) }
    }

    @Test func unknownValuesAreNamedWithTheirRecord() {
        #expect(unusable { _ = try decodeSale(CellRow(cells: ["state": "melted", "id": "s1"])) }
                == "sale s1 has the unknown state 'melted'")
        #expect(unusable { _ = try decodeBooking(CellRow(cells: ["status": "lost", "id": "b1"])) }
                == "booking b1 has the unknown status 'lost'")
        #expect(unusable { _ = try decodeEvent(CellRow(cells: ["kind": "party", "seq": Int64(7)])) }
                == "event 7 has the unknown kind 'party'")
        #expect(unusable { _ = try decodeRequest(CellRow(cells: ["decision": "created", "id": Int64(3)])) }
                == "request 3 was decided by an event of the kind 'created'")
    }

    @Test func attemptTotalsAddStoredAndUnwrittenAndRefuseAnUnknownReason() throws {
        let sale = try SaleID("s1")
        var totals = AttemptTotals()
        try totals.add(storedTotal: CellRow(cells: ["value": "", "attempts": Int64(4)]), of: sale)
        try totals.add(storedTotal: CellRow(cells: ["value": ErrorCode.soldOut.rawValue, "attempts": Int64(2)]), of: sale)
        #expect(totals == AttemptTotals(attempts: 4, declined: [.soldOut: 2]))
        #expect(unusable { try totals.add(storedTotal: CellRow(cells: ["value": "bored", "attempts": Int64(1)]), of: sale) }
                == "sale s1 has attempts declined for the unknown reason 'bored'")
    }
}
