import Testing
import FlashSaleCore
@testable import FlashSaleStore

/// `users_added`, the SQL function that merges two counters' samples of users in the
/// counters' upsert: as `UserSample.formUnion` does, with NULL for none.
@Suite struct UsersAddedTests {
    private func added(_ stored: String?, _ added: String?) throws -> String? {
        let fixture = try StoreFixture()
        return try fixture.store.db.firstRow("SELECT users_added(:stored, :added)", [":stored": .text(stored), ":added": .text(added)]) {
            $0.optionalText(0)
        } ?? nil
    }

    @Test func noneAddedKeepsWhatIsStoredAndNoneStoredTakesWhatIsAdded() throws {
        #expect(try added(nil, nil) == nil)
        #expect(try added("[1,2]", nil) == "[1,2]")
        #expect(try added(nil, "[3]") == "[3]")
        #expect(try added("[3]", "[3]") == "[3]")
    }

    @Test func twoSamplesMergeAsFormUnionDoes() throws {
        var stored = UserSample(), more = UserSample()
        for n in 0..<50 { stored.insert("a\(n)") }
        for n in 0..<50 { more.insert("b\(n)") }
        var union = stored
        union.formUnion(more)
        #expect(try added(stored.json, more.json) == union.json)
        #expect(try added("[5,1]", "[3,1]") == "[1,3,5]")
        // What is not a hash, in a column no flashsale wrote, is left out.
        #expect(try added("[1,\"x\",2]", "[oops]") == "[1,2]")
    }
}
