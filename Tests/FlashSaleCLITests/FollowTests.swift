import CSQLite
import Foundation
import Testing
import FlashSaleTestSupport
@testable import FlashSaleStore

@Suite struct FollowTests {
    /// `process --follow` decides requests submitted while it runs, and on SIGTERM finishes
    /// and exits 0 with its summary.
    @Test(arguments: commandLineStores)
    func followDecidesNewRequestsUntilTerminated(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"], now: nil)
        let follower = try box.start(["process", "--follow"], now: nil)

        let id = try box.run(["submit", "s1", "alice"], now: nil).line
        // Wait for the follower to decide it: it polls ten times a second.
        var status = "queued"
        _ = try follower.waitUntil {
            status = try box.run(["request", id, "--json"], now: nil).json()["status"] as? String ?? "?"
            return status != "queued"
        }
        #expect(status == "accepted")

        #expect(follower.stop(SIGTERM) == .exit(0))
        #expect(follower.stdout == "1 accepted, 0 rejected\n")
    }

    /// Found by probing: `-q events --follow` exited 0 at once, as `-q events` does. Quiet,
    /// it follows and prints nothing: with `--limit 1` it waits for the next event.
    @Test(arguments: commandLineStores)
    func aQuietEventFollowerWaitsForItsEvents(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"], now: nil)
        let latest = try #require(try box.run(["--json", "events"], now: nil).stdout.split(separator: "\n").count)
        let follower = try box.start(["-q", "events", "--follow", "--after", String(latest), "--limit", "1"], now: nil)
        #expect(try !follower.waitUntil(within: 1) { !follower.child.isRunning }, "\(follower.stderr)")
        try box.run(["book", "s1", "alice"], now: nil)
        #expect(follower.waitForExit(within: 30) == .exit(0), "\(follower.stderr)")
        #expect(follower.stdout.isEmpty && follower.stderr.isEmpty, "\(follower.stdout)\(follower.stderr)")
    }

    /// SIGHUP (the terminal closed) stops a follower as SIGTERM does, where its default
    /// action ended it at once.
    @Test(arguments: commandLineStores)
    func aHangupStopsAFollower(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"], now: nil)
        let decided = { (id: String) in try box.run(["request", id, "--json"], now: nil).json()["status"] as? String == "accepted" }
        let follower = try box.start(["process", "--follow"], now: nil)
        let first = try box.run(["submit", "s1", "alice"], now: nil).line
        #expect(try follower.waitUntil { try decided(first) })
        #expect(follower.stop(SIGHUP) == .exit(0), "\(follower.stderr)")
        #expect(follower.stdout == "1 accepted, 0 rejected\n")
    }

    /// How a follower may be started with a stop signal ignored, and which.
    enum IgnoringStart: CaseIterable {
        /// `nohup`: SIGHUP.
        case nohup
        /// A script's background job (`cmd &`): SIGINT, so that the Ctrl-C meant for the
        /// script does not stop it (found by probing: it did).
        case backgroundJob

        var signal: Int32 { self == .nohup ? SIGHUP : SIGINT }

        func command(_ arguments: [String]) -> (String, [String]) {
            switch self {
            case .nohup: ("/usr/bin/nohup", arguments)
            case .backgroundJob: ("/bin/sh", ["-c", #"trap '' INT; exec "$0" "$@""#] + arguments)
            }
        }
    }

    /// A stop signal ignored when a follower started is left ignored: the follower goes
    /// on. SIGTERM still stops it.
    @Test(arguments: commandLineStores, IgnoringStart.allCases)
    func aStopSignalIgnoredAtTheStartIsLeftIgnored(store: TestStore, start: IgnoringStart) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"], now: nil)
        let decided = { (id: String) in try box.run(["request", id, "--json"], now: nil).json()["status"] as? String == "accepted" }
        let (executable, arguments) = start.command([flashsaleBinary, "--db", box.database, "process", "--follow"])
        let follower = try Background(box, executable, arguments,
                                      environment: ["PATH": "/usr/bin:/bin"].merging(box.commandEnvironment(now: nil, [:])) { _, new in new })
        let first = try box.run(["submit", "s1", "alice"], now: nil).line
        #expect(try follower.waitUntil { try decided(first) })
        kill(follower.child.pid, start.signal)
        let second = try box.run(["submit", "s1", "bob"], now: nil).line
        #expect(try follower.waitUntil { try decided(second) }, "\(follower.stderr)")
        #expect(follower.stop(SIGTERM) == .exit(0), "\(follower.stderr)")
        #expect(follower.stdout == "2 accepted, 0 rejected\n")
    }

    /// A stop signal sent while the main thread is not waiting for it goes to another thread
    /// that does not block it, where its default action ends the process: every thread of a
    /// follower but the main one (which takes them with sigtimedwait) blocks SIGINT and
    /// SIGTERM. On PostgreSQL the connection's event loop thread is one, started when the
    /// store opens; a CI run saw `process --follow` end by SIGTERM when it did not block it.
    @Test(arguments: commandLineStores)
    func everyThreadButTheMainOneBlocksTheStopSignals(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"], now: nil)
        let id = try box.run(["submit", "s1", "alice"], now: nil).line
        // Each is following once it has done what it was started for: its threads are all
        // started by then.
        let following: [(command: [String], done: (Background) throws -> Bool)] = [
            (["process", "--follow"], { _ in try box.run(["request", id, "--json"], now: nil).json()["status"] as? String == "accepted" }),
            (["events", "--follow"], { $0.stdout.contains("sale_created") }),
        ]
        for (command, done) in following {
            let follower = try box.start(command, now: nil)
            let pid = follower.child.pid
            let stop = UInt64(1) << (SIGINT - 1) | UInt64(1) << (SIGTERM - 1) | UInt64(1) << (SIGHUP - 1)
            var unblocked: [String] = []
            #expect(try follower.waitUntil { try done(follower) }, "\(command): \(follower.stderr)")
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            for task in tasks where task != "\(pid)" {
                let status = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8)) ?? ""
                let blocked = status.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }
                    .flatMap { UInt64($0.dropFirst("SigBlk:".count).trimmingCharacters(in: .whitespaces), radix: 16) } ?? 0
                if blocked & stop != stop { unblocked.append(task) }
            }
            #expect(unblocked.isEmpty, "\(command): threads \(unblocked) of \(tasks) leave SIGINT, SIGTERM or SIGHUP unblocked")
            #expect(follower.stop(SIGTERM) == .exit(0), "\(command): \(follower.stderr)")
        }
    }
}

/// A follower that another process keeps from the database past `--busy-timeout`: it waits
/// and goes on, saying so on stderr, and never exits 75.
@Suite struct FollowBusyTests {
    /// A sale with one queued request (id 1), and a connection of this process holding the
    /// write lock until the caller rolls it back.
    static func queueBehindAHeldLock() throws -> (Sandbox, Connection) {
        let box = try queueOfOne()
        let holder = try Connection(path: box.database, busyTimeout: .seconds(0))
        try holder.execute("BEGIN IMMEDIATE")
        return (box, holder)
    }

    /// A sale with one queued request (id 1).
    static func queueOfOne() throws -> Sandbox {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        #expect(try box.run(["submit", "s1", "alice"]).line == "1")
        return box
    }

    static let waiting = "flashsale: another process has held the database longer than --busy-timeout; waiting for it\n"
    static let resumed = "flashsale: the database is free again; going on\n"

    @Test func processFollowWaitsOutAWriteLockAndDecidesAfterIt() throws {
        let (box, holder) = try Self.queueBehindAHeldLock()
        let id = "1"
        let follower = try box.start(["--busy-timeout", "100ms", "process", "--follow"])
        #expect(follower.waitForStderr(Self.waiting), "stderr: \(follower.stderr)")
        try holder.execute("ROLLBACK")
        #expect(try follower.waitUntil { try box.run(["request", id, "--json"]).json()["status"] as? String == "accepted" })
        #expect(follower.waitForStderr(Self.waiting + Self.resumed), "stderr: \(follower.stderr)")
        #expect(follower.stop() == .exit(0))
        #expect(follower.stdout == "1 accepted, 0 rejected\n")
    }

    @Test func aStopSignalEndsTheWaitForALock() throws {
        let (box, holder) = try Self.queueBehindAHeldLock()
        defer { try? holder.execute("ROLLBACK") }
        let follower = try box.start(["--busy-timeout", "100ms", "process", "--follow"])
        #expect(follower.waitForStderr(Self.waiting), "stderr: \(follower.stderr)")
        #expect(follower.stop() == .exit(0))
        #expect(follower.stdout == "0 accepted, 0 rejected\n")
    }

    /// Found by probing: a stream whose commit met a lock held past --busy-timeout exited
    /// 75, its producer's later lines unread. It waits out the lock as a follower does,
    /// saying so, and answers every line after it.
    @Test func aStreamWaitsOutAWriteLockAndAnswersAfterIt() throws {
        let (box, holder) = try Self.queueBehindAHeldLock()
        let stream = try box.start(["--busy-timeout", "100ms", "book", "s1", "--stream"],
                                   input: "{\"user\":\"bob\"}\n{\"user\":\"carol\"}\n")
        #expect(stream.waitForStderr(Self.waiting), "stderr: \(stream.stderr)")
        #expect(stream.stdout == "")
        try holder.execute("ROLLBACK")
        #expect(stream.child.wait() == .exit(0), "\(stream.stderr)")
        #expect(stream.stderr == Self.waiting + Self.resumed)
        #expect(stream.stdout.split(separator: "\n").filter { $0.contains("\"ok\":true") }.count == 2)
    }

    /// Found by probing: a follower or a stream that met the lock at its start (opening the
    /// database, reading the sale) exited 75, where it waits out the same lock later. It
    /// waits it out, says so, and then does its work.
    @Test(arguments: [["events", "--follow"], ["process", "--follow"], ["book", "s1", "--stream"]])
    func aLongRunningCommandWaitsOutALockThatWasThereFirst(_ command: [String]) throws {
        let box = try Self.queueOfOne()
        // Let go once the command waits.
        let running = try withExtendedLifetime(try lockingEveryoneOut(of: box.database)) {
            let running = try box.start(["--busy-timeout", "100ms"] + command, input: "{\"user\":\"bob\"}\n")
            #expect(running.waitForStderr(Self.waiting), "stderr: \(running.stderr)")
            return running
        }
        switch command[0] {
        case "events":
            #expect(running.waitUntil { running.stdout.contains("sale_created") }, "\(running.stderr)")
            #expect(running.stop() == .exit(0))
        case "process":
            #expect(try running.waitUntil { try box.run(["request", "1", "--json"]).json()["status"] as? String == "accepted" })
            #expect(running.stop() == .exit(0))
            #expect(running.stdout == "1 accepted, 0 rejected\n")
        default:
            #expect(running.child.wait() == .exit(0), "\(running.stderr)")
            #expect(running.stdout.split(separator: "\n").filter { $0.contains("\"ok\":true") }.count == 1, "\(running.stdout)")
        }
        #expect(running.stderr == Self.waiting + Self.resumed)
    }

    /// A stop signal while a follower waits at its start ends it as it would later: exit 0,
    /// with what it did, nothing.
    @Test func aStopSignalEndsTheWaitForALockAtTheStart() throws {
        let box = try Self.queueOfOne()
        try withExtendedLifetime(try lockingEveryoneOut(of: box.database)) {
            let follower = try box.start(["--busy-timeout", "100ms", "process", "--follow"])
            #expect(follower.waitForStderr(Self.waiting), "stderr: \(follower.stderr)")
            #expect(follower.stop() == .exit(0))
            #expect(follower.stdout == "0 accepted, 0 rejected\n")
        }
    }

    /// Only a follower (or a stream) waits: a single run is exit 75, as the contract says.
    @Test func processWithoutFollowIsExit75WhenBusy() throws {
        let (box, holder) = try Self.queueBehindAHeldLock()
        defer { try? holder.execute("ROLLBACK") }
        #expect(try box.run(["--busy-timeout", "100ms", "process"]).status == 75)
    }

    /// A follower whose file is removed, or replaced by another moved onto its name, would
    /// wait for ever on a database nobody else writes (a probe found it silent): it ends
    /// with 73, naming the file, and a follower of the new file starts afresh.
    @Test(arguments: [["events", "--follow"], ["process", "s1", "--follow"]])
    func aFollowerWhoseFileIsRemovedOrReplacedEndsWith73(_ command: [String]) throws {
        for replaced in [false, true] {
            let box = try Sandbox()
            try box.run(["create-sale", "s1", "--inventory", "5"])
            try box.run(["submit", "s1", "alice"])
            let follower = try box.start(command)
            // Following: it has printed the sale's event, or decided the request.
            let following = try follower.waitUntil {
                try follower.stdout.contains("sale_created") || box.run(["status", "s1", "--json"]).json()["held"] as? Int == 1
            }
            #expect(following)
            for suffix in ["", "-wal", "-shm"] { unlink(box.database + suffix) }
            if replaced {
                let other = try Sandbox()
                try other.run(["create-sale", "s1", "--inventory", "1"])
                #expect(rename(other.database, box.database) == 0)
            }
            #expect(follower.waitForExit() == .exit(73), "\(follower.stderr)")
            #expect(follower.stderr.contains("was removed or replaced while it was followed"), "\(follower.stderr)")
            // The advice is the command's own (found by probing: process was told of --after).
            #expect(follower.stderr.contains("--after") == (command[0] == "events"), "\(follower.stderr)")
            // Not said to stay decided: what the file had not taken from its log yet went
            // with it (found by probing: a move to another file system was told so).
            #expect(follower.stderr.contains("the commits in its log since SQLite last copied it into the file went with it"),
                    "\(follower.stderr)")
            #expect(!follower.stderr.contains("stays decided"), "\(follower.stderr)")
        }
    }

    /// How a stream's database file is moved under it, and what is done at the new path.
    enum Move: CaseIterable, Sendable {
        case alone, touched, anotherBooksThere, withItsDirectory, restoredOver
    }

    /// Found by probing: a stream whose database file alone was moved (`mv db db2`, its
    /// -wal left behind) stopped at its next line and, as it closed, copied its log into
    /// the file where it now was; when another process had booked there meanwhile, in a
    /// log of its own beside it, the copy wrote over the pages that log's commits rest on,
    /// and the database was corrupt. That log is looked for: found, the other's commits
    /// are kept, the stream's since SQLite last copied its log in are lost, and it says
    /// so. Otherwise nothing is lost and it says where the file went: a `touch` is no
    /// write, and a file moved with its directory has its log beside it still (found by
    /// the follow-up probe: both lost). A file restored at the old name is not read with
    /// the stream's log, which another command refuses after its busy timeout (found by
    /// probing: read as a mix of both databases, corrupt).
    @Test(arguments: Move.allCases)
    func aStreamWhoseFileIsMovedNeverCopiesItsLogOverAnother(move: Move) throws {
        let box = try Sandbox()
        let database = box.directory.appendingPathComponent("d1/db").path
        let moved = move == .withItsDirectory ? box.directory.appendingPathComponent("d2/db").path : database + ".moved"
        try FileManager.default.createDirectory(atPath: box.directory.appendingPathComponent("d1").path, withIntermediateDirectories: true)
        try box.run(["--db", database, "create-sale", "s1", "--inventory", "10000", "--per-user", "10000"], database: false)
        let restored = box.directory.appendingPathComponent("restored.db").path
        try box.run(["--db", restored, "create-sale", "r1", "--inventory", "3"], database: false)
        // The stream's lines with keys, the other's without: found corrupt that way.
        let lines = { (user: String, keyed: Bool) in
            "i=0; while [ $i -lt 2000 ]; do printf '{\"user\":\"\(user)%d\"\(keyed ? ",\"key\":\"k%d\"" : "")}\\n' $i\(keyed ? " $i" : ""); "
                + "i=$((i+1)); done"
        }
        let atTheNewPath = switch move {
        case .alone: ""
        case .touched: "touch '\(moved)'"
        case .anotherBooksThere: "(\(lines("b", false))) | \"$FLASHSALE\" --db '\(moved)' book s1 --stream > /dev/null"
        case .withItsDirectory: ""
        case .restoredOver:
            "mv '\(restored)' '\(database)'; \"$FLASHSALE\" --db '\(database)' --busy-timeout 200ms sales 2> refused; echo $? >> refused"
        }
        let result = try box.shell("""
            mkfifo in; ("$FLASHSALE" --db '\(database)' book s1 --stream < in > out 2> err; echo $? > status) & exec 3> in
            (\(lines("a", true))) >&3
            until [ "$(wc -l < out)" -ge 2000 ]; do sleep 0.01; done
            \(move == .withItsDirectory ? "mv d1 d2" : "mv '\(database)' '\(moved)'")
            \(atTheNewPath)
            echo '{"user":"x"}' >&3; exec 3>&-; wait
            cat status err
            """)
        let stream = result.stdout
        #expect(stream.hasPrefix("73\n"), "\(stream)")
        switch move {
        case .anotherBooksThere:
            #expect(stream.contains("was moved while it was followed, and another process has opened it where it is now with a log "
                                    + "of its own (or where it is cannot be told); stopped: this process's log does not go into it"),
                    "\(stream)")
            #expect(!stream.contains("stay decided"), "\(stream)")
        case .withItsDirectory:
            #expect(stream.contains("was moved to \(moved) with its log while it was followed; stopped: no commit is lost"), "\(stream)")
        case .alone, .touched, .restoredOver:
            #expect(stream.contains("was moved to \(moved) while it was followed; stopped, its log copied into it first: no commit "
                                    + "is lost"), "\(stream)")
        }
        if move == .restoredOver {
            let refused = try String(contentsOfFile: box.directory.appendingPathComponent("refused").path, encoding: .utf8)
            #expect(refused.hasPrefix("flashsale: cannot use the database: the -wal and -shm at its name are held by process ")
                        && refused.contains(" for another file (one moved away or removed while that process had it open)")
                        && refused.hasSuffix("\n73\n"), "\(refused)")
            #expect(try box.run(["--db", database, "verify"], database: false).stdout == "ok\n")
            #expect(try box.run(["--db", database, "status", "r1", "--json"], database: false).json()["held"] as? Int == 0)
        }
        #expect(try box.run(["--db", moved, "verify"], database: false).stdout == "ok\n")
        let bookings = try box.run(["--db", moved, "--json", "bookings", "s1"], database: false).stdout
        let users = try #require(try JSONSerialization.jsonObject(with: Data(bookings.utf8)) as? [[String: Any]]).compactMap { $0["user"] as? String }
        #expect(users.count { $0.hasPrefix("a") } == (move == .anotherBooksThere ? 0 : 2000))
        #expect(users.count { $0.hasPrefix("b") } == (move == .anotherBooksThere ? 2000 : 0))
    }

    /// Found by probing: with the -wal and -shm removed under `process --follow`, the next
    /// command made new ones and committed there while the follower went on in its own;
    /// as it ended it copied its log into the file and removed the new one by name, and
    /// the command's booking was gone. It stops at its next look (73), and does not copy
    /// its log in when another process has made new ones: theirs are kept, its own since
    /// SQLite last copied its log into the file are lost, and it says so. With the names
    /// still free, its log goes into the file and nothing is lost; so too with only the
    /// -wal removed, its own -shm left at its name (found by the follow-up probe: all lost);
    /// it copies its log in as it finds them gone (`JournalFilesTests`).
    @Test(arguments: [(false, ["-wal", "-shm"]), (true, ["-wal", "-shm"]), (false, ["-wal"])])
    func aFollowerWhoseLogIsRemovedStopsWithoutTakingOthersCommits(anotherOpensIt: Bool, removed: [String]) throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try box.run(["submit", "s1", "alice"])
        let follower = try box.start(["process", "s1", "--follow"], now: nil)
        #expect(try follower.waitUntil { try box.run(["status", "s1", "--json"]).json()["held"] as? Int == 1 })
        // Held still meanwhile, so that it looks only once the files are gone and, if so,
        // another has made new ones.
        follower.child.holdStill()
        for suffix in removed { unlink(box.database + suffix) }
        if anotherOpensIt { #expect(try box.run(["book", "s1", "bob"], now: nil).status == 0) }
        follower.child.send(SIGCONT)
        #expect(follower.waitForExit() == .exit(73), "\(follower.stderr)")
        #expect(follower.stderr.contains("the -wal or -shm of \(box.database) was removed or replaced while this process had it open"),
                "\(follower.stderr)")
        #expect(follower.stderr.contains("stays decided") != anotherOpensIt, "\(follower.stderr)")
        #expect(follower.stderr.contains("its log copied into the file first: no commit is lost") != anotherOpensIt, "\(follower.stderr)")
        #expect(follower.stderr.contains("the commits in the removed log since SQLite last copied it into the file (this process's "
                                         + "and any other's) are lost") == anotherOpensIt,
                "\(follower.stderr)")
        let users = try box.run(["bookings", "s1", "--json"]).jsonArray().compactMap { $0["user"] as? String }
        #expect(users == (anotherOpensIt ? ["bob"] : ["alice"]))
        #expect(try box.run(["verify"]).stdout == "ok\n")
    }

    /// Found by probing: on a full disk the copy of the log into the file stopped part way,
    /// and the follower stopped with the rest of it in its log, which nobody else could
    /// reach: the file was left corrupt, its bookings gone. It waits for room, then copies;
    /// and the room is reserved before a page is copied, so that the file stays whole
    /// even if it is killed while it waits (the follow-up probe: corrupt), the log then
    /// lost as a kill after the removal always loses it.
    @Test(.enabled(if: RehearseTests.tmpfsMountable, "needs root to mount a tmpfs"), arguments: [false, true])
    func aFollowerWhoseLogIsRemovedOnAFullDiskWaitsForRoomToCopyIt(killedWhileWaiting: Bool) throws {
        let disk = try TmpfsMount(megabytes: 8, owner: "root")
        try removeTheLogOfAFollowerOnAFullDisk(disk.path, killedWhileWaiting: killedWhileWaiting)
    }

    /// Found by probing: `book --stream` waiting for room to copy its log into its moved
    /// file died of a SIGTERM (or SIGHUP), its default action, though the wait says that a
    /// stop signal waits too; the log's 3000 bookings were lost. It waits, and copies them.
    @Test(.enabled(if: RehearseTests.tmpfsMountable, "needs root to mount a tmpfs"))
    func aStreamWaitingForRoomToCopyItsLogOutlastsAStopSignal() throws {
        let disk = try TmpfsMount(megabytes: 4, owner: "root")
        let box = try Sandbox()
        let database = disk.path + "/sale.db"
        let result = try box.shell(try streamOfThousandsOnAFullDisk(disk.path, in: box) + """
            mv '\(database)' '\(database).moved'
            echo '{"user":"last"}' >&3
            until grep -q "waiting for room" err; do sleep 0.01; done
            kill -TERM $stream; sleep 0.5; kill -0 $stream && echo waits
            rm '\(disk.path)/filler'; exec 3>&-; wait $stream; echo $?
            """)
        #expect(result.stdout == "waits\n73\n", "\(result.stdout) \(result.stderr)")
        let bookings = try box.run(["--db", database + ".moved", "--json", "bookings", "s1"], database: false).jsonArray()
        #expect(bookings.count == 3000)
        #expect(try box.run(["--db", database + ".moved", "verify"], database: false).stdout == "ok\n")
    }

    /// Found in CI: the file system of a database unmounted (`umount -l`) under a process
    /// that had it open, the kernel named the file by its path inside the detached file
    /// system ("/sale.db"), which was taken for a rename there; on a full disk the process
    /// then waited for room to copy its log in, forever (a rehearsal's serve outlived each
    /// run). A path that leads to another file, or none, is no place the file went: the
    /// stream stops at once, its log emptied, and says that where the file is cannot be told.
    @Test(.enabled(if: RehearseTests.tmpfsMountable, "needs root to mount a tmpfs"))
    func aStreamWhoseFileSystemIsUnmountedStopsAtOnce() throws {
        let disk = try TmpfsMount(megabytes: 4, owner: "root")
        let box = try Sandbox()
        let result = try box.shell(try streamOfThousandsOnAFullDisk(disk.path, in: box) + """
            umount -l '\(disk.path)'
            echo '{"user":"last"}' >&3; exec 3>&-
            i=0; while kill -0 $stream 2> /dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
            kill -0 $stream 2> /dev/null && { echo waits; kill -KILL $stream; }
            wait $stream; echo $?; cat err
            """)
        #expect(result.stdout.hasPrefix("73\n"), "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("(or where it is cannot be told); stopped: this process's log does not go into it"),
                "\(result.stdout)")
    }

    /// The first lines of a shell script: `book --stream` on `disk`/sale.db, a new sale's,
    /// with `$stream` its pid and descriptor 3 its input, has answered 3,000 holds, all in
    /// its log, and `disk` (a small tmpfs) is filled to the last block.
    private func streamOfThousandsOnAFullDisk(_ disk: String, in box: Sandbox) throws -> String {
        let database = disk + "/sale.db"
        try box.run(["--db", database, "create-sale", "s1", "--inventory", "100000", "--per-user", "100"], database: false)
        return """
            mkfifo in; "$FLASHSALE" --db '\(database)' book s1 --stream < in > out 2> err & stream=$!; exec 3> in
            i=0; while [ $i -lt 3000 ]; do printf '{"user":"user-with-a-longish-name-%06d"}\\n' $i; i=$((i+1)); done >&3
            until [ "$(wc -l < out)" -ge 3000 ]; do sleep 0.01; done
            dd if=/dev/zero of='\(disk)/filler' bs=4k 2> /dev/null

            """
    }

    /// Found by probing: the wait's notice, written to a stderr whose reader had gone, killed
    /// the follower (SIGPIPE) before the copy, and the log's commits were lost.
    @Test(.enabled(if: RehearseTests.tmpfsMountable, "needs root to mount a tmpfs"))
    func aFollowerWhoseStderrReaderHasGoneStillCopiesARemovedLogOnAFullDisk() throws {
        let disk = try TmpfsMount(megabytes: 8, owner: "root")
        try removeTheLogOfAFollowerOnAFullDisk(disk.path, killedWhileWaiting: false, stderrReaderGone: true)
    }

    /// The same where the file system cannot reserve room (ext2: `fallocate` answers
    /// EOPNOTSUPP, as on /dev/shm and some overlays): found by probing, a kill while it
    /// waited still left the file corrupt. Its free space is asked instead.
    @Test(.enabled(if: Ext2ImageMount.available, "needs root, mkfs.ext2 and loop devices"), arguments: [false, true])
    func aFollowerWhoseLogIsRemovedOnAFullDiskThatCannotReserveWaitsForRoom(killedWhileWaiting: Bool) throws {
        let disk = try Ext2ImageMount(megabytes: 16)
        try removeTheLogOfAFollowerOnAFullDisk(disk.path, killedWhileWaiting: killedWhileWaiting)
    }

    private func removeTheLogOfAFollowerOnAFullDisk(_ disk: String, killedWhileWaiting: Bool, stderrReaderGone: Bool = false) throws {
        let box = try Sandbox()
        let database = disk + "/sale.db"
        #expect(try box.spawn(["--db", database, "create-sale", "s1", "--inventory", "5000"], database: false).status == 0)
        let goneReader = try closeOnExecPipe()
        close(goneReader.read)
        defer { close(goneReader.write) }
        let follower = try box.start(["--db", database, "process", "s1", "--follow"], now: nil, database: false,
                                     errors: stderrReaderGone ? goneReader.write : nil)
        #expect(follower.waitUntil { follower.hasOpen(database + "-shm") })
        // Left in the log (the follower keeps others from copying it in), and pages the
        // file must grow by to take them.
        let lines = (0..<2_000).map { #"{"user":"u\#($0)"}"# }.joined(separator: "\n") + "\n"
        #expect(try box.spawn(["--db", database, "book", "s1", "--stream"], now: nil, database: false, input: lines).status == 0)
        let filler = disk + "/filler"
        let descriptor = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        let zeros = [UInt8](repeating: 0, count: 65_536)
        while write(descriptor, zeros, zeros.count) > 0 {}
        close(descriptor)
        for suffix in ["-wal", "-shm"] { unlink(database + suffix) }
        // Still waiting for room, its log the only copy of those bookings, and saying so.
        if !stderrReaderGone {
            #expect(follower.waitUntil { follower.stderr.contains("the disk has no room to copy its log into the file (") },
                    "\(follower.stderr)")
        }
        #expect(!follower.waitUntil(within: 2) { !follower.child.isRunning }, "\(follower.stderr)")
        if killedWhileWaiting { follower.child.send(SIGKILL) }
        unlink(filler)
        if stderrReaderGone {
            // Its last word, the 73's, meets the same pipe: a kill as any Unix tool's.
            #expect(follower.waitForExit() == .signal(SIGPIPE), "\(follower.stderr)")
        } else if !killedWhileWaiting {
            #expect(follower.waitForExit() == .exit(73), "\(follower.stderr)")
            #expect(follower.stderr.contains("its log copied into the file first: no commit is lost"), "\(follower.stderr)")
        }
        #expect(try box.spawn(["--db", database, "verify"], database: false).stdout == "ok\n")
        let status = try box.spawn(["--db", database, "status", "s1", "--json"], database: false).json()
        #expect(status["held"] as? Int == (killedWhileWaiting ? 0 : 2_000))
    }

    /// Found by the follow-up probe: `book --stream` was not watched, and its close took
    /// the booking another command made once the -wal and -shm were removed. It looks
    /// before each group, as a follower does, and stops (73), keeping that booking.
    @Test func aStreamWhoseLogIsRemovedStopsWithoutTakingOthersCommits() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let go = box.directory.appendingPathComponent("go").path
        let stream = try box.startShell("""
            (echo '{"user":"a"}'; while [ ! -e '\(go)' ]; do sleep 0.05; done; echo '{"user":"b"}') \
                | "$FLASHSALE" --db "$DB" book s1 --stream
            """, now: nil)
        #expect(stream.waitUntil { stream.stdout.contains(#""line":1"#) }, "\(stream.stderr)")
        for suffix in ["-wal", "-shm"] { unlink(box.database + suffix) }
        #expect(try box.run(["book", "s1", "bob"], now: nil).status == 0)
        #expect(FileManager.default.createFile(atPath: go, contents: nil))
        let result = stream.result()
        #expect(result.status == 73)
        #expect(result.stderr.contains("another process has made new ones"), "\(result.stderr)")
        let users = try box.run(["bookings", "s1", "--json"]).jsonArray().compactMap { $0["user"] as? String }
        #expect(users == ["bob"])
        #expect(try box.run(["verify"]).stdout == "ok\n")
    }

    /// Found by probing: a restore by `mv` under a follower (another file moved onto the
    /// name, the old file's WAL left beside it) came out corrupt: SQLite does not
    /// checkpoint a moved file when it closes it, and the next command took the WAL the
    /// follower left for the new file's pages. The follower empties it into the old file
    /// as it ends. A process that opens the new file meanwhile waits for that, since the
    /// WAL's index is held by the follower, which does not hold the new file (it shared the
    /// WAL before, and the follower left it as SQLite does).
    /// Found by the follow-up probe: with the -shm removed too, the WAL was left whole.
    @Test(arguments: [(false, false), (false, true), (true, false)])
    func aFollowerLeavesTheFileMovedOntoItsNameAsItCame(whileAnotherHasItOpen: Bool, indexRemoved: Bool) throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let follower = try box.start(["events", "--follow"])
        #expect(try follower.waitUntil { follower.stdout.contains("sale_created") })
        for user in ["a", "b", "c"] { try box.run(["book", "s1", user]) }
        let other = try Sandbox()
        try other.run(["create-sale", "s2", "--inventory", "7"])
        let restored = try other.dump()
        #expect(rename(other.database, box.database) == 0)
        if indexRemoved { #expect(unlink(box.database + "-shm") == 0) }
        let reader = whileAnotherHasItOpen ? try Connection(path: box.database, busyTimeout: .seconds(30)) : nil
        if reader == nil {
            let walLeft = try FileManager.default.attributesOfItem(atPath: box.database + "-wal")[.size] as? Int
            #expect(walLeft ?? 0 > 0)
        }
        #expect(follower.waitForExit() == .exit(73), "\(follower.stderr)")
        let wal = try FileManager.default.attributesOfItem(atPath: box.database + "-wal")[.size] as? Int
        #expect(wal == 0)
        #expect(try box.dump() == restored)
        #expect(try box.run(["verify"]).status == 0)
    }

    /// On PostgreSQL the schema is what the file is on SQLite: dropped, or dropped and made
    /// again, under a follower, the follower ends with 73 (found by probing: both waited on,
    /// silent, while every other command said there was no database).
    @Test(.enabled(if: TestPostgres.isConfigured, "FLASHSALE_TEST_PG is not set"),
          arguments: [["events", "--follow"], ["process", "s1", "--follow"]], [false, true])
    func aFollowerOfASchemaDroppedUnderItEndsWith73(_ command: [String], remade: Bool) throws {
        let schema = TestPostgres.newSchema()
        defer { TestPostgres.dropSchema(schema) }
        let url: String = try #require(TestPostgres.url(schema: schema))
        let box = try Sandbox(.postgres, url: url)
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try box.run(["submit", "s1", "alice"])
        let follower = try box.start(command)
        #expect(try follower.waitUntil {
            try follower.stdout.contains("sale_created") || box.run(["status", "s1", "--json"]).json()["held"] as? Int == 1
        }, "\(follower.stderr)")
        TestPostgres.dropSchema(schema)
        if remade { try box.run(["create-sale", "s1", "--inventory", "5"]) }
        #expect(follower.waitForExit() == .exit(73), "\(follower.stderr)")
        // Seen by the watcher's look at the schema, or by a step that ran after it went (a
        // notification of the follower's own last commit may wake it for one).
        #expect(follower.stderr.contains("schema \(schema) of postgresql://") && follower.stderr.contains("was dropped or replaced")
                || follower.stderr.contains("(SQLSTATE 42P01): a table of the schema is gone (the schema dropped while this command ran"),
                "\(follower.stderr)")
    }

    /// A database restored in place from an older backup (through SQLite, as
    /// `sqlite3 live.db ".restore old.db"` does: same name, same file) has a log that ends
    /// before the event its follower reached, or, written to since, another event under
    /// its seq; waiting for seqs past it would skip the events numbered again up to there.
    /// The follower ends with 73, whether or not the restored log was written to before it
    /// looked.
    @Test(arguments: [(["events", "--follow"], 0), (["events", "--follow"], 2), (["events", "--follow", "--sale", "s1"], 3)])
    func anEventsFollowerWhoseLogGoesBackEndsWith73(_ command: [String], booksAfterTheRestore: Int) throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let older = box.directory.appendingPathComponent("older.db").path
        try box.run(["backup", older])
        try box.run(["book", "s1", "alice"])
        let follower = try box.start(command)
        #expect(follower.waitUntil { follower.stdout.contains("\"held\"") }, "\(follower.stderr)")
        let live = try Connection(path: box.database, busyTimeout: .seconds(5))
        let source = try Connection(path: older, busyTimeout: .seconds(5))
        let restore = try #require(sqlite3_backup_init(live.handle, "main", source.handle, "main"))
        #expect(sqlite3_backup_step(restore, -1) == SQLITE_DONE)
        #expect(sqlite3_backup_finish(restore) == SQLITE_OK)
        for buyer in 0..<booksAfterTheRestore { try box.run(["book", "s1", "buyer\(buyer)"]) }
        #expect(follower.waitForExit() == .exit(73), "\(follower.stderr)")
        #expect(follower.stderr == "flashsale: the event log changed under the follower: event 2, the last it reached, is gone or "
                + "another (its database restored from an older backup?); follow it anew with --after the last event of that backup\n")
    }

    /// In WAL mode a reader waits for nobody but a process that rebuilds the WAL index
    /// (recovery, after a crash): what an events follower must survive all the same.
    @Test func eventsFollowWaitsOutAWALRecoveryAndPrintsAfterIt() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let follower = try box.start(["--busy-timeout", "100ms", "events", "--follow"])
        #expect(follower.waitUntil { follower.stdout.contains("sale_created") })
        let recovery = try WALRecovery(of: box.database)
        #expect(follower.waitForStderr(Self.waiting), "stderr: \(follower.stderr)")
        recovery.end()
        try box.run(["create-sale", "s2", "--inventory", "1"])
        #expect(follower.waitUntil { follower.stdout.contains("\"sale\":\"s2\"") })
        #expect(follower.waitForStderr(Self.waiting + Self.resumed), "stderr: \(follower.stderr)")
        #expect(follower.stop() == .exit(0))
    }
}

/// Looks to other processes like one recovering the database's WAL index: it holds the
/// index's write and recover locks, and the index header is torn (its two copies differ),
/// so a reader must wait for the recovery (SQLITE_BUSY_RECOVERY). Once the locks are
/// released, the next reader recovers the index itself. Offsets are those of SQLite's
/// wal-index format (wal.c): header copies at 0 and 48, locks from byte 120.
final class WALRecovery {
    private let descriptor: Int32

    init(of database: String) throws {
        descriptor = open(database + "-shm", O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw POSIXError(.ENOENT) }
        for byte in [120, 122] {  // WAL_WRITE_LOCK, WAL_RECOVER_LOCK
            var lock = flock(l_type: Int16(F_WRLCK), l_whence: Int16(SEEK_SET), l_start: off_t(byte), l_len: 1, l_pid: 0)
            guard fcntl(descriptor, F_SETLK, &lock) == 0 else { throw POSIXError(.EAGAIN) }
        }
        var version: UInt8 = 0
        guard pread(descriptor, &version, 1, 8) == 1 else { throw POSIXError(.EIO) }
        version ^= 0xFF
        guard pwrite(descriptor, &version, 1, 8) == 1 else { throw POSIXError(.EIO) }
    }

    /// Releases the locks (closing the file does).
    func end() {
        close(descriptor)
    }
}

extension Background {
    func waitForStderr(_ expected: String) -> Bool {
        waitUntil { stderr == expected }
    }
}
