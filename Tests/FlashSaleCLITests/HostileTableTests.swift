import Foundation
import Testing
@testable import FlashSaleStore

/// One hostile value put into every text slot of every command: each run either succeeds
/// (and a stored value reads back byte for byte) or fails with a contract exit code, one
/// line on stderr and the database exactly as it was.
@Suite struct HostileTableTests {
    static let values: [HostileValue] = [
        HostileValue("sql", "x'); DROP TABLE booking; --"),
        HostileValue("sql-quote", "' OR '1'='1"),
        HostileValue("10KB", tenKB),
        HostileValue("nfc", "caf\u{E9}"),
        HostileValue("nfd", "cafe\u{301}"),
        HostileValue("huge", "99999999999999999999"),
        HostileValue("negative", "-5"),
        HostileValue("empty", ""),
        HostileValue("dashes", "--x"),
        HostileValue("controls", "a\tb\u{7F}c\r\nd\u{1B}[31m"),
        HostileValue("emoji", "\u{1F600}\u{200D}\u{1F525}"),
    ]

    /// Every command's text slots; V is the value, B an existing held booking.
    static let slots: [[String]] = [
        ["create-sale", "V", "--inventory", "1"],
        ["create-sale", "n2", "--inventory", "V"],
        ["create-sale", "n3", "--inventory", "1", "--hold", "V"],
        ["create-sale", "n4", "--inventory", "1", "--per-user", "V"],
        ["create-sale", "n5", "--inventory", "1", "--per-ip", "V"],
        ["create-sale", "n6", "--inventory", "1", "--starts", "V"],
        ["create-sale", "n7", "--inventory", "1", "--ends", "V"],
        ["seed-inventory", "s1", "V"],
        ["seed-inventory", "V", "1"],
        ["pause", "V"], ["resume", "V"], ["close", "V"],
        ["book", "s1", "V"],
        ["book", "V", "u1"],
        ["confirm", "s1", "V"],
        ["confirm", "s1", "B", "--user", "V"],
        ["cancel", "s1", "V"],
        ["cancel", "s1", "B", "--user", "V"],
        ["sweep", "V"],
        ["sweep", "--limit", "V"],
        ["submit", "V", "u1"],
        // A request's JSON does not show its key, so this one is checked as a slot only.
        ["submit", "s2", "k2", "--key", "V"],
        ["submit", "s1", "--file", "-", "--format", "V"],
        ["process", "V"],
        ["process", "--batch", "V"],
        ["process", "--limit", "V"],
        ["request", "V"],
        ["status", "V"],
        ["bookings", "V"],
        ["bookings", "s1", "--user", "V"],
        ["bookings", "s1", "--status", "V"],
        ["booking", "s1", "V"],
        ["booking", "V", "B"],
        ["verify", "V"],
        ["block", "V", "x"],
        ["block", "ip", "V"],
        ["block", "user", "b1", "--sale", "V"],
        ["unblock", "user", "V"],
        ["unblock", "agent", "V"],
        ["events", "--sale", "V"],
        ["events", "--after", "V"],
        ["events", "--limit", "V"],
        ["export", "V"],
        ["export", "s1", "--format", "V"],
        ["export", "s1", "--status", "V"],
        ["metrics", "--sale", "V"],
        ["suspects", "V"],
        ["completions", "V"],
        ["help", "V"],
        ["--busy-timeout", "V", "sales"],
    ]

    /// Slots that name a file, relative to the working directory: these run as processes,
    /// in the sandbox (the test runner's directory is not one to write in).
    static let pathSlots: [[String]] = [
        ["submit", "s1", "--file", "V"],
        ["backup", "V"],
    ]

    /// Slots that store the value: where it is written, and the JSON field that shows it.
    static let stored: [(slot: [String], read: [String], field: String)] = [
        (["book", "s2", "--", "V"], ["booking", "s2", "ID", "--json"], "user"),
        (["book", "s2", "k1", "--key", "V"], ["booking", "s2", "ID", "--json"], "key"),
        (["book", "s2", "a1", "--user-agent", "V"], ["booking", "s2", "ID", "--json"], "user_agent"),
        (["book", "s2", "i1", "--ip", "V"], ["booking", "s2", "ID", "--json"], "ip"),
        (["submit", "s2", "--", "V"], ["request", "ID", "--json"], "user"),
        (["create-sale", "named", "--inventory", "1", "--name", "V"], ["status", "named", "--json"], "name"),
    ]

    @Test(arguments: values)
    func everySlotRefusesCleanlyOrStoresTheValueAsGiven(value: HostileValue) throws {
        let (box, booking) = try targetSandbox()
        try box.run(["create-sale", "s2", "--inventory", "100"])
        for slot in Self.slots {
            let words = slot.map { $0 == "V" ? value.text : $0 == "B" ? booking : $0 }
            try expectCleanOutcome(box, words, input: "")
        }
        for slot in Self.pathSlots {
            try expectCleanOutcome(box, slot.map { $0 == "V" ? value.text : $0 }, input: "", inProcess: false)
        }
        for (slot, read, field) in Self.stored {
            let words = slot.map { $0 == "V" ? value.text : $0 }
            let result = try expectCleanOutcome(box, words, input: nil)
            // An empty optional value means absent (anEmptyOptionalValueMeansAbsent).
            guard result.status == 0, !value.text.isEmpty else { continue }
            // `book` and `submit` print the new id alone.
            let shown = try box.run(read.map { $0 == "ID" ? result.line : $0 }).json()[field] as? String
            #expect(shown == value.text, "\(words): stored \(String(reflecting: value.text)), reads back \(String(reflecting: shown))")
        }
        #expect(try box.run(["verify"]).status == 0)
    }

    /// Blocks list as an array, so they are read back here rather than in `stored`.
    @Test(arguments: values)
    func aBlockKeepsItsValueAndReasonAsGiven(value: HostileValue) throws {
        let (box, _) = try targetSandbox()
        let blocked = try expectCleanOutcome(box, ["block", "user", "--reason", value.text, "--", value.text], input: nil)
        // Only an empty user and one over the 256-byte limit are refused.
        #expect((blocked.status == 0) == (!value.text.isEmpty && value.text.utf8.count <= 256))
        guard blocked.status == 0 else { return }
        let blocks = try box.run(["blocks", "--json"]).jsonArray()
        #expect(blocks.count == 1)
        #expect(blocks.first?["value"] as? String == value.text)
        #expect(blocks.first?["reason"] as? String == (value.text.isEmpty ? nil : value.text))
        #expect(try expectCleanOutcome(box, ["unblock", "user", "--", value.text], input: nil).status == 0)
        #expect(try box.run(["blocks", "--json"]).jsonArray().isEmpty)
    }

    /// Bytes a Swift String cannot carry (`printf 'caf\351\377'`): invalid UTF-8 in every
    /// slot is refused as a usage error, and changes nothing. That argv reaches CLI.run as
    /// these bytes, HostileArgumentTests.invalidUTF8IsRefused shows through a shell.
    @Test func invalidUTF8InEverySlotIsAUsageErrorAndChangesNothing() throws {
        let (box, booking) = try targetSandbox()
        let before = try box.dump()
        let bad = Array("caf".utf8) + [0o351, 0o377]
        for slot in Self.slots + Self.pathSlots + Self.stored.map(\.slot) {
            let result = try box.run(bytes: slot.map { $0 == "V" ? bad : Array(($0 == "B" ? booking : $0).utf8) })
            #expect(result.status == 2, "\(slot)")
            #expect(result.stderr.hasPrefix("flashsale: ") && result.stderr.contains("not valid UTF-8"), "\(slot): \(result.stderr)")
            #expect(result.stderr.filter { $0 == "\n" }.count == 1, "\(slot): \(result.stderr)")
        }
        #expect(try box.dump() == before)
    }

    /// NUL bytes cannot go through argv; through standard input they are bad input.
    @Test func aNULInAFileIsBadInputAndEnqueuesNothing() throws {
        let (box, _) = try targetSandbox()
        let before = try box.dump()
        for input in ["{\"user\":\"a\u{0}b\"}\n", "user\na\u{0}b\n", "user,key\nu1,k\u{0}\n"] {
            let result = try box.run(["submit", "s1", "--file", "-"], input: input)
            #expect(result.status == 65)
            #expect(result.stderr.filter { $0 == "\n" }.count == 1 && result.stderr.contains("NUL"))
            let stream = try box.run(["book", "s1", "--stream"], input: input)
            #expect(stream.status == 0)
            #expect(stream.stdout.contains(#""error": "bad_input""#) || stream.stdout.contains(#""error":"bad_input""#))
        }
        #expect(try box.dump() == before)
    }

    /// Runs `words`; checks the outcome is clean (see the suite) and returns it.
    @discardableResult
    private func expectCleanOutcome(_ box: Sandbox, _ words: [String], input: String?, inProcess: Bool = true) throws -> Result {
        let before = try box.dump()
        let result = try inProcess ? box.run(words, input: input) : box.spawn(words, input: input)
        let label = "\(words.map { String($0.prefix(40)) })"
        if result.status == 0 {
            #expect(result.stderr.isEmpty, "\(label): \(result.stderr)")
            return result
        }
        // Usage, not found, conflict, a decline (a sale paused or closed by an earlier slot), bad input, can't open.
        #expect([2, 3, 4, 5, 6, 7, 8, 9, 65, 73].contains(result.status), "\(label) exited \(result.status): \(result.stderr)")
        #expect(result.stderr.hasPrefix("flashsale: ") && result.stderr.filter { $0 == "\n" }.count == 1,
                "\(label): stderr \(String(reflecting: result.stderr))")
        #expect(result.stdout.isEmpty, "\(label): stdout \(result.stdout)")
        // A declined booking is a decision, not a failure: it counts its attempt, and only that.
        let after = try box.dump()
        if [4, 6, 7, 8, 9].contains(result.status) {
            #expect(withoutAttemptCounts(after) == withoutAttemptCounts(before), "\(label) failed but changed the database")
        } else {
            #expect(after == before, "\(label) failed but changed the database")
        }
        return result
    }
}

struct HostileValue: Sendable, CustomTestStringConvertible {
    let name: String
    let text: String

    init(_ name: String, _ text: String) {
        self.name = name
        self.text = text
    }

    var testDescription: String { name }
}
