import Testing
import FlashSaleEngine

/// How both stores' rows find a column for a decoder's name literal (`ColumnFinder`):
/// by text the first time, by the literal's address after, never a column of another name.
@Suite struct ColumnFinderTests {
    @Test func eachNameFindsItsOwnColumnInAnyOrderOfAsking() throws {
        let finder = ColumnFinder(names: ["state", "id", "total"])
        for _ in 0..<3 {
            #expect(try finder.position(of: "total") == 2)
            #expect(try finder.position(of: "state") == 0)
            #expect(try finder.position(of: "id") == 1)
            #expect(try finder.position(of: "id") == 1)
        }
    }

    /// Two decoders, each with its own literal of the same name, take turns at one result;
    /// a name that only starts like a column's is not that column.
    @Test func literalsOfOneNameFindTheSameColumnAndNoOtherName() throws {
        let finder = ColumnFinder(names: ["id", "sale"])
        let one: StaticString = "sale"
        let another = StaticString("sale")
        let longer: StaticString = "sale "
        for _ in 0..<2 {
            #expect(try finder.position(of: one) == 1)
            #expect(try finder.position(of: another) == 1)
            #expect(throws: MissingColumn.self) { try finder.position(of: longer) }
        }
    }

    @Test func aMissingOrDoubledColumnIsNamedNotGuessed() throws {
        let missing = #expect(throws: MissingColumn.self) { try ColumnFinder(names: []).position(of: "id") }
        #expect(missing?.description == "no column id")
        let doubled = #expect(throws: MissingColumn.self) { try ColumnFinder(names: ["user", "id", "user"]).position(of: "user") }
        #expect(doubled?.description == "column user more than once")
        #expect(try ColumnFinder(names: ["user", "id", "user"]).position(of: "id") == 1)
    }
}
