import Foundation
import Glibc
import Testing
@testable import FlashSaleCLI
import FlashSaleCore
@testable import FlashSaleStore
import FlashSaleTestSupport

/// `rehearse`: a small crowd through every path, its report held to the database it leaves.
@Suite struct RehearseTests {
    static let small = ["rehearse", "--buyers", "200", "--inventory", "20", "--seed", "7", "--duration", "10s", "--json"]

    /// `flashsale-serve`, which `rehearse --via http` execs, beside the flashsale under test.
    static let serverBuilt = FileManager.default.isExecutableFile(
        atPath: URL(fileURLWithPath: flashsaleBinary).deletingLastPathComponent().appendingPathComponent("flashsale-serve").path)

    /// The rehearsal run as a process into `box`'s database (kept there, as --db keeps it).
    private func rehearse(_ box: Sandbox, via: String) throws -> [String: Any] {
        let result = try box.spawn(Self.small + ["--via", via])
        #expect(result.status == 0, "\(via): \(result.stderr)")
        return try result.json()
    }

    private func stockOutcome(_ report: [String: Any]) -> [String: Int] {
        var outcome: [String: Int] = [:]
        for name in ["holds", "confirmed", "cancelled", "expired", "returning", "resold", "sold", "left", "turned_away", "requests"] {
            outcome[name] = report[name] as? Int ?? -1
        }
        return outcome
    }

    @Test func everyPathEndsWithTheSameStockForOneSeed() throws {
        var outcomes: [String: [String: Int]] = [:]
        for via in ["stream", "queue"] + (Self.serverBuilt ? ["http"] : []) {
            let box = try Sandbox()
            let report = try rehearse(box, via: via)
            outcomes[via] = stockOutcome(report)
            // verify's verdict, and the database's own, agree with the report.
            #expect((report["verify"] as? [String: Any])?["ok"] as? Bool == true)
            #expect(try box.spawn(["verify", "rehearsal"]).status == 0)
        }
        let stream = try #require(outcomes["stream"])
        #expect(stream["holds"] == 20 && stream["sold"] == 20 && stream["resold"]! > 0, "\(stream)")
        for (via, outcome) in outcomes {
            #expect(outcome == stream, "\(via) differs from stream")
        }
        #expect(Self.serverBuilt, "flashsale-serve is not built beside flashsale: the http path went untested")
    }

    @Test(arguments: ["stream", "queue"])
    func theReportIsWhatTheDatabaseHolds(via: String) throws {
        let box = try Sandbox()
        let report = try rehearse(box, via: via)
        let bookings = try box.spawn(["export", "rehearsal", "--format", "ndjson"]).stdout
            .split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let count = { (status: String) in bookings.count { $0["status"] as? String == status } }
        #expect(count("booked") == report["sold"] as? Int)
        #expect(count("cancelled") == report["cancelled"] as? Int)
        #expect(count("expired") == report["expired"] as? Int)
        #expect(count("held") == 0)
        #expect(bookings.count == (report["holds"] as? Int ?? 0) + (report["resold"] as? Int ?? 0))
        #expect(bookings.count { ($0["user"] as? String)?.hasPrefix("bot-") == true && $0["status"] as? String == "booked" }
                == report["bot_items"] as? Int)
        let users = Set(bookings.compactMap { $0["user"] as? String })
        #expect(report["turned_away"] as? Int == 200 - users.count)

        let metrics = try box.spawn(["metrics", "--sale", "rehearsal", "--json"]).json()
        let sale = try #require((metrics["sales"] as? [[String: Any]])?.first)
        #expect(sale["available"] as? Int == report["left"] as? Int)
        #expect(sale["booked"] as? Int == report["sold"] as? Int)
        #expect(sale["declined_attempts"] as? [String: Int] == (report["declined"] as? [String: Int]).map { declined in
            ["sold_out": 0, "user_limit": 0, "not_open": 0, "blocked": 0, "conflict": 0].merging(declined) { $1 }
        })
        let suspects = try box.spawn(["suspects", "rehearsal", "--json", "--limit", "3"]).jsonArray()
        #expect(suspects.map { $0["value"] as? String } == (report["suspects"] as? [[String: Any]])?.map { $0["value"] as? String })
    }

    /// A day longer than the holds: each slice decided at its own instant, its holds due five
    /// minutes after it, what the first cancels and sweeps return taken again by later
    /// slices, and the stock ending the same on both command-line paths.
    @Test func aLongDayDecidesEachSliceAtItsOwnInstant() throws {
        var outcomes: [[String: Int]] = []
        for via in ["stream", "queue"] {
            let box = try Sandbox()
            let result = try box.spawn(["rehearse", "--buyers", "300", "--inventory", "20", "--seed", "7", "--duration", "10m",
                                        "--json", "--via", via], environment: ["FLASHSALE_NOW": "2026-06-01T10:00:00Z"])
            #expect(result.status == 0, "\(via): \(result.stderr)")
            let report = try result.json()
            outcomes.append(stockOutcome(report))
            let bookings = try box.spawn(["export", "rehearsal", "--format", "ndjson"]).stdout
                .split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
            let made = Set(bookings.compactMap { $0["created_at"] as? String })
            // The opening, and slices of 67 s (599 s in nine whole-second parts) from +1 s.
            let instants = Set(([0] + (0..<9).map { 1 + 67 * $0 }).map { "2026-06-01T10:\(String(format: "%02d:%02d", $0 / 60, $0 % 60)).000Z" })
            #expect(made.intersection(instants).count > 1, "\(made.sorted())")
            // Besides the slices', one instant: the returning buyers', at the last sweep.
            #expect(made.subtracting(instants).count == 1, "\(made.sorted())")
            #expect((report["holds"] as? Int ?? 0) > 20, "nothing returned was taken again: \(report)")
            #expect((report["verify"] as? [String: Any])?["ok"] as? Bool == true)
        }
        #expect(outcomes.count == 2 && outcomes[0] == outcomes[1], "\(outcomes)")
    }

    @Test func theCrowdIsCutIntoTheOpeningSecondAndAtMostNineParts() {
        for duration in [Span.seconds(1), .seconds(10), .seconds(60), .seconds(3_600)] {
            let crowd = Crowd(buyers: 2_000, botShare: 0.05, duration: duration, seed: 5)
            let slices = crowd.slices(duration: duration)
            #expect(slices.count <= 10 && slices.first?.offset == Span(milliseconds: 0), "\(duration)")
            #expect(slices.flatMap(\.requests).map(\.user) == crowd.requests.map(\.user))
            for (slice, next) in zip(slices, slices.dropFirst().map(\.offset) + [duration]) {
                #expect(slice.offset.milliseconds % 1000 == 0)
                #expect(slice.requests.allSatisfy { $0.arrival >= slice.offset.milliseconds && $0.arrival < next.milliseconds })
            }
        }
    }

    @Test func theSameSeedMakesTheSameCrowdAndAnotherSeedAnother() {
        let one = Crowd(buyers: 500, botShare: 0.1, duration: .seconds(30), seed: 3)
        let again = Crowd(buyers: 500, botShare: 0.1, duration: .seconds(30), seed: 3)
        let other = Crowd(buyers: 500, botShare: 0.1, duration: .seconds(30), seed: 4)
        #expect(one.requests.map(\.user) == again.requests.map(\.user))
        #expect(one.requests.map(\.arrival) == again.requests.map(\.arrival))
        #expect(one.requests.map(\.user) != other.requests.map(\.user))
        #expect(one.bots == 50 && one.requests.filter(\.isBot).count == 150)
        #expect(one.requests.map(\.arrival) == one.requests.map(\.arrival).sorted())
        // The opening second's burst: half the humans, give or take.
        #expect(one.requests.count { !$0.isBot && $0.arrival < 1000 } > 180)
    }

    /// A seed names a crowd from version to version: a rehearsal's figures can be compared
    /// with last month's. The checksum is of every request, in order, as the paths send it.
    @Test func aSeedMakesTheCrowdItMadeBefore() {
        let crowd = Crowd(buyers: 3_000, botShare: 0.2, duration: .seconds(90), seed: 11)
        var checksum: UInt64 = 0xcbf2_9ce4_8422_2325
        for request in crowd.requests {
            for byte in "\(request.user) \(request.ip) \(request.userAgent) \(request.arrival) \(request.isBot)\n".utf8 {
                checksum = (checksum ^ UInt64(byte)) &* 0x100_0000_01b3
            }
        }
        #expect(crowd.requests.count == 4_688)
        #expect(String(checksum, radix: 16) == "f7fa16308f94b4b2")
    }

    @Test func theBotsAgentsAreScriptsAndTheBuyersAreNot() {
        for agent in Crowd.scripts { #expect(ScriptAgent.name(in: agent) != nil, "\(agent)") }
        for agent in Crowd.browsers { #expect(ScriptAgent.name(in: agent) == nil, "\(agent)") }
    }

    @Test(arguments: [
        (["--buyers", "0"], "--buyers"), (["--bots", "1.5"], "--bots"), (["--bots", "-0.1"], "-0.1"),
        (["--bots", "1e-2"], "--bots"), (["--via", "carrier-pigeon"], "--via"), (["--inventory", "0"], "--inventory"),
        (["--duration", "0s"], "--duration"), (["--seed", "x"], "--seed"),
    ])
    func badOptionsAreUsageErrorsThatChangeNothing(options: [String], named: String) throws {
        let box = try Sandbox()
        let result = try box.spawn(["rehearse"] + options)
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("flashsale: ") && result.stderr.contains(named), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: box.database))
    }

    /// The advice names what gave the database: "leave --db out" could not help one that
    /// $FLASHSALE_DB named (found by a walk-through of the README).
    @Test(arguments: [false, true])
    func aDatabaseThatHoldsTheSaleIsRefusedAndUnchanged(namedByEnvironment: Bool) throws {
        let box = try Sandbox()
        try box.run(["create-sale", "rehearsal", "--inventory", "3"])
        let before = try box.dump()
        let result = try box.spawn(["rehearse", "--buyers", "10", "--inventory", "2"], database: !namedByEnvironment,
                                   environment: namedByEnvironment ? ["FLASHSALE_DB": box.database] : [:])
        #expect(result.status == 4)
        #expect(result.stderr.contains("already exists"), "\(result.stderr)")
        #expect(result.stderr.hasSuffix(namedByEnvironment ? "; set FLASHSALE_DB to another database, or unset it for a scratch database\n"
                                                           : "; give another --db, or leave --db out for a scratch database\n"),
                "\(result.stderr)")
        #expect(try box.dump() == before)
    }

    /// Found by probing: of two rehearsals started at once on one --db, the one that lost
    /// the race to make the sale was told only "sale rehearsal already exists"; on
    /// PostgreSQL (found by review), it was exit 1 with the server's duplicate key error.
    /// A race: the loser met it about half the time.
    @Test(arguments: commandLineStores)
    func ofTwoRehearsalsAtOnceOnOneDatabaseTheSecondIsToldWhatToDo(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["init"])
        let both = try (0..<2).map { _ in try box.start(["rehearse", "--buyers", "20", "--inventory", "2"]) }.map { $0.result() }
        #expect(both.map(\.status).sorted() == [0, 4], "\(both.map(\.stderr))")
        let refused = try #require(both.first { $0.status == 4 })
        #expect(refused.stderr.hasPrefix("flashsale: sale rehearsal already exists in '"), "\(refused.stderr)")
        #expect(refused.stderr.hasSuffix("': rehearse makes its own; give another --db, or leave --db out for a scratch database\n"),
                "\(refused.stderr)")
    }

    /// On PostgreSQL the day ends as on a file, and neither the report nor a refusal shows
    /// the URL's password (the children rehearse is made of get the URL as given).
    @Test(.enabled(if: commandLineStores.contains(.postgres), "needs a PostgreSQL server: FLASHSALE_TEST_PG"))
    func onPostgreSQLTheDayEndsAsOnAFileAndThePasswordNeverShows() throws {
        let onFile = stockOutcome(try rehearse(try Sandbox(), via: "stream"))
        let box = try Sandbox(.postgres)
        let report = try rehearse(box, via: "stream")
        #expect(stockOutcome(report) == onFile)
        #expect(try box.spawn(["verify", "rehearsal"]).status == 0, "the rehearsal is not in the PostgreSQL database")
        let password = try #require(TestPostgres.server?.password)
        #expect(!(report["database"] as? String ?? "").contains(password), "\(report)")
        let again = try box.spawn(Self.small)
        #expect(again.status == 4)
        let refusal = again.stdout + again.stderr
        #expect(refusal.contains("already exists") && !refusal.contains(password), "\(refusal)")
    }

    /// The schema named by --pg-schema, not by the URL, reaches every child: each of them
    /// opened schema `flashsale` instead (exit 73, no database there).
    @Test(.enabled(if: commandLineStores.contains(.postgres), "needs a PostgreSQL server: FLASHSALE_TEST_PG"),
          arguments: ["stream", "queue"])
    func theChildrenWorkInTheSchemaPgSchemaNames(via: String) throws {
        let schema = TestPostgres.newSchema()
        defer { TestPostgres.dropSchema(schema) }
        let url: String = try #require(ProcessInfo.processInfo.environment["FLASHSALE_TEST_PG"])
        let box = try Sandbox(.postgres, url: url)
        let result = try box.spawn(["--pg-schema", schema] + Self.small + ["--via", via])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try box.spawn(["--pg-schema", schema, "verify", "rehearsal"]).status == 0)
    }

    @Test func keepKeepsTheScratchDatabaseAndOtherwiseNothingStays() throws {
        let box = try Sandbox()
        let scratch = box.directory.appendingPathComponent("tmp").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let kept = try box.spawn(["rehearse", "--buyers", "50", "--inventory", "5", "--keep", "--json"], database: false,
                                 environment: ["TMPDIR": scratch])
        #expect(kept.status == 0, "\(kept.stderr)")
        let path = try #require(try kept.json()["database"] as? String)
        #expect(path.hasPrefix(scratch) && FileManager.default.fileExists(atPath: path))
        let reread = try box.spawn(["--db", path, "verify", "rehearsal"], database: false)
        #expect(reread.status == 0)
        try FileManager.default.removeItem(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path)

        let gone = try box.spawn(["rehearse", "--buyers", "50", "--inventory", "5", "--json"], database: false,
                                 environment: ["TMPDIR": scratch])
        #expect(gone.status == 0, "\(gone.stderr)")
        #expect(try gone.json()["database"] is NSNull)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch).isEmpty)

        // Found by probing: with -q the scratch database was kept, and where was never said.
        for json in [[], ["--json"]] {
            let quiet = try box.spawn(["-q"] + json + ["rehearse", "--buyers", "50", "--keep"], database: false,
                                      environment: ["TMPDIR": scratch])
            #expect(quiet.status == 2)
            // With --json, the error object on stdout.
            #expect((quiet.stderr + quiet.stdout).contains("--keep prints where the scratch database stays, which -q would not"),
                    "\(quiet.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: scratch).isEmpty)
        }
    }

    /// A day is many commands, each committed, and no command removes a sale: a rehearsal
    /// that fails after making its sale says where the sale stays (the database given, or
    /// the scratch one kept), where "cannot write the output" alone left it to be found.
    @Test(.enabled(if: FileManager.default.isWritableFile(atPath: "/dev/full"), "needs /dev/full"))
    func aRehearsalThatFailsSaysWhereItsSaleStays() throws {
        let full = open("/dev/full", O_WRONLY | O_CLOEXEC)
        try #require(full >= 0)
        defer { close(full) }
        let box = try Sandbox()
        let given = try box.spawn(["rehearse", "--buyers", "50", "--inventory", "5"], output: full)
        #expect(given.status == 74)
        #expect(given.stderr == "flashsale: sale rehearsal stays in '\(box.database)' as far as the rehearsal got; "
                + "what failed: cannot write the output: No space left on device\n", "\(given.stderr)")
        #expect(try box.spawn(["verify", "rehearsal"]).status == 0)

        let scratch = box.directory.appendingPathComponent("tmp").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let kept = try box.spawn(["rehearse", "--buyers", "50", "--inventory", "5", "--keep"], database: false,
                                 environment: ["TMPDIR": scratch], output: full)
        #expect(kept.status == 74)
        let path = try #require(kept.stderr.split(separator: "'").dropFirst().first.map(String.init), "\(kept.stderr)")
        #expect(path.hasPrefix(scratch) && path.hasSuffix("/rehearsal.db"), "\(kept.stderr)")
        #expect(try box.spawn(["--db", path, "verify", "rehearsal"], database: false).status == 0)
    }

    @Test func anInterruptedRehearsalLeavesNoScratchFiles() throws {
        let box = try Sandbox()
        let scratch = box.directory.appendingPathComponent("tmp").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let running = try box.start(["rehearse", "--buyers", "2000000", "--inventory", "10"], database: false,
                                    environment: ["TMPDIR": scratch])
        // Interrupted once it has a scratch directory (while it makes the crowd or decides it).
        #expect(running.waitUntil { !((try? FileManager.default.contentsOfDirectory(atPath: scratch)) ?? []).isEmpty })
        let ended = running.stop(SIGINT)
        #expect(ended == .exit(130), "\(running.stderr)")
        #expect(running.stderr.contains("interrupted"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch).isEmpty)
    }

    /// Found by probing: a stop signal between the scratch directory's making and the
    /// signals' waiter ended the process by its default action, the directory left (about
    /// one start in twenty, signalled within its first milliseconds). Signals come at
    /// random moments of the first 10 ms, 300 times; none may leave a directory.
    @Test func aSignalAtTheStartLeavesNoScratchDirectory() throws {
        let box = try Sandbox()
        let scratch = box.directory.appendingPathComponent("tmp").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        var random = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let running = try box.start(["rehearse"], database: false, environment: ["TMPDIR": scratch])
            usleep(UInt32.random(in: 0...10_000, using: &random))
            switch running.stop(SIGTERM) {
            case .exit(let status): #expect(status == 130, "\(running.stderr)")
            case .signal(let signal): #expect(signal == SIGTERM)
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch).isEmpty)
    }

    /// Found by probing: an interrupted rehearsal into --db left its sale unsaid (a second
    /// run was then refused, the sale existing).
    @Test func anInterruptedRehearsalSaysWhereItsSaleStays() throws {
        let box = try Sandbox()
        let running = try box.start(["rehearse", "--buyers", "2000000", "--inventory", "10"])
        // Interrupted once its sale is made (while it makes the crowd or decides it).
        #expect(running.waitUntil { (try? box.spawn(["sales"]).stdout.contains("rehearsal")) == true })
        #expect(running.stop(SIGINT) == .exit(130), "\(running.stderr)")
        #expect(running.stderr.contains("interrupted; its children are stopped and its scratch files removed; "
                                        + "sale rehearsal stays in '\(box.database)'\n"), "\(running.stderr)")
    }

    /// Found by probing: the queue's path ended with exit 75 at a lock held past
    /// --busy-timeout, where the stream's waited it out. Its children are run again until
    /// the lock goes.
    @Test func theQueuesPathWaitsOutAWriteLock() throws {
        try waitsOutAWriteLock(via: "queue", metWhenALogSays: "the database is locked by another process")
    }

    /// Found by probing: over HTTP the same lock ended the rehearsal with exit 75, serve's
    /// 503 busy taken as the end. The calls answered so are sent again until the lock goes.
    @Test(.enabled(if: serverBuilt, "needs flashsale-serve beside flashsale"))
    func theHTTPPathWaitsOutAWriteLock() throws {
        try waitsOutAWriteLock(via: "http", metWhenALogSays: #""status":503"#)
    }

    /// Found by probing: on a --db that another process kept locking, the rehearsal's own
    /// confirms and cancels, and its sweeps, gave up at the busy timeout (exit 75, the sale
    /// left half run, "retry" refused) where its other steps waited. Every step waits now.
    @Test func everyStepWaitsOutALockTakenAgainAndAgain() throws {
        let box = try Sandbox()
        try box.run(["init"])
        let running = try box.start(["--busy-timeout", "20ms", "rehearse", "--buyers", "2000", "--inventory", "50",
                                     "--duration", "10s", "--json"])
        let holder = try Connection(path: box.database, busyTimeout: .seconds(20))
        // From once its sale is made: a lock before that is 75 with nothing made, as for any command.
        #expect(try running.waitUntil { try holder.firstRow("SELECT 1 FROM sale WHERE id = 'rehearsal'") { $0.int64(0) } != nil })
        _ = try running.waitUntil(within: 300) {
            try holder.execute("BEGIN IMMEDIATE")
            usleep(200_000)
            try holder.execute("ROLLBACK")
            usleep(5_000)
            return false
        }
        let ended = running.result()
        #expect(ended.status == 0, "\(ended.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(ended.stdout.utf8)) as? [String: Any]
        #expect((report?["verify"] as? [String: Any])?["ok"] as? Bool == true, "\(ended.stdout)")
        // The sweeps' count is the database's.
        let sale = try box.run(["status", "rehearsal", "--json"]).json()
        #expect(report?["expired"] as? Int == sale["expired"] as? Int, "\(ended.stdout)")
    }

    /// A rehearsal through `path` whose database is locked once its sale is made, until a
    /// child has met the lock (its log, in the scratch directory, says `sign`), then let go:
    /// it ends as if there had been none.
    private func waitsOutAWriteLock(via path: String, metWhenALogSays sign: String) throws {
        let box = try Sandbox()
        try box.run(["init"])
        let scratch = box.directory.appendingPathComponent("tmp").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let running = try box.start(["--busy-timeout", "100ms", "rehearse", "--via", path, "--buyers", "20000", "--inventory", "20"],
                                    environment: ["TMPDIR": scratch])
        let holder = try Connection(path: box.database, busyTimeout: .seconds(20))
        #expect(try running.waitUntil { try holder.firstRow("SELECT 1 FROM sale WHERE id = 'rehearsal'") { $0.int64(0) } != nil })
        try holder.execute("BEGIN IMMEDIATE")
        let met = running.waitUntil(within: 30) { Self.childLogs(in: scratch).contains(sign) }
        try holder.execute("ROLLBACK")
        #expect(met, "no child met the lock: \(running.stderr)")
        let ended = running.result()
        #expect(ended.status == 0, "\(ended.stderr)")
        #expect(ended.stdout.contains("verify           ok"), "\(ended.stdout)")
    }

    /// Every child's log of the rehearsals in `scratch`, as one text.
    private static func childLogs(in scratch: String) -> String {
        let directories = (try? FileManager.default.contentsOfDirectory(atPath: scratch)) ?? []
        return directories.flatMap { directory in
            ((try? FileManager.default.contentsOfDirectory(atPath: scratch + "/" + directory)) ?? [])
                .filter { $0.hasSuffix(".log") }
                .compactMap { try? String(contentsOfFile: scratch + "/" + directory + "/" + $0, encoding: .utf8) }
        }.joined(separator: "\n")
    }

    /// Found by probing: a FLASHSALE_NOW the children could not be given for the day's last
    /// steps failed the rehearsal half way (exit 2), its sale made.
    @Test func aClockTooLateForTheDayIsRefusedBeforeAnythingIsMade() throws {
        let box = try Sandbox()
        try box.run(["init"])
        let before = try box.dump()
        let result = try box.spawn(["rehearse", "--buyers", "20", "--inventory", "2"], now: "9999-11-30T23:58:00.250Z")
        #expect(result.status == 2)
        #expect(result.stderr.contains("FLASHSALE_NOW 9999-11-30T23:58:00.250Z leaves no room for the rehearsal's day"), "\(result.stderr)")
        #expect(try box.dump() == before)
    }

    /// Found by probing: the sale opened at FLASHSALE_NOW's whole second, up to 999 ms
    /// before the clock given.
    @Test func theSaleOpensAtTheClockGivenToTheMillisecond() throws {
        let box = try Sandbox()
        let result = try box.spawn(["rehearse", "--buyers", "20", "--inventory", "2"], now: "2026-06-01T10:00:00.750Z")
        #expect(result.status == 0, "\(result.stderr)")
        let status = try box.spawn(["status", "rehearsal", "--json"])
        #expect(status.stdout.contains(#""starts_at":"2026-06-01T10:00:00.750Z""#), "\(status.stdout)")
    }

    /// Found by probing: the report wrote a path's newline and escape raw.
    @Test func theReportWritesAPathsControlCharactersEscaped() throws {
        let box = try Sandbox()
        let path = box.directory.appendingPathComponent("x\ny\u{1B}.db").path
        let result = try box.spawn(["--db", path, "rehearse", "--buyers", "20", "--inventory", "2"], database: false)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasSuffix("  database         \(path.controlCharactersEscaped)\n"), "\(result.stdout)")
        #expect(!result.stdout.contains("\u{1B}"))
    }

    /// Found by probing: in a database given with --db, the report said "verify ok" of
    /// a database whose other sale verify refused; only the rehearsal's sale is the
    /// rehearsal's to check, and its line says so.
    @Test func inAGivenDatabaseVerifySaysItCheckedTheRehearsalsSaleAlone() throws {
        let box = try Sandbox()
        #expect(try box.run(["create-sale", "tv", "--inventory", "10"]).status == 0)
        let result = try box.spawn(["rehearse", "--buyers", "20", "--inventory", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("\n  verify           ok (sale rehearsal only)\n"), "\(result.stdout)")
        let scratch = try box.spawn(["rehearse", "--buyers", "20", "--inventory", "2"], database: false)
        #expect(scratch.stdout.contains("\n  verify           ok\n"), "\(scratch.stdout)")
    }

    /// Whether this process may mount a tmpfs (root, with the capability): a full disk made
    /// of one.
    static let tmpfsMountable: Bool = {
        guard geteuid() == 0 else { return false }
        var template = Array((NSTemporaryDirectory() + "/flashsale-mount-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { return false }
        let path = String(cString: made)
        defer { rmdir(path) }
        guard mount("tmpfs", path, "tmpfs", 0, "size=64k") == 0 else { return false }
        umount(path)
        return true
    }()

    /// Found by probing: over HTTP a full disk was exit 75 ("busy, retry"), every 503 taken
    /// for a lock; serve's code says which (io here: 74, as on the other paths), and serve
    /// is stopped before the rehearsal exits.
    @Test(.enabled(if: serverBuilt && tmpfsMountable, "needs flashsale-serve and root to mount a tmpfs"))
    func aFullDiskOverHTTPIsAnIOFailure() throws {
        let box = try Sandbox()
        let tiny = try TmpfsMount(megabytes: 2, owner: "root")
        let result = try box.spawn(["--db", tiny.path + "/r.db", "rehearse", "--via", "http", "--buyers", "100000"], database: false)
        #expect(result.status == 74, "\(result.stderr)")
        #expect(result.stderr.contains("rehearse: serve answered 503 to a request (io): "), "\(result.stderr)")
        // Stopped before the rehearsal exits (found in CI: serve outlived it, on a database
        // the test then unmounted).
        #expect(Self.processes { $0.arguments.contains { $0.hasPrefix(tiny.path) } }.isEmpty, "serve outlived the rehearsal")
    }

    /// Found by probing: a TMPDIR too deep for the scratch database was refused in words
    /// that named no path, nor anything the user had given.
    @Test func aTMPDIRTooDeepForTheScratchDatabaseIsNamed() throws {
        let box = try Sandbox()
        var deep = box.directory.path
        while deep.utf8.count < 480 { deep += "/" + String(repeating: "d", count: min(200, 480 - deep.utf8.count)) }
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
        let result = try box.spawn(["rehearse", "--buyers", "100"], database: false, environment: ["TMPDIR": deep])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("flashsale: the scratch database in TMPDIR: a new database's path takes at most 504 bytes"),
                "\(result.stderr)")
        #expect(result.stderr.hasSuffix("; set TMPDIR to a shorter path\n"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: deep).isEmpty)
    }

    /// Found by probing: a full TMPDIR failed the queue's submit (74), whose log, in the
    /// same full directory, kept none of its words; the rehearsal said nothing of why.
    @Test(.enabled(if: tmpfsMountable, "needs root to mount a tmpfs"))
    func aChildWhoseWordsAreLostToAFullDiskIsSaidToBe() throws {
        let box = try Sandbox()
        let tiny = try TmpfsMount(megabytes: 12, owner: "root")
        let result = try box.spawn(["rehearse", "--via", "queue", "--buyers", "100000"], database: false, environment: ["TMPDIR": tiny.path])
        #expect(result.status == 74, "\(result.stderr)")
        #expect(result.stderr.contains("(exit 74): its words are lost: the disk of the scratch directory \(tiny.path)/flashsale-rehearsal-"),
                "\(result.stderr)")
    }

    /// SIGKILL gives a rehearsal no chance to end its children: the kernel sends them
    /// SIGTERM (`RehearsalChildren.stopWithRehearsal`), so its serve does not listen on.
    @Test(.enabled(if: serverBuilt, "needs flashsale-serve beside flashsale"))
    func aKilledRehearsalsServerStopsToo() throws {
        let box = try Sandbox()
        let scratch = box.directory.appendingPathComponent("tmp").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let running = try box.start(["rehearse", "--via", "http", "--buyers", "300000", "--inventory", "10"], database: false,
                                    environment: ["TMPDIR": scratch])
        var server: pid_t?
        // The crowd of 300,000 is drawn before serve starts: 2 s alone, past 10 s in a
        // full test run on two cores (CI's failure), so the wait is a minute.
        #expect(running.waitUntil(within: 60) {
            server = Self.processes { $0.parent == running.child.pid && $0.arguments.contains("serve") }.first
            return server != nil
        }, "\(running.stderr)")
        _ = running.stop(SIGKILL)
        let serve = try #require(server)
        let deadline = Date().addingTimeInterval(10)
        while Self.isRunning(serve), Date() < deadline { usleep(10_000) }
        #expect(!Self.isRunning(serve), "serve outlived the rehearsal that started it")
        if Self.isRunning(serve) { kill(serve, SIGKILL) }
    }

    /// Found by probing: each child got the rehearsal's database as `--db`, so that every
    /// user of the host read a URL's password in ps(1), where the rehearsal had it from
    /// FLASHSALE_DB, which they cannot read. The children get it in their environment.
    @Test(arguments: commandLineStores)
    func theChildrenGetTheDatabaseInTheirEnvironmentNotOnTheirCommandLines(store: TestStore) throws {
        let box = try Sandbox(store)
        let running = try box.start(["rehearse", "--buyers", "300000", "--inventory", "10"], database: false,
                                    environment: ["FLASHSALE_DB": box.database])
        var stream: [String] = []
        // The crowd is drawn before the stream starts: 2 s alone, more on loaded cores.
        #expect(running.waitUntil(within: 60) {
            stream = ProcessStatus.all().first { $0.parent == running.child.pid && $0.arguments.contains("--stream") }?.arguments ?? []
            return !stream.isEmpty
        }, "\(running.stderr)")
        _ = running.stop(SIGTERM)
        #expect(!stream.contains("--db") && !stream.contains(box.database), "\(stream)")
    }

    /// Found by probing: a signal while the report was being written (its reader slow)
    /// stopped the rehearsal after its day was done, and with --json wrote an error object
    /// after the report's. Too late to stop: the report is whole, the exit 0.
    @Test func aSignalOnceTheReportIsBeingWrittenIsTooLateToStopIt() throws {
        let box = try Sandbox()
        let stdout = try FullPipe()
        let running = try box.start(Self.small, database: false, output: stdout.writeEnd)
        stdout.processStarted()
        #expect(running.waitUntil(within: 60) { FullPipe.isWriting(running.child.pid) }, "\(running.stderr)")
        running.child.send(SIGTERM)
        let report = stdout.drained()
        #expect(running.child.wait() == .exit(0), "\(running.stderr)")
        #expect(report.hasPrefix("{") && report.hasSuffix("}\n") && report.components(separatedBy: "\n").count == 2, "\(report)")
        #expect(!running.stderr.contains("interrupted"), "\(running.stderr)")
    }

    /// Processes of /proc that `matching` takes: their parent's pid and their arguments.
    private static func processes(_ matching: ((parent: pid_t, arguments: [String])) -> Bool) -> [pid_t] {
        ProcessStatus.all().filter { matching(($0.parent, $0.arguments)) }.map(\.pid)
    }

    private static func isRunning(_ pid: pid_t) -> Bool {
        ProcessStatus(of: pid)?.isRunning ?? false
    }

    @Test func theSellOutCurveFallsAsTheItemsGo() {
        let taken = [10, 20, 30, 40].map { StockChange(at: $0, items: -1) }
        let curve = SellOutCurve.draw(changes: taken, inventory: 4, until: 40, width: 4, height: 1)
        let row = curve.split(separator: "\n")[1]
        #expect(row.hasSuffix("┤▆▄▂ "), "\(curve)")
        #expect(StockChange.soldOut(taken, inventory: 4) == Span(milliseconds: 40))
    }

    /// Found by probing: the fourth hold of a sale of four was called its selling out, with
    /// items left, when a hold before it had come back.
    @Test func itemsBackInStockPutOffTheSellOut() {
        let changes = [StockChange(at: 10, items: -1), StockChange(at: 20, items: -1), StockChange(at: 25, items: 1),
                       StockChange(at: 30, items: -1), StockChange(at: 40, items: -1), StockChange(at: 50, items: -1)]
        #expect(StockChange.soldOut(Array(changes.prefix(5)), inventory: 4) == nil)
        #expect(StockChange.soldOut(changes, inventory: 4) == Span(milliseconds: 50))
        let curve = SellOutCurve.draw(changes: changes, inventory: 4, until: 50, width: 5, height: 1)
        #expect(curve.split(separator: "\n")[1].hasSuffix("┤▆▄▄▂ "), "\(curve)")
    }

    /// Found by probing: a small rehearsal's report said "(1 bots)" and "1 items sold to bots".
    @Test func aReportOfOneSaysItInTheSingular() throws {
        let box = try Sandbox()
        let result = try box.spawn(["rehearse", "--buyers", "10", "--inventory", "5", "--seed", "1"], database: false)
        #expect(result.status == 0, "\(result.stderr)")
        let first = try #require(result.stdout.split(separator: "\n").first)
        #expect(first == "rehearsal via stream, seed 1: 10 buyers (1 bot), 5 items, 12 requests")
        #expect(result.stdout.contains("1 item sold to bots"), "\(result.stdout)")
        #expect(String.counted(1, "item") == "1 item" && String.counted(Int64(0), "item") == "0 items")
    }
}
