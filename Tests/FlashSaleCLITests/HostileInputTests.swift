import Foundation
import Testing
@testable import FlashSaleStore
import FlashSaleTestSupport

/// A sale with one hold, to attack.
func targetSandbox() throws -> (Sandbox, String) {
    let box = try Sandbox()
    try box.run(["create-sale", "s1", "--inventory", "5"])
    let id = try box.run(["book", "s1", "alice"]).line
    return (box, id)
}

let tenKB = String(repeating: "x", count: 10_240)

@Suite struct HostileArgumentTests {
    /// Each of these is refused with exit 2, a one-line message, and no change at all.
    static let refused: [[String]] = [
        ["book", "s1'; DROP TABLE sale; --", "u1"],
        ["book", "s1", tenKB],
        ["book", "s1", "u1", "--key", tenKB],
        ["book", "s1", "u1", "--user-agent", tenKB],
        ["book", "s1", "u1", "--ip", tenKB],
        ["book", "s1", "u1", "--ip", "999.1.1.1"],
        ["book", "s1", "u1", "--ip", "1.2.3.4; rm -rf /"],
        ["book", tenKB, "u1"],
        ["book", "s1", ""],
        ["book", "s1", "-bob"],
        ["create-sale", "s2", "--inventory", "-5"],
        ["create-sale", "s2", "--inventory=-5"],
        ["create-sale", "s2", "--inventory", "99999999999999999999"],
        ["create-sale", "s2", "--inventory", "1000000001"],
        ["create-sale", "s2", "--inventory", "1e3"],
        ["create-sale", "s2", "--inventory", " 5"],
        ["create-sale", "s2", "--inventory", "5", "--per-user", "0"],
        ["create-sale", "s2", "--inventory", "5", "--hold", "0s"],
        ["create-sale", "s2", "--inventory", "5", "--hold", "99999999999h"],
        ["create-sale", "s2", "--inventory", "5", "--hold", "31d"],
        ["create-sale", "s2", "--inventory", "5", "--starts", "yesterday"],
        ["create-sale", "s2", "--inventory", "5", "--starts", "+1h", "--ends", "+30m"],
        ["create-sale", "s2", "--inventory", "5", "--name", tenKB],
        ["create-sale", "-s2", "--inventory", "5"],
        ["create-sale", "s2; DROP TABLE booking", "--inventory", "5"],
        ["seed-inventory", "s1", "-5"],
        ["seed-inventory", "s1", "--", "-5"],
        ["seed-inventory", "s1", "18446744073709551616"],
        ["confirm", "s1", "' OR 1=1 --"],
        ["confirm", "s1", tenKB],
        ["cancel", "s1", "bk_short", "--force"],
        ["sweep", "--limit", "0"],
        ["sweep", "--limit", "-1"],
        ["events", "--after", "4611686018427387904"],
        ["bookings", "s1", "--status", "held' OR '1'='1"],
        ["--busy-timeout", "forever", "book", "s1", "u1"],
        ["book", "s1", "u1", "--bogus"],
    ]

    /// Found by probing: a hold past every duration's limit was refused naming that
    /// limit (87840h), one past the hold's own (721h) naming 720h.
    @Test(arguments: ["100000h", "721h"])
    func aHoldTooLongIsRefusedNamingTheHoldsLimit(hold: String) throws {
        let box = try Sandbox()
        let result = try box.run(["create-sale", "s1", "--inventory", "5", "--hold", hold])
        #expect(result.status == 2)
        #expect(result.stderr.contains("720h") && !result.stderr.contains("87840h"), "\(result.stderr)")
    }

    @Test(arguments: refused)
    func isRefusedWithUsageAndChangesNothing(words: [String]) throws {
        let (box, _) = try targetSandbox()
        let before = try box.dump()
        let result = try box.run(words)
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("flashsale: "))
        #expect(result.stderr.filter { $0 == "\n" }.count == 1)
        #expect(result.stderr.count < 400)
        #expect(try box.dump() == before)
    }

    /// A range's message names its bounds, and both are taken: 19 digits were refused
    /// whatever the range said.
    @Test func theLargestNumberARangeNamesIsTaken() throws {
        let (box, _) = try targetSandbox()
        let result = try box.run(["events", "--limit", "4611686018427387903"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stdout.isEmpty)
        #expect(try box.run(["events", "--after", "00000000000000000000001", "--limit", "1"]).status == 0)
        #expect(try box.run(["events", "--after", "4611686018427387904"]).stderr
                == "flashsale: --after must be a whole number from 0 to 4611686018427387903, not '4611686018427387904'\n")
    }

    @Test func aBadClockIsAUsageError() throws {
        let (box, _) = try targetSandbox()
        let before = try box.dump()
        #expect(try box.run(["book", "s1", "u2"], now: "next tuesday").status == 2)
        #expect(try box.run(["book", "s1", "u2"], now: "+5m").status == 2)
        #expect(try box.dump() == before)
    }

    @Test(arguments: [
        #"book s1 "$(printf 'bad\377user')""#,
        #"book "$(printf 's\3771')" u1"#,
        #"book s1 u1 --key "$(printf '\300\200')""#,
        #"book s1 u1 --user-agent "$(printf 'Mozilla\355\240\200')""#,
        #"create-sale s2 --inventory 1 --name "$(printf '\377')""#,
    ])
    func invalidUTF8IsRefused(command: String) throws {
        let (box, _) = try targetSandbox()
        let before = try box.dump()
        let result = try box.shell(#""$FLASHSALE" --db "$DB" "# + command)
        #expect(result.status == 2)
        #expect(result.stderr.contains("is not valid UTF-8"))
        #expect(try box.dump() == before)
    }

    /// HOME and PGPASSFILE only say where libpq's files are: one that is not UTF-8 is no
    /// reason to refuse a command.
    @Test func aHomeThatIsNotUTF8IsNoReasonToRefuse() throws {
        let (box, _) = try targetSandbox()
        let result = try box.shell(#"HOME="$(printf '/tmp/\377')" PGPASSFILE="$(printf '\377')" "$FLASHSALE" --db "$DB" sales"#)
        #expect(result.status == 0, "\(result.stderr)")
    }

    /// Found by probing: a variable that is not UTF-8 was refused before anything ran, so
    /// that `help`, `--version`, `completions`, a command given --db, and one on a SQLite
    /// file with a stray PGHOST all exited 2. It is refused where it is read, naming it.
    @Test func aVariableThatIsNotUTF8IsRefusedOnlyWhereItIsRead() throws {
        let (box, _) = try targetSandbox()
        let unread = [
            #"FLASHSALE_DB="$(printf '\377')" "$FLASHSALE" --version"#,
            #"FLASHSALE_DB="$(printf '\377')" "$FLASHSALE" help"#,
            #"FLASHSALE_DB="$(printf '\377')" FLASHSALE_NOW="$(printf '\377')" "$FLASHSALE" completions bash"#,
            #"FLASHSALE_DB="$(printf '/tmp/\377')" "$FLASHSALE" --db "$DB" sales"#,
            #"PGHOST="$(printf '\377')" "$FLASHSALE" --db "$DB" sales"#,
            #"FLASHSALE_NOW="$(printf '\377')" "$FLASHSALE" --db "$DB" init"#,
        ]
        for command in unread {
            let result = try box.shell(command)
            #expect(result.status == 0, "\(command): \(result.stderr)")
        }
        let read = [
            (#"FLASHSALE_DB="$(printf '\377')" "$FLASHSALE" sales"#, "FLASHSALE_DB"),
            (#"FLASHSALE_NOW="$(printf '\377')" "$FLASHSALE" --db "$DB" sales"#, "FLASHSALE_NOW"),
            (#"PGHOST="$(printf '\377')" "$FLASHSALE" --db postgresql://localhost:1/x sales"#, "PGHOST"),
        ]
        for (command, name) in read {
            let result = try box.shell(command)
            #expect(result.status == 2 && result.stderr == "flashsale: \(name) is not valid UTF-8\n", "\(command): \(result.stderr)")
        }
    }

    /// Found by probing: with standard input closed, SQLite put /dev/null where it was, and
    /// `-` read as an empty input: success, nothing done. `cat <&-` fails; so does flashsale.
    @Test(arguments: ["book s1 --stream", "submit s1 --file -"])
    func aClosedStandardInputIsRefused(command: String) throws {
        let (box, _) = try targetSandbox()
        let before = try box.dump()
        let result = try box.shell(#""$FLASHSALE" --db "$DB" "# + command + " <&-")
        #expect(result.status == 2)
        #expect(result.stderr == "flashsale: cannot read standard input: it is closed\n")
        #expect(try box.dump() == before)
    }

    /// Found by probing: `+87841h` was "not a time ... from 1970 to 9999-11-30", a range it
    /// is well inside; the refusal names the limit it is over.
    @Test func aDurationOverTenYearsIsRefusedNamingTheLimit() throws {
        let (box, _) = try targetSandbox()
        let starts = try box.run(["create-sale", "s2", "--inventory", "1", "--starts", "+87841h"])
        #expect(starts.status == 2 && starts.stderr.contains("+DURATION (up to 87840h)"), "\(starts.stderr)")
        let timeout = try box.run(["--busy-timeout", "87841h", "status", "s1"])
        #expect(timeout.status == 2 && timeout.stderr.contains("up to 87840h"), "\(timeout.stderr)")
        #expect(try box.run(["create-sale", "s2", "--inventory", "1", "--starts", "+87840h"]).status == 0)
    }

    @Test func aNULByteIsRefused() throws {
        // argv cannot carry a NUL; a caller embedding flashsale's CLI can, and is refused too.
        let (box, _) = try targetSandbox()
        let before = try box.dump()
        let result = try box.run(["book", "s1", "a\u{0}b"])
        #expect(result.status == 2)
        #expect(result.stderr == "flashsale: user contains a NUL byte\n")
        #expect(try box.dump() == before)
    }

    @Test func sqlTextAsAUserIsStoredAndReturnedByteForByte() throws {
        let (box, _) = try targetSandbox()
        let user = "Robert'); DROP TABLE booking;--\u{1F600}\t\"q\""
        let id = try box.run(["book", "s1", "--", user]).line
        #expect(try box.run(["booking", "s1", id, "--json"]).json()["user"] as? String == user)
        #expect(try box.run(["bookings", "s1", "--user", user, "--json"]).jsonArray().count == 1)
        #expect(try box.run(["verify"]).status == 0)
    }

    @Test func nfcAndNFDSpellingsAreDistinctUsers() throws {
        let (box, _) = try targetSandbox()
        #expect(try box.run(["book", "s1", "caf\u{E9}"]).status == 0)
        #expect(try box.run(["book", "s1", "cafe\u{301}"]).status == 0)
        #expect(try box.run(["book", "s1", "caf\u{E9}"]).status == 7)
    }

    @Test func anEmptyOptionalValueMeansAbsent() throws {
        let (box, _) = try targetSandbox()
        let booking = try box.run(["book", "s1", "bob", "--ip", "", "--key", "", "--json"]).json()
        #expect(booking["ip"] is NSNull)
        #expect(booking["key"] is NSNull)
    }
}

@Suite struct DatabaseFailureTests {
    @Test func aWriteLockHeldPastTheBusyTimeoutIsExit75AndChangesNothing() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1"])
        let before = try box.dump()
        let holder = try Connection(path: box.database, busyTimeout: .seconds(0))
        try holder.execute("BEGIN IMMEDIATE")
        let result = try box.run(["--busy-timeout", "200ms", "book", "s1", "u1"])
        try holder.execute("ROLLBACK")
        #expect(result.status == 75)
        #expect(result.stderr == "flashsale: the database is locked by another process; retry, or raise --busy-timeout\n")
        #expect(try box.dump() == before)
        #expect(try box.run(["book", "s1", "u1"]).status == 0)
    }

    /// Found by probing: a request in a sale that does not exist, made while another
    /// process held the write lock, was busy (75, "retry"), where a retry can never succeed
    /// and the sale's existence is the first check (the follow-up probe found the commands
    /// after `seed-inventory` still 75).
    @Test(arguments: [["book", "nosuch", "u1"], ["submit", "nosuch", "u1"], ["pause", "nosuch"],
                      ["seed-inventory", "nosuch", "5"], ["confirm", "nosuch", "bk_0123456789abcdefghijkl"], ["cancel", "nosuch", "bk_0123456789abcdefghijkl"],
                      ["block", "user", "x", "--sale", "nosuch"], ["unblock", "user", "x", "--sale", "nosuch"],
                      ["submit", "nosuch", "--file", "-"]])
    func aMissingSaleBehindAWriteLockIsExit3(command: [String]) throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1"])
        let before = try box.dump()
        let holder = try Connection(path: box.database, busyTimeout: .seconds(0))
        try holder.execute("BEGIN IMMEDIATE")
        let result = try box.run(["--busy-timeout", "100ms"] + command)
        try holder.execute("ROLLBACK")
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr == "flashsale: no sale nosuch; 'flashsale sales' lists them\n")
        #expect(try box.dump() == before)
    }

    @Test func aMissingDirectoryIsCantOpen() throws {
        let box = try Sandbox()
        let path = box.directory.appendingPathComponent("no/such/x.db").path
        let result = try box.run(["--db", path, "init"], database: false)
        #expect(result.status == 73)
        #expect(result.stderr == "flashsale: cannot create the database \(path): No such file or directory\n")
    }

    @Test func aFileThatIsNotADatabaseIsCantOpenAndStaysAsItWas() throws {
        let box = try Sandbox()
        let junk = Data(repeating: 0x41, count: 8192)
        try junk.write(to: URL(fileURLWithPath: box.database))
        let result = try box.run(["create-sale", "s1", "--inventory", "1"])
        #expect(result.status == 73)
        #expect(result.stderr.filter { $0 == "\n" }.count == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: box.database)) == junk)
    }

    @Test(.enabled(if: !runningAsRoot || installed("setpriv") != nil, "as root, needs setpriv to run as nobody"))
    func aDatabaseTheUserMayNotWriteIsCantOpenAndUnchanged() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1"])
        let before = try box.dump()
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: box.database)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: box.directory.path)
        // Tests may run as root, whom permission bits do not stop: run flashsale as nobody.
        let asNobody = runningAsRoot ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : ""
        let result = try box.shell(asNobody + #""$FLASHSALE" --db "$DB" book s1 u1"#)
        #expect(result.status == 73)
        #expect(result.stderr.hasPrefix("flashsale: cannot use the database"))
        #expect(try box.dump() == before)
    }
}
