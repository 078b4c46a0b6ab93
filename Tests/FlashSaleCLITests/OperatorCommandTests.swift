import Foundation
import Testing
@testable import FlashSaleCLI
import FlashSaleCore
import FlashSaleTestSupport
import FlashSaleStore

private let zshPath = installed("zsh")
private let fishPath = installed("fish")
private let stracePath = installed("strace")
#if arch(x86_64)
private let isX86_64 = true
#else
private let isX86_64 = false
#endif

/// Runs `executable arguments...` in `box` with `input` on stdin; returns the exit status
/// and what it printed (stdout, then stderr unless `withErrors` is false).
private func run(_ box: Sandbox, _ executable: String, _ arguments: [String], input: String = "",
                 environment: [String: String] = ["PATH": "/usr/bin:/bin"],
                 withErrors: Bool = true) throws -> (status: Int32, output: String) {
    let result = try box.execute(executable, arguments, environment: environment, input: input)
    return (result.status, result.stdout + (withErrors ? result.stderr : ""))
}

private func mode(of path: String) throws -> Int {
    try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
}

@Suite struct OperatorCommandTests {
    // MARK: - backup

    /// A shell loop books and enqueues as fast as it can; a backup taken in the middle of it
    /// is a database that verify accepts, holding some of the writes and not the later ones.
    @Test func backupDuringAWritersLoopIsConsistent() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "100000"], now: nil)
        // It writes until told to stop (the cap only bounds a test that died), so it is still
        // writing during the backup however slow the machine; it prints its rounds.
        let writer = try box.startShell("""
            i=0
            while [ ! -e stop ] && [ $i -lt 20000 ]; do
                "$FLASHSALE" --db "$DB" book s1 "u$i" --ip "203.0.113.$((i % 200))" >/dev/null || exit 1
                "$FLASHSALE" --db "$DB" submit s1 "q$i" >/dev/null || exit 1
                i=$((i + 1))
            done
            echo $i
            """, now: nil)
        func held() throws -> Int { try box.run(["status", "s1", "--json"], now: nil).json()["held"] as? Int ?? 0 }
        // Until the loop has written something.
        var heldBefore = 0
        #expect(try writer.waitUntil {
            heldBefore = try held()
            return heldBefore >= 20
        })
        let copy = box.directory.appendingPathComponent("copy.db").path
        let backup = try box.run(["backup", copy, "--json"], now: nil)
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(writer.child.isRunning, "the loop ended before the backup")

        let verified = try box.run(["--db", copy, "verify"], now: nil, database: false)
        #expect(verified.status == 0, "\(verified.stderr)")
        let copied = try box.run(["--db", copy, "status", "s1", "--json"], now: nil, database: false).json()
        let copiedHeld = try #require(copied["held"] as? Int)
        let copiedQueued = try #require(copied["queued"] as? Int)
        // Later writes, which the copy must not hold.
        #expect(try writer.waitUntil { try held() > copiedHeld })
        _ = try box.file("stop", "")
        let written = writer.result()
        #expect(written.status == 0, "\(written.stderr)")
        let rounds = try #require(Int(written.line))
        let final = try box.run(["status", "s1", "--json"], now: nil).json()
        #expect(copiedHeld >= heldBefore)
        #expect(copiedHeld < rounds && final["held"] as? Int == rounds && final["queued"] as? Int == rounds)
        // One snapshot: each round books, then enqueues, so the copy is at most one behind.
        #expect(copiedQueued == copiedHeld || copiedQueued == copiedHeld - 1)
        #expect(try box.run(["verify"], now: nil).status == 0)
    }

    /// Found by probing: `backup -` made a file named - in the working directory.
    @Test func backupToStandardOutputIsRefused() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "3"])
        let result = try box.spawn(["backup", "-"])
        #expect(result.status == 2)
        #expect(result.stderr == "flashsale: backup makes a file, not standard output: give ./- for a file named -\n")
        #expect(!FileManager.default.fileExists(atPath: box.directory.appendingPathComponent("-").path))
    }

    @Test func backupRefusesAnExistingFileAndLeavesItAlone() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "3"])
        let existing = try box.file("taken.db", "precious")
        let result = try box.run(["backup", existing])
        #expect(result.status == 4)
        #expect(result.stderr == "flashsale: \(existing) already exists; backup never overwrites a file: choose a new name\n")
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "precious")
        let json = try box.run(["--json", "backup", existing]).json()
        #expect((json["error"] as? [String: Any])?["code"] as? String == "conflict")
        // Nor onto the database itself, whose live -wal is not called a leftover to remove.
        let itself = try box.run(["backup", box.database])
        #expect(itself.status == 4)
        #expect(itself.stderr == "flashsale: \(box.database) already exists; backup never overwrites a file: choose a new name\n")
        // A journal left by an earlier database of that name would be replayed into the copy.
        let stale = box.directory.appendingPathComponent("stale.db").path
        _ = try box.file("stale.db-wal", "old")
        #expect(try box.run(["backup", stale]).status == 4)
        #expect(!FileManager.default.fileExists(atPath: stale))
        // Found by probing: a copy named as a database's journal was removed when the
        // database was next opened. Refused, for any database's; the source's own -wal and
        // -shm too, which the backup's connection makes (they were said to exist already).
        let other = try box.file("other.db", "")
        for (database, suffix) in [(box.database, "-journal"), (box.database, "-wal"), (box.database, "-shm"), (other, "-wal"),
                                   (other, "-shm")] {
            let sidecar = try box.run(["backup", database + suffix])
            #expect(sidecar.status == 4)
            #expect(sidecar.stderr == "flashsale: \(database)\(suffix) would be taken for the \(suffix.dropFirst()) file of "
                    + "\(database), and removed when that is opened: choose another name\n")
        }
        #expect(try box.run(["backup", box.directory.appendingPathComponent("none.db-journal").path]).status == 0)
    }

    /// Found by probing: a backup's name of 240 to 251 bytes failed, "File name too long",
    /// for the temporary name beside it; one of 252 to 255 was made and could not be
    /// opened, its -wal too long a name. The first are taken, the second refused.
    @Test func aBackupNameOfUpTo251BytesIsTakenAndALongerOneRefused() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "3"])
        let path = box.directory.appendingPathComponent(String(repeating: "z", count: 251)).path
        let result = try box.run(["backup", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try box.run(["--db", path, "verify"], database: false).status == 0)
        let longer = box.directory.appendingPathComponent(String(repeating: "y", count: 252)).path
        let refused = try box.run(["backup", longer])
        #expect(refused.status == 2)
        #expect(refused.stderr == "flashsale: a backup's file name takes at most 251 bytes, room for the -wal and -shm SQLite opens "
                + "beside it; this one has 252\n")
        #expect(!FileManager.default.fileExists(atPath: longer))
    }

    /// Found by probing: a new database's name of 248 to 255 bytes failed "unable to open
    /// database file", SQLite's -journal beside it too long a name, and left an empty file
    /// that later commands took for a database never made. Refused before anything is made.
    @Test(arguments: [["init"], ["create-sale", "s1", "--inventory", "3"]])
    func aNewDatabaseNameOfUpTo247BytesIsTakenAndALongerOneRefused(command: [String]) throws {
        let box = try Sandbox()
        let path = box.directory.appendingPathComponent(String(repeating: "z", count: 247)).path
        #expect(try box.run(["--db", path] + command, database: false).status == 0)
        #expect(try box.run(["--db", path, "verify"], database: false).status == 0)
        let longer = box.directory.appendingPathComponent(String(repeating: "y", count: 248)).path
        let refused = try box.run(["--db", longer] + command, database: false)
        #expect(refused.status == 2)
        #expect(refused.stderr == "flashsale: a new database's file name takes at most 247 bytes, room for the -journal "
                + "SQLite makes beside it; this one has 248\n")
        #expect(!FileManager.default.fileExists(atPath: longer))
    }

    /// Found by probing: so did a short name deep in directories, the whole path past
    /// SQLite's 512 bytes with its -journal.
    @Test func aNewDatabasePathOfMoreThan504BytesIsRefused() throws {
        let box = try Sandbox()
        var directory = box.directory
        while directory.path.utf8.count < 440 { directory.appendPathComponent(String(repeating: "d", count: 60)) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent(String(repeating: "h", count: 503 - directory.path.utf8.count)).path
        #expect(try box.run(["--db", path, "init"], database: false).status == 0)
        let longer = path + "x"
        let refused = try box.run(["--db", longer, "init"], database: false)
        #expect(refused.status == 2)
        #expect(refused.stderr == "flashsale: a new database's path takes at most 504 bytes from the root, room for the -journal "
                + "SQLite makes beside it; this one has 505\n")
        #expect(!FileManager.default.fileExists(atPath: longer))
        // A short name there: the temporary file it is made under needs 7 bytes (found by
        // probing: a longer one failed, "unable to open database file").
        let deeper = directory.appendingPathComponent(String(repeating: "e", count: 495 - directory.path.utf8.count))
        try FileManager.default.createDirectory(at: deeper, withIntermediateDirectories: true)
        let short = deeper.appendingPathComponent("a.db").path
        #expect(short.utf8.count == 501)
        #expect(try box.run(["--db", short, "init"], database: false).status == 0)
        let evenDeeper = deeper.appendingPathComponent("f")
        try FileManager.default.createDirectory(at: evenDeeper, withIntermediateDirectories: true)
        let tooDeep = try box.run(["--db", evenDeeper.appendingPathComponent("a.db").path, "init"], database: false)
        #expect(tooDeep.status == 2)
        #expect(tooDeep.stderr == "flashsale: a new database's directory takes at most 496 bytes from the root, room for the "
                + "temporary file it is made under; this one has 498\n")
        // Nor is a backup made that no command could open.
        let copy = try box.run(["--db", short, "backup", evenDeeper.appendingPathComponent("copy.db").path], database: false)
        #expect(copy.status == 2)
        #expect(copy.stderr == "flashsale: a backup's path takes at most 504 bytes from the root, the longest SQLite opens; "
                + "this one has 506\n")
        // A database moved there (cp, mv) cannot be opened, and is said to be too deep
        // (found by probing: "unable to open database file", nothing said of the length).
        let moved = evenDeeper.appendingPathComponent("copy.db").path
        try FileManager.default.copyItem(atPath: short, toPath: moved)
        let opened = try box.run(["--db", moved, "sales"], database: false)
        #expect(opened.status == 73)
        #expect(opened.stderr.hasPrefix("flashsale: cannot use the database: its path takes 506 bytes from the root, more than "
                                        + "the 504 SQLite opens; move it nearer the root"), "\(opened.stderr)")
        // So is one reached through a short symbolic link.
        let link = box.directory.appendingPathComponent("link.db").path
        #expect(symlink(moved, link) == 0)
        #expect(try box.run(["--db", link, "sales"], database: false).stderr.contains("its path takes 506 bytes from the root"))
    }

    @Test func backupIsOwnerOnlyAndSaysWhatItWrote() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "3"])
        let path = box.directory.appendingPathComponent("b.db").path
        let result = try box.run(["backup", path])
        #expect(result.status == 0)
        let count = result.line.split(separator: "(").last?.split(separator: " ").first.map(String.init) ?? ""
        let pages = try #require(Int(count))
        #expect(result.line == "backed up to \(path) (\(pages) pages)")
        #expect(try mode(of: path) == 0o600)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == pages * 4096)
        let json = try box.run(["backup", path + "2", "--json"])
        #expect(keyOrder(json.stdout) == ["backup", "pages"])
        #expect(try json.json()["pages"] as? Int == pages)
        #expect(try box.run(["--db", path, "status", "s1", "--json"], database: false).json()["total"] as? Int == 3)
    }

    /// A backup killed in the middle of its copy leaves nothing under the name it was given
    /// (where verify would have called a half copy "ok"), only a temporary name beside it;
    /// the same backup then succeeds.
    @Test func aKilledBackupLeavesNothingUnderItsName() throws {
        let box = try Sandbox()
        let (backup, directory, copy) = try startBackupOfABigDatabase(in: box)
        kill(backup.processIdentifier, SIGKILL)
        backup.waitUntilExit()
        #expect(backup.terminationReason == .uncaughtSignal, "the backup finished before the kill: make the database bigger")

        #expect(!FileManager.default.fileExists(atPath: copy))
        let left = try FileManager.default.contentsOfDirectory(atPath: directory)
        // One file, no journal beside it.
        #expect(left.count == 1 && left.allSatisfy { $0.hasPrefix(".copy.db.partial-") && $0.count == 23 }, "\(left)")
        for name in left {
            #expect(try mode(of: directory + "/" + name) == 0o600)
        }
        #expect(try box.run(["backup", copy]).status == 0)
        #expect(try box.run(["--db", copy, "verify"], database: false).stdout == "ok\n")
    }

    /// Interrupted, a backup removes its temporary file too: an operator's Ctrl-C leaves
    /// nothing to clean up.
    @Test(arguments: [SIGINT, SIGTERM])
    func anInterruptedBackupLeavesNothing(signal: Int32) throws {
        let box = try Sandbox()
        let (backup, directory, copy) = try startBackupOfABigDatabase(in: box, errors: Pipe())
        kill(backup.processIdentifier, signal)
        backup.waitUntilExit()
        let stderr = (backup.standardError as? Pipe)?.fileHandleForReading.readDataToEndOfFile() ?? Data()
        #expect(backup.terminationStatus == 130, "the backup finished before the signal: make the database bigger")
        #expect(String(decoding: stderr, as: UTF8.self) == "flashsale: backup interrupted; its partial copy is removed\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
        #expect(try box.run(["backup", copy]).status == 0)
    }

    /// Found by probing: a stop signal that came as the finished copy took its name was
    /// taken for one during the copy, the file removed from its temporary name (it stayed
    /// whole under its own) and the backup said "its partial copy is removed", 130. Once
    /// whole, a copy is too late to stop: the backup ends as it would have. The moment is
    /// made 6 s long by strace, which holds back the renameat2(2) that names the copy.
    @Test(.enabled(if: stracePath != nil && isX86_64, "needs strace, and x86-64's system call numbers"))
    func aStopSignalAsTheCopyTakesItsNameIsTooLate() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "3"])
        let directory = box.directory.appendingPathComponent("backups").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let copy = directory + "/copy.db"
        let tracer = try Background(box, try #require(stracePath),
                                    ["-f", "-qq", "-o", "/dev/null", "-e", "trace=renameat2", "-e", "inject=renameat2:delay_enter=6000000",
                                     flashsaleBinary, "--db", box.database, "backup", copy],
                                    environment: ["PATH": "/usr/bin:/bin"])
        // Signalled once its main thread is held in renameat2(2) (x86-64's system call 316).
        let ended = try Self.stopOnceHeld(in: (316, "renameat2"), tracedBy: tracer)
        #expect(ended.termination == .exit(0), "\(ended.stderr)")
        #expect(ended.stdout.hasPrefix("backed up to \(copy) ("), "\(ended.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["copy.db"])
        #expect(try box.run(["--db", copy, "verify"], database: false).stdout == "ok\n")
    }

    /// Found by probing: `rehearse --db NEW` stopped while it made the new database ended
    /// from its signal thread, and left the temporary files (`.NEW.partial-XXXXXX` and its
    /// -wal and -shm). The signal waits for the milliseconds the database takes to make, as
    /// `init`'s does. The moment is made 6 s long by strace, which holds back the
    /// renameat2(2) that names the database.
    @Test(.enabled(if: stracePath != nil && isX86_64, "needs strace, and x86-64's system call numbers"))
    func aRehearsalStoppedAsItMakesItsDatabaseLeavesNoTemporaryFile() throws {
        let box = try Sandbox()
        let directory = box.directory.appendingPathComponent("rehearsal").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let tracer = try Background(box, try #require(stracePath),
                                    ["-f", "-qq", "-o", "/dev/null", "-e", "trace=renameat2", "-e", "inject=renameat2:delay_enter=6000000",
                                     flashsaleBinary, "--db", directory + "/r.db", "rehearse", "--buyers", "100"],
                                    environment: ["PATH": "/usr/bin:/bin", "TMPDIR": box.directory.path])
        let ended = try Self.stopOnceHeld(in: (316, "renameat2"), tracedBy: tracer)
        #expect(ended.termination == .exit(130), "\(ended.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(left.allSatisfy { !$0.contains("partial") }, "\(left)")
    }

    /// Found by probing: a stop signal that came after a backup had failed (a full disk),
    /// while it was ending, was taken for one during the copy: a second line, "its partial
    /// copy is removed", after the failure's, and exit 130. The failure is the answer. The
    /// moment is made 6 s long by strace, which holds back the exit_group(2) that ends the
    /// failed backup; its copy fails at `ulimit -f`.
    @Test(.enabled(if: stracePath != nil && isX86_64, "needs strace, and x86-64's system call numbers"))
    func aStopSignalAfterABackupFailedAddsNothing() throws {
        let box = try Sandbox()
        let directory = try Self.databaseToBackUp(in: box, events: 1_000)
        let strace = try #require(stracePath)
        let tracer = try Background(box, "/bin/sh", ["-c", """
            ulimit -f 64; exec \(strace) -f -qq -o /dev/null -e trace=exit_group -e inject=exit_group:delay_enter=6000000 \
                \(flashsaleBinary) --db \(box.database) backup \(directory)/copy.db
            """], environment: ["PATH": "/usr/bin:/bin"])
        // Signalled once its main thread is held in exit_group(2) (x86-64's system call 231).
        let ended = try Self.stopOnceHeld(in: (231, "exit_group"), tracedBy: tracer)
        #expect(ended.termination == .exit(74), "\(ended.stderr)")
        #expect(ended.stderr.hasPrefix("flashsale: ") && ended.stderr.filter { $0 == "\n" }.count == 1
                && !ended.stderr.contains("interrupted"), "\(ended.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    /// Sends SIGTERM to the backup `tracer` (strace) runs once its main thread is held in
    /// the system `call` (x86-64's number, and name); what the tracer then ended with.
    private static func stopOnceHeld(in call: (number: Int, name: String), tracedBy tracer: Background) throws -> Result {
        var backup: pid_t?
        let held = tracer.waitUntil(within: 30) {
            backup = backup ?? flashsale(childOf: tracer.child.pid)
            return backup.flatMap { try? String(contentsOfFile: "/proc/\($0)/syscall", encoding: .utf8) }?
                .hasPrefix("\(call.number) ") == true
        }
        let pid = try #require(backup, "strace started no flashsale: \(tracer.stderr)")
        #expect(held, "the backup was never seen in \(call.name)(2)")
        kill(pid, SIGTERM)
        return tracer.result()
    }

    /// The pid of a `flashsale` whose parent is `parent`, if there is one. The name matters:
    /// strace forks short-lived children of its own to test the kernel before it starts the
    /// traced command, and taking one of those for the backup made the wait miss it.
    private static func flashsale(childOf parent: pid_t) -> pid_t? {
        ProcessStatus.all().first { $0.parent == parent && $0.name == "flashsale" }?.pid
    }

    /// Found by probing: a backup stopped while it waited to open the database (another
    /// process held it) died by the signal, 143, saying nothing. It says it wrote nothing,
    /// 130, and with --json prints the error object.
    @Test func aBackupStoppedWhileItWaitsToOpenSaysSo() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "3"])
        // Exclusive locking mode keeps every other connection from even reading.
        let holder = try Connection(path: box.database, busyTimeout: .seconds(5))
        try holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        try holder.execute("BEGIN IMMEDIATE")
        try holder.execute("COMMIT")
        let copy = box.directory.appendingPathComponent("b.db").path
        let backup = try box.start(["--json", "--busy-timeout", "60s", "backup", copy])
        let waiting = backup.waitUntil { backup.hasOpen(box.database) }
        #expect(waiting, "the backup never opened the database: \(backup.stderr)")
        #expect(backup.stop(SIGTERM) == .exit(130), "\(backup.stderr)")
        #expect(backup.stderr == "flashsale: backup interrupted; nothing was written\n")
        #expect(backup.stdout == "{\"error\":{\"code\":\"interrupted\",\"message\":\"backup interrupted; nothing was written\"}}\n")
        #expect(!FileManager.default.fileExists(atPath: copy))
        withExtendedLifetime(holder) {}
    }

    /// A sale padded with `events` events of 1 KB each, and an empty directory for its
    /// backups (returned).
    private static func databaseToBackUp(in box: Sandbox, events: Int) throws -> String {
        try box.run(["create-sale", "s1", "--inventory", "1"])
        try FlashSaleStoreBackdoor.execute(box.database, """
            INSERT INTO event (at, sale, kind, detail)
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(events))
            SELECT 0, 's1', 'padding', hex(randomblob(500)) FROM n
            """)
        let directory = box.directory.appendingPathComponent("backups").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        return directory
    }

    /// A backup of a database of about 32 MB, so that its copy is still going when the test
    /// acts, into an empty directory of its own; returned once the temporary file is there.
    private func startBackupOfABigDatabase(in box: Sandbox, errors: Pipe? = nil) throws -> (Process, directory: String, copy: String) {
        let directory = try Self.databaseToBackUp(in: box, events: 32_768)
        let backup = Process()
        backup.executableURL = URL(fileURLWithPath: flashsaleBinary)
        backup.arguments = ["--db", box.database, "backup", directory + "/copy.db"]
        backup.standardOutput = FileHandle.nullDevice
        backup.standardError = errors ?? FileHandle.nullDevice
        try backup.run()
        while backup.isRunning, try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty {
            usleep(100)
        }
        return (backup, directory, directory + "/copy.db")
    }

    /// The copy is whole on its own: no -wal or -shm beside it, nor a temporary file.
    @Test func aBackupIsOneFile() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "3"])
        let directory = box.directory.appendingPathComponent("backups")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        #expect(try box.run(["backup", directory.appendingPathComponent("b.db").path]).status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["b.db"])
    }

    @Test func backupIntoAMissingDirectoryCannotOpen() throws {
        let box = try Sandbox()
        try box.run(["init"])
        let path = box.directory.appendingPathComponent("no/such/dir/b.db").path
        let result = try box.run(["backup", path])
        #expect(result.status == 73)
        #expect(result.stderr == "flashsale: cannot create the backup \(path): No such file or directory\n")
    }

    // MARK: - completions

    /// Every command, and every option in each spelling, appears in each shell's script.
    @Test(arguments: CompletionsCommand.Shell.allCases)
    func completionsNameEveryCommandAndOption(_ shell: CompletionsCommand.Shell) throws {
        let box = try Sandbox()
        let result = try box.run(["completions", shell.rawValue], database: false)
        #expect(result.status == 0)
        let script = result.stdout
        // fish names options without their dashes: `-s q -l quiet`.
        func spelled(_ option: OptionSpec) -> [String] {
            guard shell == .fish else { return [option.name] + (option.short.map { [$0] } ?? []) }
            return ["-l \(option.name.dropFirst(2))"] + (option.short.map { ["-s \($0.dropFirst())"] } ?? [])
        }
        for option in GlobalOptions.all {
            for spelling in spelled(option) { #expect(script.contains(spelling), "\(shell): global \(spelling)") }
        }
        for command in CommandTable.all {
            #expect(script.contains(command.name), "\(shell): command \(command.name)")
            let section = shell == .fish ? "__flashsale_using_command \(command.name)\"" : "\(command.name))"
            #expect(command.options.isEmpty || script.contains(section), "\(shell): no section for \(command.name)")
            for option in command.options {
                for spelling in spelled(option) { #expect(script.contains(spelling), "\(shell): \(command.name) \(spelling)") }
            }
        }
    }

    /// The scripts offer fixed sets by the placeholder an option's value has (`S`, `FORMAT`):
    /// each option's help must name every value offered, or the mapping has drifted.
    @Test func offeredValuesAreTheOnesTheHelpNames() {
        for command in CommandTable.all {
            for option in command.options {
                guard let value = option.value, case .words(let words) = CompletionsCommand.values(of: value) else { continue }
                for word in words {
                    #expect(option.help.contains(word), "\(command.name) \(option.name) offers \(word), which its help does not name")
                }
            }
        }
    }

    @Test func theBashScriptParses() throws {
        let box = try Sandbox()
        let script = try box.run(["completions", "bash"], database: false).stdout
        let check = try run(box, "/bin/bash", ["-n"], input: script)
        #expect(check.status == 0, "\(check.output)")
    }

    /// What the bash script at `script` offers for `words` (the one at `cursor` being
    /// completed, the last by default), as Tab would.
    /// `typed`: the line as typed, and where the cursor is in it (COMP_LINE, COMP_POINT).
    private func bashOffers(_ words: [String], cursor: Int? = nil, typed: (line: String, point: Int)? = nil,
                            script: String, in box: Sandbox) throws -> [String] {
        let line = words.map { "'\($0)'" }.joined(separator: " ")
        let typing = typed.map { "COMP_LINE='\($0.line)'; COMP_POINT=\($0.point)" } ?? ""
        let result = try run(box, "/bin/bash", ["-c", """
            cd '\(box.directory.path)'
            source '\(script)'
            \(typing)
            COMP_WORDS=(\(line)); COMP_CWORD=\(cursor ?? words.count - 1)
            _flashsale; printf '%s\\n' "${COMPREPLY[@]}"
            """])
        return result.output.split(separator: "\n").map(String.init)
    }

    /// Loads the script in bash and asks it what it offers, as Tab would.
    @Test func theBashScriptCompletesCommandsOptionsAndValues() throws {
        let box = try Sandbox()
        let script = try box.file("flashsale.bash", try box.run(["completions", "bash"], database: false).stdout)
        func offered(_ words: String...) throws -> [String] { try bashOffers(words, script: script, in: box) }
        #expect(try offered("flashsale", "sus") == ["suspects"])
        #expect(try offered("flashsale", "--db", "x.db", "ba") == ["backup"])
        #expect(try offered("flashsale", "export", "s1", "--format", "") == ["csv", "ndjson"])
        #expect(try offered("flashsale", "bookings", "s1", "--status", "b") == ["booked"])
        #expect(try offered("flashsale", "block", "") == ["ip", "user", "agent"])
        #expect(try offered("flashsale", "completions", "") == ["bash", "zsh", "fish"])
        #expect(try offered("flashsale", "suspects", "s1", "--l") == ["--limit"])
        #expect(try offered("flashsale", "backup", "flashsale.b") == ["flashsale.bash"])
        #expect(try offered("flashsale", "status", "s1", "--js") == ["--json"])
        #expect(try offered("flashsale", "rehearse", "--via", "") == ["stream", "queue", "http"])
        // --db is a path or a URL: file names, not the words PATH and URL.
        #expect(try offered("flashsale", "--db", "flashsale.b") == ["flashsale.bash"])
        // An option given already is not offered again (the parser would refuse it), in
        // any spelling, nor a global one after the command.
        #expect(try offered("flashsale", "events", "--follow", "--f") == [])
        #expect(try offered("flashsale", "events", "--sale=s1", "--s") == [])
        #expect(try offered("flashsale", "-q", "events", "--q") == [])
        #expect(try offered("flashsale", "--json", "events", "--j") == [])
    }

    /// Found by probing: bash splits `--opt=value` at the '=' into three words, and the
    /// script took the value for the command, and offered nothing for a value after '='.
    /// The words here are the ones bash gives. After `--` every word is an argument.
    @Test func theBashScriptReadsOptionEqualsValueAsBashSplitsIt() throws {
        let box = try Sandbox()
        let script = try box.file("flashsale.bash", try box.run(["completions", "bash"], database: false).stdout)
        func offered(_ words: String...) throws -> [String] { try bashOffers(words, script: script, in: box) }
        #expect(try offered("flashsale", "--db", "=", "a.db", "sta") == ["status"])
        #expect(try offered("flashsale", "--db", "=", "a.db", "export", "s1", "--st") == ["--status"])
        #expect(try offered("flashsale", "export", "s1", "--format", "=") == ["csv", "ndjson"])
        #expect(try offered("flashsale", "export", "s1", "--status", "=", "he") == ["held"])
        #expect(try offered("flashsale", "--db", "=", "flashsale.b") == ["flashsale.bash"])
        #expect(try offered("flashsale", "events", "--sale", "=", "s1", "--s") == [])
        #expect(try offered("flashsale", "book", "s1", "--", "-") == [])
        #expect(try offered("flashsale", "block", "--", "") == ["ip", "user", "agent"])
        // From the review: after `--` no option's value either; and an '=' after the word
        // being completed is not its own.
        #expect(try offered("flashsale", "block", "--", "--db", "flashsale.b") == [])
        #expect(try offered("flashsale", "book", "s1", "--", "--format", "=") == [])
        #expect(try bashOffers(["flashsale", "--d", "=", "a.db", "sales"], cursor: 1, script: script, in: box) == ["--db"])
        // From the probe: with the cursor just before the '=', bash names the '=' as the word
        // being completed; only what is before the cursor is completed, an option here.
        #expect(try bashOffers(["flashsale", "--db", "=", "a.db", "sales"], cursor: 2,
                               typed: ("flashsale --db=a.db sales", 14), script: script, in: box) == ["--db"])
        #expect(try bashOffers(["flashsale", "export", "s1", "--status", "=", "held"],
                               typed: ("flashsale export s1 --status=held", 31), script: script, in: box) == ["held"])
    }

    /// serve's values complete as the others' do: file names for its files, its two schemes
    /// for --auth. A repeatable option is offered again once given: in bash by its list, in
    /// zsh because its `_arguments` spec starts with `*` (fish offers every option every time).
    @Test func serveOptionsCompleteAndRepeatableOnesAreOfferedAgain() throws {
        let box = try Sandbox()
        let script = try box.file("flashsale.bash", try box.run(["completions", "bash"], database: false).stdout)
        func offered(_ words: String...) throws -> [String] { try bashOffers(words, script: script, in: box) }
        #expect(try offered("flashsale", "serve", "--auth", "") == ["jwt", "header"])
        #expect(try offered("flashsale", "serve", "--auth", "jwt", "--jwt-key", "flashsale.b") == ["flashsale.bash"])
        #expect(try offered("flashsale", "serve", "--socket", "flashsale.b") == ["flashsale.bash"])
        #expect(try offered("flashsale", "serve", "--listen", "127.0.0.1:1", "--li") == ["--listen"])

        let zsh = try box.run(["completions", "zsh"], database: false).stdout
        let repeatable = CommandTable.all.flatMap(\.options).filter(\.isRepeatable)
        #expect(!repeatable.isEmpty)
        for option in repeatable {
            #expect(zsh.contains("'*\(option.name)=["), "zsh: \(option.name) is offered once only")
        }
        #expect(zsh.contains("'--auth=[") && !zsh.contains("'*--auth"))
        // A colon in a value's name would end zsh's message there: `PORT` would run as the action.
        #expect(zsh.contains(#":HOST\:PORT:"#) && !zsh.contains(":HOST:PORT:"))
    }

    @Test(.enabled(if: zshPath != nil, "zsh is not installed"))
    func theZshScriptParses() throws {
        let box = try Sandbox()
        let script = try box.run(["completions", "zsh"], database: false).stdout
        let check = try run(box, try #require(zshPath), ["-n"], input: script)
        #expect(check.status == 0, "\(check.output)")
    }

    /// Found by probing: after the command, zsh offered the global options already given
    /// before it (`--db`, which the parser then refuses as given twice), and options after
    /// `--`, where every word is an argument. Its specs for `book`, with `--json` and `-q`
    /// given before the command, read through stand-ins for `_arguments` and `compdef`.
    @Test(.enabled(if: zshPath != nil, "zsh is not installed"))
    func zshOffersNoGlobalOptionGivenAlreadyNorOptionsAfterDashDash() throws {
        let box = try Sandbox()
        let script = try box.file("_flashsale", try box.run(["completions", "zsh"], database: false).stdout)
        let harness = """
            compdef() { : }
            _describe() { : }
            typeset -A opt_args
            integer calls=0
            _arguments() {
                (( calls++ ))
                if (( calls == 1 )); then
                    state=argument words=(book s1 --) opt_args=(--json '' -q '')
                    return 1
                fi
                print -rl -- "$@"
            }
            source \(script)
            _flashsale
            """
        let specs = try run(box, try #require(zshPath), ["-f", "-c", harness]).output.split(separator: "\n").map(String.init)
        #expect(specs.starts(with: ["-s", "-S"]), "\(specs)")
        #expect(specs.contains { $0.hasPrefix("--db=[") } && specs.contains { $0.hasPrefix("--ip=[") }, "\(specs)")
        #expect(!specs.contains { $0.hasPrefix("--json") || $0.contains("--quiet") }, "\(specs)")
    }

    @Test(.enabled(if: fishPath != nil, "fish is not installed"))
    func theFishScriptParsesAndCompletes() throws {
        let box = try Sandbox()
        let script = try box.file("flashsale.fish", try box.run(["completions", "fish"], database: false).stdout)
        let fish = try #require(fishPath)
        #expect(try run(box, fish, ["-n", script]).status == 0)
        let offered = try run(box, fish, ["-c", "source '\(script)'; complete -C 'flashsale export s1 --format '"], environment: ["PATH": "/usr/bin:/bin", "HOME": box.directory.path], withErrors: false)
        #expect(offered.output.split(separator: "\n").map { String($0.split(separator: "\t").first ?? "") } == ["csv", "ndjson"])
        // The command is the first word that is no option, nor --db's value: a sale named
        // book, or `help book`, is no `book` (found by probing: book's options were offered).
        for line in ["flashsale help book --", "flashsale status book --", "flashsale --db book status s1 --"] {
            let options = try run(box, fish, ["-c", "source '\(script)'; complete -C '\(line)'"],
                                  environment: ["PATH": "/usr/bin:/bin", "HOME": box.directory.path], withErrors: false)
            #expect(!options.output.contains("--ip") && !options.output.contains("--stream"), "\(line): \(options.output)")
        }
        let bookOptions = try run(box, fish, ["-c", "source '\(script)'; complete -C 'flashsale --db x.db book s1 u1 --'"],
                                  environment: ["PATH": "/usr/bin:/bin", "HOME": box.directory.path], withErrors: false)
        #expect(bookOptions.output.contains("--ip"), "\(bookOptions.output)")
        // Found by probing: before a command is typed, each of the commands' conditions ran
        // `test` with an argument missing, and fish printed its error on every TAB.
        for line in ["flashsale ", "flashsale --db a.db "] {
            let commands = try box.execute(fish, ["-c", "source '\(script)'; complete -C '\(line)'"],
                                           environment: ["PATH": "/usr/bin:/bin", "HOME": box.directory.path], input: "")
            #expect(commands.stderr == "", "\(line): \(commands.stderr)")
            #expect(commands.stdout.split(separator: "\n").contains { $0.hasPrefix("book\t") }, "\(line): \(commands.stdout)")
        }
    }

    @Test func completionsRefuseAnUnknownShell() throws {
        let result = try Sandbox().run(["completions", "tcsh"], database: false)
        #expect(result.status == 2)
        #expect(result.stderr == "flashsale: SHELL must be bash, zsh or fish, not 'tcsh'\n")
    }

    // MARK: - suspects

    /// Normal buyers (one each, own address, a browser) and a farm: 25 users on one IPv6
    /// /64 with python-requests, all at once.
    private func seededSale(_ store: TestStore) throws -> Sandbox {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "1000", "--per-user", "5"])
        let people = (0..<30).map { n in
            #"{"user":"person\#(n)","ip":"198.51.100.\#(n)","user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"}"#
        }
        #expect(try box.run(["book", "s1", "--stream"], input: people.joined(separator: "\n") + "\n").status == 0)
        let bots = (1...25).map { n in
            #"{"user":"bot\#(n)","ip":"2001:db8:1:2::\#(String(n, radix: 16))","user_agent":"python-requests/2.31"}"#
        }
        let file = try box.file("bots.ndjson", bots.joined(separator: "\n") + "\n")
        #expect(try box.run(["submit", "s1", "--file", file]).status == 0)
        #expect(try box.run(["process"]).status == 0)
        return box
    }

    @Test(arguments: commandLineStores)
    func suspectsRankTheFarmAboveNormalTraffic(store: TestStore) throws {
        let box = try seededSale(store)
        let result = try box.run(["suspects", "s1"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("score  kind     value") == true)
        #expect(lines.count == 5)
        #expect(lines[1].hasPrefix("66     network  2001:db8:1:2::/64     25 distinct users; 25 requests within 10 s; agent looks like a script (python-requests)"))
        #expect(lines[2].hasPrefix("       flashsale block ip 2001:db8:1:2::/64 --sale s1 --reason 'suspects: 25 distinct users' --db "))
        #expect(lines[3].hasPrefix("66     agent    python-requests/2.31  agent looks like a script (python-requests); 25 distinct users; 25 requests within 10 s"))
        #expect(lines[4].contains("flashsale block agent python-requests/2.31 --sale s1"))
        #expect(!result.stdout.contains("198.51.100.") && !result.stdout.contains("person"))
    }

    /// Found by probing: a suspect already blocked was given a block line to paste, which
    /// would change nothing. The block that covers it is named instead, and in the JSON's
    /// "blocked"; a block of one address of a /64, or of another sale, covers nothing.
    @Test(arguments: commandLineStores)
    func aSuspectAlreadyBlockedIsSaidToBe(store: TestStore) throws {
        let box = try seededSale(store)
        try box.run(["create-sale", "s2", "--inventory", "1"])
        func blocked() throws -> [String?] {
            try box.run(["suspects", "s1", "--json"]).jsonArray().map { $0["blocked"] as? String }
        }
        for block in [["ip", "2001:db8:1:2::1"], ["agent", "python-requests/2.31", "--sale", "s2"]] {
            #expect(try box.run(["block"] + block).status == 0)
        }
        #expect(try blocked() == [nil, nil])
        for block in [["ip", "2001:db8::/32"], ["agent", "requests/", "--contains", "--sale", "s1"]] {
            #expect(try box.run(["block"] + block).status == 0)
        }
        #expect(try blocked() == ["ip 2001:db8::/32 in every sale", "agent containing requests/ in sale s1"])
        let lines = try box.run(["suspects", "s1"]).stdout.split(separator: "\n")
        #expect(lines.count == 5 && lines[2] == "       already blocked: ip 2001:db8::/32 in every sale"
                && lines[4] == "       already blocked: agent containing requests/ in sale s1", "\(lines)")
    }

    /// The block line reaches the database the report read. Found by probing: run on
    /// ./flashsale.db with $FLASHSALE_DB set, it had no --db, and pasted in that shell went
    /// to $FLASHSALE_DB's database.
    @Test func aSuspectsBlockLineNamesTheDefaultDatabaseWhenFlashsaleDBIsSet() throws {
        let box = try seededSale(.sqlite)
        let named = box.directory.appendingPathComponent("flashsale.db").path
        try FileManager.default.moveItem(atPath: box.database, toPath: named)
        let elsewhere = box.directory.appendingPathComponent("other.db").path
        func blockLine(_ environment: [String: String], database: String = "flashsale.db") throws -> String? {
            let result = try box.spawn(["--db", database, "suspects", "s1", "--json", "--limit", "1"], database: false,
                                       environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
            return try result.jsonArray().first?["block"] as? String
        }
        #expect(try blockLine(["FLASHSALE_DB": elsewhere])?.hasSuffix(" --db flashsale.db") == true)
        #expect(try blockLine([:])?.contains("--db") == false)
        // Found by probing: `./flashsale.db` is the default file too.
        #expect(try blockLine([:], database: "./flashsale.db")?.contains("--db") == false)
    }

    @Test(arguments: commandLineStores)
    func suspectsJSONHasTheSameRows(store: TestStore) throws {
        let box = try seededSale(store)
        let result = try box.run(["suspects", "s1", "--json", "--limit", "1"])
        #expect(keyOrder(result.stdout) == ["kind", "value", "score", "reasons", "block", "blocked"])
        let rows = try result.jsonArray()
        #expect(rows.count == 1)
        #expect(rows.first?["kind"] as? String == "network")
        #expect(rows.first?["value"] as? String == "2001:db8:1:2::/64")
        #expect(rows.first?["score"] as? Int == 66)
        #expect(rows.first?["reasons"] as? [String] == ["25 distinct users", "25 requests within 10 s", "agent looks like a script (python-requests)"])
        #expect((rows.first?["block"] as? String)?.hasPrefix("flashsale block ip 2001:db8:1:2::/64 --sale s1 --reason ") == true)
        let empty = try Sandbox(store)
        try empty.run(["create-sale", "s2", "--inventory", "1"])
        #expect(try empty.run(["suspects", "s2", "--json"]).stdout == "[]\n")
        #expect(try empty.run(["suspects", "s2"]).stdout == "no suspects in sale s2\n")
    }

    /// Six users trying a sold-out sale from one address, each once, each declined: no
    /// booking or request is left, too few attempts for a burst or a decline count, but
    /// the address's counters name six users.
    @Test(arguments: commandLineStores)
    func usersBehindDeclinedAttemptsAreCounted(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "0"])
        for n in 1...6 {
            #expect(try box.run(["book", "s1", "farm\(n)", "--ip", "203.0.113.7"]).status == 6)
        }
        #expect(try box.run(["book", "s1", "alone", "--ip", "198.51.100.1"]).status == 6)
        let rows = try box.run(["suspects", "s1", "--json"]).jsonArray()
        #expect(rows.map { $0["value"] as? String } == ["203.0.113.7"])
        #expect(rows.first?["reasons"] as? [String] == ["6 distinct users"])
    }

    /// The printed command, run by a shell as pasted, adds the block, and the farm is declined.
    @Test func theBlockLineRunsAsPasted() throws {
        let box = try seededSale(.sqlite)
        let line = try #require(try box.run(["suspects", "s1", "--json"]).jsonArray().first?["block"] as? String)
        let bin = URL(fileURLWithPath: flashsaleBinary).deletingLastPathComponent().path
        let pasted = try run(box, "/bin/sh", ["-c", line], environment: ["PATH": "\(bin):/usr/bin:/bin", "FLASHSALE_NOW": T0])
        #expect(pasted.status == 0, "\(line): \(pasted.output)")
        let blocks = try box.run(["blocks", "--json"]).jsonArray()
        #expect(blocks.first?["value"] as? String == "2001:db8:1:2::/64")
        #expect(blocks.first?["reason"] as? String == "suspects: 25 distinct users")
        #expect(try box.run(["book", "s1", "bot99", "--ip", "2001:db8:1:2:abcd::1"]).status == 9)
    }

    /// Users are opaque text: a quote, a leading dash and a newline survive the paste, and
    /// the line shows what text output escapes as escapes (found by probing: a right-to-left
    /// override and a zero-width space were printed as they are, so that the line read as
    /// another command, or blocked a user who looked like another).
    @Test(arguments: ["it's me", "-rf", "two\nlines", "csi\u{9B}2J", "x\u{202E}live", "zw\u{200B}x"])
    func hostileUserNamesAreQuotedForTheShell(_ user: String) throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "0"])
        let lines = Array(repeating: "{\"user\":\(String(decoding: try JSONSerialization.data(withJSONObject: [user]), as: UTF8.self).dropFirst().dropLast())}", count: 10)
        let file = try box.file("r.ndjson", lines.joined(separator: "\n") + "\n")
        #expect(try box.run(["submit", "s1", "--file", file]).status == 0)
        try box.run(["process"])
        let rows = try box.run(["suspects", "s1", "--json"]).jsonArray()
        let row = try #require(rows.first { $0["kind"] as? String == "user" })
        #expect(row["reasons"] as? [String] == ["10 declines"])
        let line = try #require(row["block"] as? String)
        var hidden = false
        line.forEachScalar { _, isHidden in hidden = hidden || isHidden }
        #expect(!hidden, "\(line.unicodeScalars.map { String($0.value, radix: 16) })")
        let bin = URL(fileURLWithPath: flashsaleBinary).deletingLastPathComponent().path
        let pasted = try run(box, "/bin/bash", ["-c", line], environment: ["PATH": "\(bin):/usr/bin:/bin", "FLASHSALE_NOW": T0])
        #expect(pasted.status == 0, "\(line): \(pasted.output)")
        #expect(try box.run(["blocks", "--json"]).jsonArray().first?["value"] as? String == user)
    }

    @Test func suspectsOfAnUnknownSaleIsNotFound() throws {
        let box = try Sandbox()
        try box.run(["init"])
        let result = try box.run(["suspects", "nope"])
        #expect(result.status == 3)
        #expect(try box.run(["suspects", "nope", "--limit", "0"]).status == 2)
    }
}
