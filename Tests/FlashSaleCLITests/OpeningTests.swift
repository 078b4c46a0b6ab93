import Foundation
import Testing
@testable import FlashSaleCLI
import FlashSaleTestSupport
import FlashSaleStore

private func mode(of path: String) throws -> Int {
    try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
}

private func exists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

/// Which commands create the database, and what the others do with a path that is no database.
@Suite struct OpeningTests {
    /// A run of each command with arguments it accepts; nil for those that never open the database.
    static let samples: [String: [String]?] = [
        "init": ["init"],
        "create-sale": ["create-sale", "s1", "--inventory", "1"],
        "seed-inventory": ["seed-inventory", "s1", "5"],
        "pause": ["pause", "s1"],
        "resume": ["resume", "s1"],
        "close": ["close", "s1"],
        "book": ["book", "s1", "u1"],
        "confirm": ["confirm", "s1", "bk_AAAAAAAAAAAAAAAAAAAAAA"],
        "cancel": ["cancel", "s1", "bk_AAAAAAAAAAAAAAAAAAAAAA"],
        "sweep": ["sweep"],
        "submit": ["submit", "s1", "u1"],
        // Port 0: should it ever listen, it takes no port another test or program uses.
        "serve": ["serve", "--auth", "header", "--user-header", "X-User", "--listen", "127.0.0.1:0",
                  "--admin-listen", "127.0.0.1:0"],
        "process": ["process"],
        // A database of its own: a scratch one, or --db's, made when missing (RehearseTests).
        "rehearse": nil,
        "request": ["request", "1"],
        "status": ["status", "s1"],
        "sales": ["sales"],
        "bookings": ["bookings", "s1"],
        "booking": ["booking", "s1", "bk_AAAAAAAAAAAAAAAAAAAAAA"],
        "verify": ["verify"],
        "block": ["block", "ip", "203.0.113.7"],
        "unblock": ["unblock", "ip", "203.0.113.7"],
        "blocks": ["blocks"],
        "events": ["events"],
        "export": ["export", "s1"],
        "metrics": ["metrics"],
        "suspects": ["suspects", "s1"],
        "backup": ["backup", "copy.db"],
        "copy-to": ["copy-to", "postgresql://localhost/flashsale"],
        "completions": nil,
        "help": nil,
    ]

    @Test func everyCommandHasASample() {
        #expect(Set(Self.samples.keys) == Set(CommandTable.all.map(\.name)))
    }

    /// A mistyped --db must not become an empty database that reports on itself: every
    /// command but init and create-sale exits 73 naming the path, and creates nothing.
    @Test(arguments: CommandTable.all.filter { !$0.createsDatabase }.map(\.name))
    func aCommandThatDoesNotCreateRefusesAMissingDatabase(_ name: String) throws {
        guard let arguments = try #require(Self.samples[name]) else { return }
        let box = try Sandbox()
        for variant in [arguments, ["--json"] + arguments] {
            let result = try outcome(of: variant, in: box, command: name)
            #expect(result.status == 73, "\(name): \(result.stderr)")
            if variant.first == "--json" {
                let error = try #require(try result.json()["error"] as? [String: Any])
                #expect(error["code"] as? String == "cant_open")
            } else {
                #expect(result.stderr == "flashsale: no flashsale database at \(box.database); init or create-sale creates one\n")
            }
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            #expect(!exists(box.database + suffix), "\(name) created \(box.database)\(suffix)")
        }
        #expect(!exists(box.directory.appendingPathComponent("copy.db").path))
    }

    /// A malformed argument is a usage error (2) before the database is opened, in every
    /// command alike (found by probing: `status`, `pause`, `booking`, `confirm`, `cancel`,
    /// `block`, `unblock` and `blocks` opened it first, and a missing one was exit 73; on
    /// PostgreSQL they connected first).
    @Test(arguments: [
        ["seed-inventory", "bad id", "5"], ["pause", "bad id"], ["resume", "bad id"], ["close", "bad id"],
        ["book", "bad id", "u1"], ["confirm", "s1", "nope"], ["cancel", "s1", "nope"], ["sweep", "bad id"],
        ["submit", "bad id", "u1"], ["process", "bad id"], ["request", "0"], ["status", "bad id"], ["bookings", "bad id"],
        ["booking", "s1", "nope"], ["booking", "bad id", "bk_AAAAAAAAAAAAAAAAAAAAAA"], ["verify", "bad id"],
        ["block", "ip", "10.1.2.3/8"], ["block", "ip", "nope"], ["unblock", "ip", "nope"], ["unblock", "user", "u1", "--sale", "bad id"],
        ["blocks", "--sale", "bad id"], ["events", "--sale", "bad id"], ["export", "bad id"], ["suspects", "bad id"],
    ])
    func aMalformedArgumentIsAUsageErrorBeforeTheDatabaseIsOpened(_ arguments: [String]) throws {
        let box = try Sandbox()
        let result = try box.run(arguments)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(!result.stderr.contains("no flashsale database"), "\(arguments): \(result.stderr)")
        for suffix in ["", "-wal", "-shm", "-journal"] {
            #expect(!exists(box.database + suffix), "\(arguments) created \(box.database)\(suffix)")
        }
    }

    /// `serve` runs as a process, the real one: `flashsale` execs `flashsale-serve`, which must
    /// refuse the database before it listens. (In this process the runner refuses to exec.)
    private func outcome(of arguments: [String], in box: Sandbox, command: String) throws -> Result {
        guard command == ServeCommand.spec.name else { return try box.run(arguments) }
        let server = try box.start(arguments)
        let termination = try #require(server.waitForExit(), "serve did not exit: \(server.stderr)")
        return Result(termination: termination, stdout: server.stdout, stderr: server.stderr)
    }

    /// `help` and `completions` print what the binary knows: a --db or $FLASHSALE_DB that
    /// no command could use, or a server's URL (which `flashsale` would hand over to
    /// flashsale-serve), does not stop them, as it does not stop `--help`.
    @Test func commandsThatUseNoDatabaseIgnoreAnUnusableOne() throws {
        let box = try Sandbox()
        #expect(Set(CommandTable.all.filter { !$0.usesDatabase }.map(\.name)) == ["help", "completions"])
        for arguments in [["help"], ["help", "book"], ["completions", "bash"]] {
            for database in ["postgresql://u:secret@[unclosed", "", "postgresql://127.0.0.1:1/flashsale"] {
                let variable = try box.run(arguments, database: false, environment: ["FLASHSALE_DB": database])
                #expect(variable.status == 0 && variable.stderr.isEmpty, "\(arguments) \(database): \(variable.stderr)")
                let option = try box.run(["--db", database] + arguments, database: false)
                #expect(option.status == 0 && option.stdout == variable.stdout, "\(arguments) --db \(database): \(option.stderr)")
            }
        }
    }

    /// Names SQLite reads as something else than a file (`:memory:`, a `file:` URI) are
    /// paths like any other: the database is the file flashsale made and checked, and what
    /// a command reports written is in it.
    @Test func namesSQLiteWouldReadAsSpecialAreFiles() throws {
        let box = try Sandbox()
        #expect(try box.spawn(["--db", ":memory:", "create-sale", "s1", "--inventory", "5"], database: false).status == 0)
        let status = try box.spawn(["--db", ":memory:", "--json", "status", "s1"], database: false)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(try status.json()["total"] as? Int == 5)
        #expect(try box.spawn(["--db", box.directory.appendingPathComponent(":memory:").path, "verify"], database: false).stdout == "ok\n")

        #expect(try box.run(["init"]).status == 0)
        let uri = "file:\(URL(fileURLWithPath: box.database).lastPathComponent)?mode=memory"
        let made = try box.spawn(["--db", uri, "create-sale", "s2", "--inventory", "1"], database: false)
        #expect(made.status == 0, "\(made.stderr)")
        #expect(try !box.run(["sales"]).stdout.contains("s2"), "a file: URI wrote into the database it names")
        #expect(try box.spawn(["--db", uri, "sales"], database: false).stdout.contains("\ns2 "))
    }

    @Test(arguments: CommandTable.all.filter(\.createsDatabase).map(\.name))
    func aCommandThatCreatesMakesTheDatabaseOwnerOnly(_ name: String) throws {
        let arguments = try #require(Self.samples[name] ?? nil)
        let box = try Sandbox()
        #expect(try box.run(arguments).status == 0)
        #expect(try mode(of: box.database) == 0o600)
        #expect(try box.run(["verify"]).stdout == "ok\n")
    }

    /// A path that is not a regular file cannot be a database: 73 before SQLite touches it
    /// (which would make /dev/null-journal, or wait on a FIFO).
    @Test func aPathThatIsNotARegularFileIsCantOpen() throws {
        let box = try Sandbox()
        let fifo = box.directory.appendingPathComponent("fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        for path in [fifo, box.directory.path, "/dev/null"] {
            for arguments in [["sales"], ["init"], ["create-sale", "s1", "--inventory", "1"]] {
                let result = try box.run(["--db", path] + arguments, database: false)
                #expect(result.status == 73, "\(path) \(arguments): \(result.stderr)")
                #expect(result.stderr == "flashsale: cannot open the database \(path): it is not a regular file\n")
            }
            #expect(!exists(path + "-journal") && !exists(path + "-wal"))
        }
    }

    /// A file that is not a flashsale database is named, as one that cannot be opened is
    /// (found by probing: `--db in/good.csv` said "file is not a database", not which).
    @Test func aFileThatIsNoDatabaseIsNamed() throws {
        let box = try Sandbox()
        let csv = box.directory.appendingPathComponent("good.csv").path
        #expect(FileManager.default.createFile(atPath: csv, contents: Data("user\nbob\n".utf8)))
        for arguments in [["sales"], ["init"]] {
            let result = try box.run(["--db", csv] + arguments, database: false)
            #expect(result.status == 73)
            #expect(result.stderr == "flashsale: not a usable flashsale database: \(csv): file is not a database; use another database\n")
        }
        #expect(try String(contentsOfFile: csv, encoding: .utf8) == "user\nbob\n")
    }

    /// Files no flashsale made or would write, each named and left as it was:
    /// - found by probing, another program's file with a version of its own (`PRAGMA
    ///   user_version = 7`) was taken for an old flashsale one, switched to WAL for good,
    ///   and said "no such table";
    /// - found by probing, a version below zero (set by hand, or a damaged header) crashed
    ///   `init` and `create-sale` (SIGILL) once they had switched the file to WAL; every
    ///   other command said to run them.
    @Test(arguments: [
        (["PRAGMA user_version = 7", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"],
         "an SQLite database of another program, not flashsale's"),
        (["CREATE TABLE sale (id TEXT)", "PRAGMA user_version = -1"], "the database has schema version -1, which no flashsale writes"),
    ])
    func aFileNoFlashsaleWouldWriteIsNamedAndLeftAlone(making statements: [String], words: String) throws {
        let box = try Sandbox()
        let path = box.directory.appendingPathComponent("app.db").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        try FlashSaleStoreBackdoor.execute(path, statements)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        for arguments in [["status", "s1"], ["init"], ["create-sale", "s1", "--inventory", "1"]] {
            let result = try box.run(["--db", path] + arguments, database: false)
            #expect(result.status == 73, "\(arguments): \(result.stderr)")
            #expect(result.stderr == "flashsale: not a usable flashsale database: \(path): \(words); use another database\n", "\(arguments)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(!exists(path + "-wal"))
    }

    /// Found by probing: a flashsale database whose version was set back by hand failed
    /// its migration again on every command, `verify` too, as an internal error (exit 1,
    /// "duplicate column name"). It is 73, saying why, as on PostgreSQL, and unchanged.
    @Test func aVersionSetBackByHandIsNamedNotAnInternalError() throws {
        let box = try Sandbox()
        #expect(try box.run(["create-sale", "s1", "--inventory", "1"]).status == 0)
        for version in [1, 5] {
            try FlashSaleStoreBackdoor.execute(box.database, "PRAGMA user_version = \(version)")
            for arguments in [["init"], ["verify"], ["book", "s1", "u1"]] {
                let result = try box.run(arguments)
                #expect(result.status == 73, "\(version) \(arguments): \(result.stderr)")
                #expect(result.stderr.hasPrefix("flashsale: not a usable flashsale database: \(box.database): the database is not "
                                                + "what its schema version (\(version)) says, so its migration failed ("),
                        "\(result.stderr)")
                #expect(result.stderr.hasSuffix("): the version was changed by hand, or another program's objects have flashsale's "
                                                + "names; use another database\n"))
            }
        }
        try FlashSaleStoreBackdoor.execute(box.database, "PRAGMA user_version = \(FlashSaleStoreBackdoor.schemaVersion)")
        #expect(try box.run(["status", "s1", "--json"]).stdout.contains(#""available":1"#))
    }

    /// Found by probing: with no file descriptor free, the runtime could not read the
    /// command line, and every command crashed (SIGILL) saying nothing.
    @Test func noFreeFileDescriptorIsSaidNotACrash() throws {
        let box = try Sandbox()
        for arguments in ["--version", "--db \"$DB\" status s1"] {
            let result = try box.shell("ulimit -n 3; exec \"$FLASHSALE\" \(arguments)")
            #expect(result.status == 74, "\(arguments): \(result.stderr)")
            #expect(result.stderr == "flashsale: cannot read the command line: no file descriptor is free? (raise ulimit -n)\n")
        }
    }

    /// Found by probing: with the command line read but no descriptor free for the
    /// database, SQLite's "unable to open database file" came with advice to check the
    /// database's path and permissions, neither at fault.
    @Test func noDescriptorFreeForTheDatabaseIsSaidAsSuch() throws {
        let box = try Sandbox()
        #expect(try box.run(["create-sale", "s1", "--inventory", "1"]).status == 0)
        let result = try box.shell("ulimit -n 5; exec \"$FLASHSALE\" --db \"$DB\" status s1")
        #expect(result.status == 74, "\(result.stderr)")
        #expect(result.stderr == "flashsale: I/O error, nothing was written: no file descriptor is free to open the database "
                + "(too many open files); raise ulimit -n\n")
    }

    /// Found by probing: a backup with no descriptor left for its copy was 73 ("Too many
    /// open files"), saying nothing of the limit. Each limit from 4 to 8 runs out somewhere
    /// (the command line, the database, the copy) or leaves room for the whole backup.
    @Test func aBackupWithNoDescriptorFreeSaysToRaiseTheLimit() throws {
        let box = try Sandbox()
        #expect(try box.run(["create-sale", "s1", "--inventory", "1"]).status == 0)
        var copyRanOut = false
        for limit in 4...8 {
            let result = try box.shell("ulimit -n \(limit); exec \"$FLASHSALE\" --db \"$DB\" backup copy\(limit).db")
            guard result.status != 0 else { continue }
            #expect(result.status == 74, "\(result.stderr)")
            #expect(result.stderr.hasSuffix("raise ulimit -n)\n") || result.stderr.hasSuffix("; raise ulimit -n\n"), "\(result.stderr)")
            copyRanOut = copyRanOut || result.stderr.hasPrefix("flashsale: cannot create the backup copy\(limit).db: no file descriptor")
        }
        #expect(copyRanOut)
    }

    /// Found by probing: through two hard links to one file, two processes each kept a WAL
    /// of their own (SQLite keeps it beside the name it opens): one item was sold twice,
    /// and one's commits were later lost. A file with more than one name is refused.
    @Test func aFileWithAnotherHardLinkIsRefused() throws {
        let box = try Sandbox()
        #expect(try box.run(["create-sale", "s1", "--inventory", "1"]).status == 0)
        let other = box.directory.appendingPathComponent("other-name.db").path
        #expect(link(box.database, other) == 0)
        for path in [box.database, other] {
            let result = try box.run(["--db", path, "book", "s1", "alice"], database: false)
            #expect(result.status == 73, "\(result.stderr)")
            #expect(result.stderr.contains("the file has 2 names (hard links)"), "\(result.stderr)")
        }
        #expect(unlink(other) == 0)
        #expect(try box.run(["book", "s1", "alice"]).status == 0)
        let linked = box.directory.appendingPathComponent("symbolic.db").path
        #expect(symlink(box.database, linked) == 0)
        #expect(try box.run(["--db", linked, "status", "s1", "--json"], database: false).json()["held"] as? Int == 1)
    }

    /// Found by review: a program that has the database open and closes another
    /// descriptor of the file (a script that copies it with `shutil.copy` while connected)
    /// loses its POSIX locks on the file, as POSIX has it, and keeps its index's. It held
    /// the index at the name without the file, and every command waited out its busy
    /// timeout and was refused as if that process had another file open. It has this one.
    @Test func aProcessThatLostItsLockOnTheFileIsNotTakenForAnotherFilesLog() throws {
        let box = try Sandbox()
        #expect(try box.run(["create-sale", "s1", "--inventory", "3"]).status == 0)
        let program = try Connection(path: box.database, busyTimeout: .seconds(5))
        #expect(try program.firstRow("SELECT count(*) FROM sale") { $0.int64(0) } == 1)
        close(open(box.database, O_RDONLY))
        // A process of its own: the check leaves out its own process, which this test's is.
        let booked = try box.spawn(["--busy-timeout", "200ms", "book", "s1", "alice"])
        #expect(booked.status == 0, "\(booked.stderr)")
        #expect(try program.firstRow("SELECT held FROM sale") { $0.int64(0) } == 1)
    }

    /// Found by probing: a table of the schema dropped by hand (with sqlite3) was an
    /// internal error, exit 1, where PostgreSQL says 73. It is not a usable flashsale
    /// database, named as the others are, and nothing is changed.
    @Test func aTableDroppedByHandIsAnUnusableDatabase() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "3"])
        try FlashSaleStoreBackdoor.execute(box.database, "DROP TABLE block")
        let result = try box.run(["book", "s1", "alice"])
        #expect(result.status == 73)
        #expect(result.stderr == "flashsale: not a usable flashsale database: no such table: block; use another database\n", "\(result.stderr)")
        #expect(try box.run(["status", "s1", "--json"]).json()["held"] as? Int == 0)
    }

    /// A database created through a dangling symbolic link: the file made at its target,
    /// and the -wal and -shm beside it, are readable by their owner only.
    @Test func aDatabaseCreatedThroughADanglingLinkIsOwnerOnly() throws {
        let box = try Sandbox()
        let target = box.directory.appendingPathComponent("target.db").path
        try FileManager.default.createSymbolicLink(atPath: box.database, withDestinationPath: "target.db")
        #expect(try box.run(["create-sale", "s1", "--inventory", "5"]).status == 0)
        #expect(try mode(of: target) == 0o600)

        // A stream keeps its connection, so its -wal and -shm, open until its input ends.
        let stream = Process()
        stream.executableURL = URL(fileURLWithPath: flashsaleBinary)
        stream.arguments = ["--db", box.database, "book", "s1", "--stream"]
        stream.environment = ["PATH": "/usr/bin:/bin"]
        let input = Pipe()
        stream.standardInput = input
        stream.standardOutput = FileHandle.nullDevice
        stream.standardError = FileHandle.nullDevice
        try stream.run()
        defer {
            try? input.fileHandleForWriting.close()
            stream.waitUntilExit()
        }
        input.fileHandleForWriting.write(Data("{\"user\":\"u1\"}\n".utf8))
        while stream.isRunning, !(exists(target + "-wal") && exists(target + "-shm")) {
            usleep(1000)
        }
        #expect(stream.isRunning)
        #expect(try mode(of: target + "-wal") == 0o600)
        #expect(try mode(of: target + "-shm") == 0o600)
    }

    /// The first use of a new file by many processes at once: one of them creates the
    /// schema, the others wait for it (within --busy-timeout) and use it; none fails.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/flock"), "flock(1) is not installed"))
    func manyProcessesCreatingTheSameNewDatabaseAllSucceed() throws {
        let box = try Sandbox()
        // Each process waits for a shared lock on the gate, which the test holds exclusively
        // until all have started: released, they open the new file all at once.
        let gatePath = try box.file("gate", "")
        let gate = open(gatePath, O_RDONLY)
        defer { close(gate) }
        for round in 0..<6 {
            let database = "\(box.database).\(round)"
            flock(gate, LOCK_EX)
            let processes = try (0..<32).map { index in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
                process.arguments = ["--shared", gatePath, flashsaleBinary, "--db", database]
                    + (index == 0 ? ["init"] : ["create-sale", "s\(index)", "--inventory", "1"])
                process.environment = ["PATH": "/usr/bin:/bin"]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: try box.file("err.\(round).\(index)", "")))
                try process.run()
                return process
            }
            flock(gate, LOCK_UN)
            for (index, process) in processes.enumerated() {
                process.waitUntilExit()
                let message = try String(contentsOfFile: box.directory.appendingPathComponent("err.\(round).\(index)").path, encoding: .utf8)
                #expect(process.terminationStatus == 0, "round \(round), process \(index): \(message)")
            }
            let sales = try box.run(["--db", database, "sales", "--json"], database: false).jsonArray()
            #expect(sales.count == 31)
        }
    }
}
