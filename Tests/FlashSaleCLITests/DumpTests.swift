import Foundation
import Testing

/// The dump behind every "changes nothing" assertion must see every table and column,
/// whatever a migration added (the block, request, request_run and hold_second tables,
/// sqlite_sequence, columns added to sale and booking) and the schema itself.
@Suite struct DumpTests {
    /// A sale with a hold (with an IP), a queued request and a block.
    private func everyTableInUse() throws -> Sandbox {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try box.run(["book", "s1", "alice", "--ip", "203.0.113.7"])
        try box.run(["submit", "s1", "bob"])
        try box.run(["block", "user", "mallory", "--reason", "farm"])
        return box
    }

    @Test(arguments: [
        "UPDATE block SET reason = 'changed'",
        "UPDATE request_run SET last_id = last_id + 1",
        "UPDATE hold_second SET held = held + 1",
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('event', 99)",
        "UPDATE sale SET decided_through = decided_through + 1",
        "UPDATE sale SET per_ip = 7",
        "UPDATE booking SET ip_canonical = 'x'",
        "UPDATE request SET user = 'x' WHERE id = 1",
        "UPDATE event SET detail = NULL WHERE seq = 1",
        "UPDATE booking SET user = CAST(user AS BLOB)",  // the same bytes, another type
        "DELETE FROM booking",
        "DROP INDEX booking_by_user",
        "PRAGMA user_version = 99",
    ])
    func aChangeInAnyTableOrTheSchemaChangesTheDump(change: String) throws {
        let box = try everyTableInUse()
        let before = try box.dump()
        try FlashSaleStoreBackdoor.execute(box.database, change)
        #expect(try box.dump() != before)
    }

    /// Reads, and the dump itself, leave it as it was.
    @Test func readsLeaveTheDumpAsItWas() throws {
        let box = try everyTableInUse()
        let before = try box.dump()
        for words in [["status", "s1"], ["bookings", "s1"], ["events"], ["blocks"], ["verify"]] {
            #expect(try box.run(words).status == 0)
        }
        #expect(try box.dump() == before)
    }
}
