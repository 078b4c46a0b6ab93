import Testing
import FlashSaleTestSupport

/// Users and keys are compared byte for byte (contract.md), on both stores and on every
/// path: `é` written as one code point and as `e` with a combining accent are two users,
/// and two keys, where Swift's String == takes them for one.
@Suite struct ExactTextTests {
    static let composed = "\u{E9}"
    static let decomposed = "e\u{301}"

    /// Found by probing: PostgreSQL's read-ahead counted both spellings' bookings as one
    /// user's, and a stream held past the per-user limit (or declined the other user).
    @Test(arguments: commandLineStores)
    func twoSpellingsOfAUserAreTwoUsersInAStream(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "10", "--per-user", "1"])
        try box.run(["book", "s1", Self.composed])
        let lines = [Self.composed, Self.decomposed, Self.composed].map { "{\"user\":\"\($0)\"}\n" }.joined()
        let answers = try ndjson(box.run(["book", "s1", "--stream"], input: lines).stdout)
        #expect(answers.map { $0["ok"] as? Bool } == [false, true, false])
        #expect(try box.run(["verify"]).stdout == "ok\n")
    }

    /// Found by probing: a file of both spellings as one user's keys queued one request and
    /// counted the other repeated, and as two users' keys was refused for a conflict.
    @Test(arguments: commandLineStores)
    func twoSpellingsOfAKeyAreTwoKeysInAFile(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "10", "--per-user", "2"])
        let sameUser = try box.file("same.csv", "user,key\nu1,\(Self.composed)\nu1,\(Self.decomposed)\n")
        #expect(try box.run(["submit", "s1", "--file", sameUser]).line == "2 enqueued (ids 1-2), 0 repeated, 0 skipped")
        let twoUsers = try box.file("two.csv", "user,key\nu2,k\(Self.composed)\nu3,k\(Self.decomposed)\n")
        #expect(try box.run(["submit", "s1", "--file", twoUsers]).line == "2 enqueued (ids 3-4), 0 repeated, 0 skipped")
        #expect(try box.run(["process"]).line == "4 accepted, 0 rejected")
        #expect(try box.run(["verify"]).stdout == "ok\n")
    }
}
