import FlashSaleStore
import Foundation
import Testing

let saleFields = ["id", "name", "state", "total", "available", "held", "booked", "cancelled", "expired", "overdue",
                  "queued", "hold_seconds", "per_user", "per_ip", "waitlist", "starts_at", "ends_at", "created_at"]
let bookingFields = ["id", "sale", "user", "status", "created_at", "expires_at", "confirmed_at", "cancelled_at",
                     "expired_at", "ip", "user_agent", "key"]

/// The keys of a JSON object in the order they were written.
func keyOrder(_ json: String) -> [String] {
    var keys: [String] = []
    var rest = Substring(json)
    while let range = rest.range(of: #""([a-z_]+)":"#, options: .regularExpression) {
        keys.append(String(rest[range].dropFirst().dropLast(2)))
        // Skip the value of this key, so nested objects do not add keys (none do here).
        rest = rest[range.upperBound...]
    }
    return keys
}

@Suite struct SaleCommandTests {
    @Test(arguments: commandLineStores)
    func createSalePrintsTheSaleWithItsDefaults(store: TestStore) throws {
        let box = try Sandbox(store)
        let result = try box.run(["create-sale", "s1", "--inventory", "1000", "--json"])
        #expect(result.status == 0)
        #expect(keyOrder(result.stdout) == saleFields)
        let sale = try result.json()
        #expect(sale["state"] as? String == "open")
        #expect(sale["total"] as? Int == 1000)
        #expect(sale["available"] as? Int == 1000)
        #expect(sale["hold_seconds"] as? Int == 300)
        #expect(sale["per_user"] as? Int == 1)
        #expect(sale["name"] as? String == "s1")
        #expect(sale["starts_at"] as? String == "2026-11-24T15:00:00.000Z")
        #expect(sale["ends_at"] is NSNull)
    }

    @Test(arguments: commandLineStores)
    func createSaleTakesEveryOption(store: TestStore) throws {
        let box = try Sandbox(store)
        let sale = try box.run(["create-sale", "s1", "--inventory", "5", "--name", "Spring drop", "--hold", "90s",
                                "--per-user", "2", "--starts", "+1h", "--ends", "2026-11-25T00:00:00+01:00", "--json"]).json()
        #expect(sale["name"] as? String == "Spring drop")
        #expect(sale["hold_seconds"] as? Int == 90)
        #expect(sale["per_user"] as? Int == 2)
        #expect(sale["state"] as? String == "scheduled")
        #expect(sale["starts_at"] as? String == "2026-11-24T16:00:00.000Z")
        #expect(sale["ends_at"] as? String == "2026-11-24T23:00:00.000Z")
    }

    @Test func createSaleRequiresInventory() throws {
        let box = try Sandbox()
        let result = try box.run(["create-sale", "s1"])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("flashsale: create-sale needs --inventory N: flashsale create-sale SALE --inventory N [--name TEXT]"))
        #expect(try box.run(["create-sale", "s0", "--inventory", "0"]).status == 0)
    }

    @Test(arguments: commandLineStores)
    func aSecondCreateSaleIsAConflict(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "1"])
        let result = try box.run(["--json", "create-sale", "s1", "--inventory", "1"])
        #expect(result.status == 4)
        let error = try #require(try result.json()["error"] as? [String: Any])
        #expect(error["code"] as? String == "conflict")
        #expect(error["message"] as? String == "sale s1 already exists")
        #expect(result.stderr.isEmpty)
    }

    @Test func statusPrintsAlignedFields() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "3"])
        let lines = try box.run(["status", "s1"]).stdout.split(separator: "\n")
        #expect(lines.map { $0.split(separator: " ").first.map(String.init) ?? "" } == saleFields)
        #expect(lines.contains("available     3"))
    }

    @Test(arguments: commandLineStores)
    func seedInventoryAddsOrSets(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "3"])
        #expect(try box.run(["seed-inventory", "s1", "2", "--json"]).json()["total"] as? Int == 5)
        #expect(try box.run(["seed-inventory", "s1", "1", "--set", "--json"]).json()["available"] as? Int == 1)
        try box.run(["book", "s1", "u1"])
        let refused = try box.run(["seed-inventory", "s1", "0", "--set"])
        #expect(refused.status == 4)
        #expect(refused.stderr.hasPrefix("flashsale: sale s1 has 1 item held or booked"))
    }

    @Test(arguments: commandLineStores)
    func pauseResumeCloseAndTheirExitCodes(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "3"])
        #expect(try box.run(["pause", "s1", "--json"]).json()["state"] as? String == "paused")
        #expect(try box.run(["pause", "s1"]).status == 0)
        #expect(try box.run(["book", "s1", "u1"]).status == 8)
        #expect(try box.run(["resume", "s1", "--json"]).json()["state"] as? String == "open")
        #expect(try box.run(["close", "s1", "--json"]).json()["state"] as? String == "closed")
        #expect(try box.run(["resume", "s1"]).status == 4)
        #expect(try box.run(["pause", "nope"]).status == 3)
    }

    @Test(arguments: commandLineStores)
    func salesListsEverySale(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "b", "--inventory", "1"])
        try box.run(["create-sale", "a", "--inventory", "2", "--name", "First"])
        let json = try box.run(["sales", "--json"]).jsonArray()
        #expect(json.map { $0["id"] as? String } == ["a", "b"])
        let text = try box.run(["sales"]).stdout
        #expect(text.hasPrefix("id  state  total  available  held  booked  overdue  queued  name\n"))
        #expect(text.contains("a   open   2      2          0     0       0        0       First\n"))
        let empty = try Sandbox()
        try empty.run(["init"])
        #expect(try empty.run(["sales", "--json"]).stdout == "[]\n")
    }

    @Test func initCreatesTheDatabaseOwnerOnly() throws {
        let box = try Sandbox()
        let result = try box.run(["init"])
        #expect(result.status == 0)
        #expect(result.stdout == "\(box.database): flashsale database ready\n")
        let mode = try FileManager.default.attributesOfItem(atPath: box.database)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try box.run(["init"]).status == 0)
    }

    /// Found by probing: a path whose directory is missing was told that create-sale would
    /// make it, and create-sale then failed ("No such file or directory").
    @Test func aDatabaseInADirectoryThatIsNotThereSaysSo() throws {
        let box = try Sandbox()
        let missing = box.directory.appendingPathComponent("nodir/x.db").path
        let result = try box.run(["--db", missing, "status", "s1"], database: false)
        #expect(result.status == 73)
        #expect(result.stderr == "flashsale: no flashsale database at \(missing); its directory does not exist: make it, and "
                + "then init or create-sale creates one\n")
    }

    /// A process's environment and working directory: main reads the variable itself.
    @Test func theDatabaseComesFromTheEnvironmentWithoutDb() throws {
        let box = try Sandbox()
        let other = box.directory.appendingPathComponent("env.db").path
        try box.spawn(["create-sale", "s1", "--inventory", "1"], database: false, environment: ["FLASHSALE_DB": other])
        #expect(FileManager.default.fileExists(atPath: other))
        // Else ./flashsale.db in the sandbox, which only init or create-sale creates.
        #expect(try box.spawn(["status", "s1"], database: false).stderr
                == "flashsale: no flashsale database at flashsale.db; init or create-sale creates one\n")
        #expect(try box.spawn(["init"], database: false).status == 0)
        #expect(FileManager.default.fileExists(atPath: box.directory.appendingPathComponent("flashsale.db").path))
        // An empty FLASHSALE_DB means unset; an empty --db is a mistake.
        #expect(try box.spawn(["sales"], database: false, environment: ["FLASHSALE_DB": ""]).status == 0)
        #expect(try box.spawn(["--db", "", "sales"], database: false).status == 2)
    }
}

@Suite struct BookingCommandTests {
    @Test(arguments: commandLineStores)
    func bookPrintsTheBookingIDAlone(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "2"])
        let result = try box.run(["book", "s1", "alice", "--ip", "2001:db8::1", "--user-agent", "curl/8.0"])
        #expect(result.status == 0)
        #expect(result.line.range(of: "^bk_[A-Za-z0-9_-]{22}$", options: .regularExpression) != nil)
        #expect(result.stderr.isEmpty)
        let booking = try box.run(["booking", "s1", result.line, "--json"])
        #expect(keyOrder(booking.stdout) == bookingFields)
        let fields = try booking.json()
        #expect(fields["ip"] as? String == "2001:db8::1")
        #expect(fields["user_agent"] as? String == "curl/8.0")
        #expect(fields["expires_at"] as? String == "2026-11-24T15:05:00.000Z")
    }

    @Test(arguments: commandLineStores)
    func bookJSONIsTheBookingObject(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "2"])
        let result = try box.run(["book", "s1", "alice", "--key", "k1", "--json"])
        #expect(keyOrder(result.stdout) == bookingFields)
        #expect(try result.json()["key"] as? String == "k1")
        #expect(try result.json()["status"] as? String == "held")
    }

    @Test(arguments: commandLineStores)
    func declinesExitWithTheirCodesAndOneLine(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "1"])
        try box.run(["book", "s1", "alice"])
        let limit = try box.run(["book", "s1", "alice"])
        #expect(limit.status == 7)
        #expect(limit.stdout.isEmpty)
        #expect(limit.stderr == "flashsale: the user already has 1 active booking in sale s1, the limit\n")
        let soldOut = try box.run(["book", "s1", "bob", "--json"])
        #expect(soldOut.status == 6)
        #expect(try soldOut.json()["error"] as? [String: String] == ["code": "sold_out", "message": "sale s1 is sold out"])
        #expect(try box.run(["book", "nope", "bob"]).status == 3)
        let noUser = try box.run(["book", "s1"])
        #expect(noUser.status == 2)
        // The usage that needs it, not the merged one that calls USER optional (a new user's walk-through).
        #expect(noUser.stderr == "flashsale: book needs USER: flashsale book SALE USER [--ip IP] [--user-agent UA] [--key KEY]\n")
    }

    @Test(arguments: commandLineStores)
    func theSameKeyReturnsTheSameBookingID(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let first = try box.run(["book", "s1", "alice", "--key", "req-1"]).line
        let again = try box.run(["book", "s1", "alice", "--key", "req-1"])
        #expect(again.status == 0)
        #expect(again.line == first)
        #expect(try box.run(["book", "s1", "bob", "--key", "req-1"]).status == 4)
        #expect(try box.run(["status", "s1", "--json"]).json()["held"] as? Int == 1)
    }

    @Test(arguments: commandLineStores)
    func confirmThenConfirmAgain(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "2"])
        let id = try box.run(["book", "s1", "alice"]).line
        let confirmed = try box.run(["confirm", "s1", id, "--user", "alice"], now: "2026-11-24T15:04:59.999Z")
        #expect(confirmed.status == 0)
        #expect(confirmed.stdout == "\(id) booked\n")
        let again = try box.run(["confirm", "s1", id, "--json"])
        #expect(again.status == 0)
        #expect(try again.json()["confirmed_at"] as? String == "2026-11-24T15:04:59.999Z")
    }

    /// Refused, and the hold written as expired (see ExpiryInstantTests): even the clock
    /// of its booking, T0, then finds it expired.
    @Test(arguments: commandLineStores)
    func confirmAtExpiryExitsFiveAndExpiresTheHold(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "2"])
        let id = try box.run(["book", "s1", "alice"]).line
        let late = try box.run(["confirm", "s1", id], now: "2026-11-24T15:05:00Z")
        #expect(late.status == 5)
        #expect(late.stderr == "flashsale: booking \(id) expired at 2026-11-24T15:05:00.000Z; book again\n")
        #expect(try box.run(["booking", "s1", id, "--json"]).json()["status"] as? String == "expired")
    }

    @Test(arguments: commandLineStores)
    func confirmOfAnotherUsersBookingIsNotFound(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "2"])
        let id = try box.run(["book", "s1", "alice"]).line
        #expect(try box.run(["confirm", "s1", id, "--user", "mallory"]).status == 3)
        #expect(try box.run(["cancel", "s1", id, "--user", "mallory"]).status == 3)
        #expect(try box.run(["confirm", "s1", "bk_AAAAAAAAAAAAAAAAAAAAAA"]).status == 3)
    }

    /// An empty `--user` (a script's variable that came out empty) is refused, where taken
    /// for absent it confirmed or cancelled anyone's booking and listed everyone's (found
    /// by probing).
    @Test(arguments: commandLineStores)
    func anEmptyUserIsRefusedRatherThanAllowingAnyUser(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "2"])
        let id = try box.run(["book", "s1", "alice"]).line
        for arguments in [["confirm", "s1", id], ["cancel", "s1", id, "--force"], ["bookings", "s1"]] {
            let refused = try box.run(arguments + ["--user", ""])
            #expect(refused.status == 2, "\(arguments)")
            #expect(refused.stderr == "flashsale: --user must not be empty: leave it out to allow any user\n", "\(arguments)")
        }
        #expect(try box.run(["booking", "s1", id, "--json"]).json()["status"] as? String == "held")
    }

    @Test(arguments: commandLineStores)
    func cancelHeldBookedAndForce(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "2"])
        let held = try box.run(["book", "s1", "alice"]).line
        #expect(try box.run(["cancel", "s1", held]).stdout == "\(held) cancelled\n")
        #expect(try box.run(["cancel", "s1", held]).status == 0)
        let booked = try box.run(["book", "s1", "bob"]).line
        try box.run(["confirm", "s1", booked])
        let refused = try box.run(["cancel", "s1", booked])
        #expect(refused.status == 4)
        #expect(refused.stderr.contains("--force"))
        #expect(try box.run(["cancel", "s1", booked, "--force", "--json"]).json()["status"] as? String == "cancelled")
        let sale = try box.run(["status", "s1", "--json"]).json()
        #expect(sale["available"] as? Int == 2)
        #expect(sale["cancelled"] as? Int == 2)
    }

    @Test(arguments: commandLineStores)
    func cancelOfAnOverdueHoldExitsZeroAsExpired(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "2"])
        let id = try box.run(["book", "s1", "alice"]).line
        let result = try box.run(["cancel", "s1", id], now: "2026-11-24T15:06:00Z")
        #expect(result.status == 0)
        #expect(result.stdout == "\(id) expired\n")
    }

    @Test(arguments: commandLineStores)
    func bookingsListsAndFilters(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let a = try box.run(["book", "s1", "alice"]).line
        let b = try box.run(["book", "s1", "bob"]).line
        try box.run(["confirm", "s1", a])
        #expect(try box.run(["bookings", "s1", "--json"]).jsonArray().map { $0["id"] as? String } == [a, b])
        #expect(try box.run(["bookings", "s1", "--status", "booked", "--json"]).jsonArray().map { $0["id"] as? String } == [a])
        #expect(try box.run(["bookings", "s1", "--user", "bob", "--json"]).jsonArray().map { $0["id"] as? String } == [b])
        let later = try box.run(["bookings", "s1", "--status", "expired", "--json"], now: "2026-11-24T15:10:00Z").jsonArray()
        #expect(later.map { $0["id"] as? String } == [b])
        let text = try box.run(["bookings", "s1"]).stdout.split(separator: "\n")
        #expect(text.first == "id                         user   status  created_at                expires_at")
        #expect(text.count == 3)
        #expect(try box.run(["bookings", "s1", "--status", "bogus"]).status == 2)
    }

    /// Past a page (`BookingPages.size`), the table goes on under its one header, each page
    /// aligned on its own, and the JSON array is one array; nothing is left out or repeated.
    @Test(arguments: commandLineStores)
    func aLongListIsPrintedAPageAtATime(store: TestStore) throws {
        let box = try Sandbox(store)
        let count = 10_000 + 3
        try box.run(["create-sale", "s1", "--inventory", "\(count)"])
        // Names of two lengths, the longer on the last page only: its columns are its own.
        let users = (0..<count).map { $0 < 10_000 ? "u\($0)" : "a-much-longer-user-\($0)" }
        let stream = try box.run(["book", "s1", "--stream"], input: users.map { "{\"user\":\"\($0)\"}" }.joined(separator: "\n") + "\n")
        #expect(stream.status == 0)
        let json = try box.run(["bookings", "s1", "--json"]).jsonArray()
        #expect(json.map { $0["user"] as? String } == users)
        let lines = try box.run(["bookings", "s1"]).stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == count + 2 && lines.last == "")
        #expect(lines.filter { $0.hasPrefix("id ") }.count == 1)
        #expect(lines.dropFirst().dropLast().map { $0.split(separator: " ")[1] } == users.map { Substring($0) })
        func statusColumn(_ line: Substring) -> Int { line.distance(from: line.startIndex, to: line.firstRange(of: " held")!.upperBound) }
        #expect(statusColumn(lines[1]) == statusColumn(lines[10_000]))
        #expect(statusColumn(lines[1]) < statusColumn(lines[10_001]))
    }

    @Test(arguments: commandLineStores)
    func aClockSteppedBackCannotExtendAHold(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try box.run(["book", "s1", "alice"], now: "2026-11-24T15:10:00Z")
        let late = try box.run(["book", "s1", "bob", "--json"], now: "2026-11-24T15:01:00Z").json()
        #expect(late["created_at"] as? String == "2026-11-24T15:10:00.000Z")
        #expect(late["expires_at"] as? String == "2026-11-24T15:15:00.000Z")
        let carol = try box.run(["book", "s1", "carol"]).line  // held 15:10 to 15:15
        try box.run(["book", "s1", "dave"], now: "2026-11-24T15:20:00Z")
        // A clock stepped back to 15:14 still decides at 15:20: carol's hold has expired.
        #expect(try box.run(["confirm", "s1", carol], now: "2026-11-24T15:14:00Z").status == 5)
    }

    @Test(arguments: commandLineStores)
    func statusCountsOverdueHoldsUntilSwept(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try box.run(["book", "s1", "alice"])
        try box.run(["book", "s1", "bob"], now: "2026-11-24T15:02:00Z")
        let status = try box.run(["status", "s1", "--json"], now: "2026-11-24T15:05:00Z").json()
        #expect(status["held"] as? Int == 2)
        #expect(status["overdue"] as? Int == 1)
    }
}

/// `--json` and `-q` as the parse reads them, not as a glance at the words guesses.
@Suite struct OutputModeTests {
    /// Found by probing: a `--` given as an option's value was read as the end of the
    /// options, so a `--json` after it was ignored (a script passing `--key "$key"`).
    @Test func aDoubleDashThatIsAValueDoesNotEndTheOptions() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let booked = try box.run(["book", "s1", "u1", "--key", "--", "--json"])
        #expect(try booked.json()["key"] as? String == "--", "\(booked.stdout)")
        let listed = try box.run(["bookings", "s1", "--user", "--", "--json"])
        #expect(listed.stdout.hasPrefix("["), "\(listed.stdout)")
        #expect(try box.run(["book", "s1", "u2", "--key", "--", "-q"]).stdout.isEmpty)
        let refused = try box.run(["book", "nosuch", "u1", "--key", "--", "--json"])
        #expect(refused.status == 3)
        #expect(try (refused.json()["error"] as? [String: Any])?["code"] as? String == "not_found")
    }
}

@Suite struct SweepAndVerifyCommandTests {
    /// Found by probing: a file too damaged for verify's recount to read was refused as
    /// "not a usable flashsale database" (73, as a mistyped path), where finding damage is
    /// what verify is for: 10, naming SQLite's findings, whole or for one sale.
    @Test func verifyNamesDamageItCannotReadPast() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "100000"])
        let lines = (0..<6000).map { "{\"user\":\"u\($0)\"}" }.joined(separator: "\n")
        #expect(try box.run(["book", "s1", "--stream", "-q"], input: lines).status == 0)
        // A leaf of the booking table, which the recount of any sale reads (a page chosen
        // by position may belong to an index `verify s1` never reads). The last connection
        // closed, so the file holds every page (no -wal).
        let page = try box.count(
            "SELECT pageno FROM dbstat WHERE name = 'booking' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 5")
        try #require(page > 0)
        let file = try #require(FileHandle(forUpdatingAtPath: box.database))
        try file.seek(toOffset: UInt64(page - 1) * 4096 + 100)
        try file.write(contentsOf: Data(repeating: 0, count: 3000))
        try file.close()
        for arguments in [["verify"], ["verify", "s1"]] {
            let result = try box.run(arguments)
            #expect(result.status == 10, "\(arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("flashsale: verify found 1 violation: database structure: On tree page "))
            #expect(!result.stderr.dropLast().contains("\n"))
        }
    }

    /// Found by probing: with the root page of a table damaged (the sales', or one only the
    /// whole file's check reads), quick_check itself fails, and verify exited 73, "not a
    /// usable flashsale database; use another database", on the file it was run to examine.
    @Test(arguments: ["sale", "attempt_counter", "hold_second"])
    func verifyNamesADamagedRootPageThatQuickCheckCannotRead(table: String) throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "100"])
        try box.run(["book", "s1", "alice"])
        let page = try box.count("SELECT rootpage FROM sqlite_schema WHERE name = '\(table)'")
        try #require(page > 1)
        let file = try #require(FileHandle(forUpdatingAtPath: box.database))
        try file.seek(toOffset: UInt64(page - 1) * 4096)
        try file.write(contentsOf: Data(repeating: 0xA5, count: 200))
        try file.close()
        let result = try box.run(["verify"])
        #expect(result.status == 10, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("flashsale: verify found 1 violation: database structure: "), "\(result.stderr)")
    }

    /// Found by probing: with a table dropped by hand, verify's recount read the rest whole
    /// and said ok, and so of a backup of it, and init called the database ready, while
    /// `book` and `block` exited 73 on it.
    @Test func verifyAndInitNameATableOrIndexTheFileLacks() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try box.run(["book", "s1", "alice"])
        try FlashSaleStoreBackdoor.execute(box.database, "DROP TABLE block")
        try FlashSaleStoreBackdoor.execute(box.database, "DROP INDEX booking_by_key")
        for arguments in [["verify"], ["verify", "s1"]] {
            let result = try box.run(arguments)
            #expect(result.status == 10)
            #expect(result.stderr == "flashsale: verify found 1 violation: database structure: missing index block_unique, "
                    + "index booking_by_key, table block\n")
        }
        let initialized = try box.run(["init"])
        #expect(initialized.status == 73)
        #expect(initialized.stderr == "flashsale: not a usable flashsale database: missing index block_unique, index booking_by_key, "
                + "table block, which init does not make again; use another database\n")
    }

    /// Found by probing: with a column dropped by hand, verify said ok of a database whose
    /// next `book` exited 73 ("no column named users"). A dropped table's columns are not
    /// listed again.
    @Test func verifyAndInitNameAColumnTheFileLacks() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try FlashSaleStoreBackdoor.execute(box.database, "ALTER TABLE attempt_counter DROP COLUMN users")
        try FlashSaleStoreBackdoor.execute(box.database, "DROP TABLE block")
        let verified = try box.run(["verify"])
        #expect(verified.status == 10)
        #expect(verified.stderr == "flashsale: verify found 1 violation: database structure: missing column attempt_counter.users, "
                + "index block_unique, table block\n")
        let initialized = try box.run(["init"])
        #expect(initialized.status == 73)
        #expect(initialized.stderr.hasPrefix("flashsale: not a usable flashsale database: missing column attempt_counter.users, "))
    }

    @Test(arguments: commandLineStores)
    func sweepPrintsTheCountAlone(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try box.run(["book", "s1", "alice"])
        try box.run(["book", "s1", "bob"])
        #expect(try box.run(["sweep"], now: "2026-11-24T15:04:00Z").stdout == "0\n")
        let dry = try box.run(["sweep", "s1", "--dry-run", "--json"], now: "2026-11-24T15:05:00Z")
        #expect(dry.stdout == #"{"expired":2,"dry_run":true,"sales":{"s1":2}}"# + "\n")
        #expect(try box.run(["sweep", "--limit", "1"], now: "2026-11-24T15:05:00Z").stdout == "1\n")
        let json = try box.run(["sweep", "--json"], now: "2026-11-24T15:05:00Z")
        #expect(json.stdout == #"{"expired":1,"dry_run":false,"sales":{"s1":1}}"# + "\n")
        #expect(try box.run(["status", "s1", "--json"]).json()["available"] as? Int == 5)
        #expect(try box.run(["sweep", "nope"]).status == 3)
        #expect(try box.run(["sweep", "-q"]).stdout.isEmpty)
    }

    @Test func verifyPrintsOkOrNamesTheViolation() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try box.run(["book", "s1", "alice"])
        #expect(try box.run(["verify"]).stdout == "ok\n")
        #expect(try box.run(["verify", "s1", "--json"]).stdout == #"{"ok":true,"sale":"s1"}"# + "\n")
        try FlashSaleStoreBackdoor.execute(box.database, "UPDATE sale SET held = 0, available = available + 1")
        let broken = try box.run(["verify"])
        #expect(broken.status == 10)
        #expect(broken.stderr == "flashsale: verify found 1 violation: sale s1: counter held is 0 but 1 booking is held\n")
        #expect(try box.run(["verify", "--json"]).json()["error"] != nil)
    }
}

@Suite struct HelpAndVersionTests {
    @Test func helpAndVersionPrintToStdoutAndExitZero() throws {
        let box = try Sandbox()
        for words in [["help"], ["--help"], ["-h"], ["help", "book"], ["book", "--help"], ["--version"]] {
            let result = try box.run(words, database: false)
            #expect(result.status == 0)
            #expect(!result.stdout.isEmpty)
            #expect(result.stderr.isEmpty)
        }
        #expect(try box.run(["--version"]).stdout.range(of: #"^flashsale \d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil)
        #expect(try box.run(["help", "book"]).stdout.hasPrefix("""
            Usage: flashsale book SALE USER [--ip IP] [--user-agent UA] [--key KEY]
                   flashsale book SALE --stream [--format FORMAT]
            """))
        #expect(!FileManager.default.fileExists(atPath: box.database))
    }

    /// Found by probing: `help rehearse` said --db defaults to ./flashsale.db, where
    /// rehearse makes a scratch database, and `help copy-to` that --db may be a URL and
    /// --pg-schema goes with it, where copy-to reads a file and writes the schema.
    @Test func aCommandsHelpSaysHowItReadsTheGlobalOptions() throws {
        let box = try Sandbox()
        let rehearse = try box.run(["help", "rehearse"], database: false).stdout
        #expect(rehearse.contains("  --db PATH|URL            rehearse in this database (made if missing), not a scratch one"), "\(rehearse)")
        let copy = try box.run(["help", "copy-to"], database: false).stdout
        #expect(copy.contains("  --db PATH|URL            the SQLite database to copy"), "\(copy)")
        #expect(copy.contains("  --pg-schema NAME         the schema to copy into, over the URL's ?schema="), "\(copy)")
        let book = try box.run(["help", "book"], database: false).stdout
        #expect(book.contains("  --db PATH|URL            the database file, or a postgresql:// URL"), "\(book)")
    }

    @Test func helpOfAnUnknownCommandIsAUsageError() throws {
        #expect(try Sandbox().run(["help", "bogus"]).status == 2)
    }

    @Test func usageErrorsPrintJSONWhenAskedTo() throws {
        let result = try Sandbox().run(["--json", "bogus"])
        #expect(result.status == 2)
        #expect(try (result.json()["error"] as? [String: Any])?["code"] as? String == "usage")
    }

    @Test func quietPrintsNothingOnSuccessButStillReportsErrors() throws {
        let box = try Sandbox()
        let created = try box.run(["-q", "create-sale", "s1", "--inventory", "1"])
        #expect(created.status == 0)
        #expect(created.stdout.isEmpty)
        #expect(try box.run(["book", "s1", "a", "--quiet"]).stdout.isEmpty)
        let declined = try box.run(["book", "s1", "b", "-q"])
        #expect(declined.status == 6)
        #expect(!declined.stderr.isEmpty)
    }

    /// Found by probing: with -q, a submit that skipped bad lines named them on stderr, and
    /// a stream that waited out another process's lock said so and said when it went on,
    /// each exiting 0. What a command says as it goes is not an error: -q silences it.
    @Test func quietSilencesWhatACommandSaysAsItGoes() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let file = box.directory.appendingPathComponent("bad.csv").path
        try "user\n,\nok1\n".write(toFile: file, atomically: true, encoding: .utf8)
        let submitted = try box.run(["-q", "submit", "s1", "--file", file, "--skip-invalid"])
        #expect(submitted.status == 0)
        #expect(submitted.stdout.isEmpty && submitted.stderr.isEmpty, "\(submitted.stderr)")

        let holder = try Connection(path: box.database, busyTimeout: .seconds(0))
        try holder.execute("BEGIN IMMEDIATE")
        let stream = try box.start(["-q", "--busy-timeout", "100ms", "book", "s1", "--stream"], input: "{\"user\":\"q\"}\n")
        // Held for five busy timeouts once the stream has the database open: it has met
        // the lock and waits it out, which it would say on stderr without -q (FollowTests).
        #expect(stream.waitUntil { stream.hasOpen(box.database) })
        usleep(500_000)
        try holder.execute("ROLLBACK")
        #expect(stream.result().termination == .exit(0))
        #expect(stream.stdout.isEmpty && stream.stderr.isEmpty, "\(stream.stderr)")
        #expect(try box.run(["status", "s1", "--json"]).json()["held"] as? Int == 1)
    }
}
