import Foundation
import Testing
@testable import FlashSaleStore
import FlashSaleTestSupport

/// The disk faults of issue 6 that DatabaseFailureTests did not cover yet.
extension DatabaseFailureTests {
    /// A file size limit (`ulimit -f`) makes every write past the file's end fail with
    /// EFBIG, as a full disk does: exit 74, one line that says so, nothing written.
    @Test func aFullDiskIsExit74AndChangesNothing() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        try box.run(["book", "s1", "u1"])
        let before = try box.dump()
        let lines = (0..<2000).map { "{\"user\":\"u\($0)\",\"user_agent\":\"\(String(repeating: "a", count: 200))\"}" }
        let input = try box.file("big.ndjson", lines.joined(separator: "\n"))
        let size = try #require(try FileManager.default.attributesOfItem(atPath: box.database)[.size] as? Int)
        // No `trap '' XFSZ`: flashsale ignores SIGXFSZ itself, or the signal would kill it.
        let result = try box.shell("ulimit -f \((size + 1023) / 1024); exec \"$FLASHSALE\" --db \"$DB\" submit s1 --file \(input)")
        #expect(result.status == 74)
        #expect(result.stderr.hasPrefix("flashsale: ") && result.stderr.filter { $0 == "\n" }.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("file size limit"), "\(result.stderr)")
        #expect(try box.dump() == before)
        #expect(try box.count("SELECT count(*) FROM request") == 0)
        #expect(try box.run(["verify"]).stdout == "ok\n")
    }

    /// Found by probing: `init` on a full disk said "nothing was written" and left an empty
    /// file at the name (later commands called it no flashsale database); removing it
    /// again raced other processes making the same database (the follow-up probe). A new
    /// database is made whole under a temporary name, which goes when that fails; nothing
    /// has the name, nor a dangling link's target. A file that was there stays.
    @Test func aNewDatabaseStoppedByAFullDiskLeavesNoFileBehind() throws {
        let box = try Sandbox()
        let directory = box.directory.appendingPathComponent("new").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        #expect(symlink("target.db", directory + "/link.db") == 0)
        for (command, name) in [("init", "sale.db"), ("create-sale s1 --inventory 10", "sale.db"), ("init", "link.db")] {
            let result = try box.shell("ulimit -f 1; exec \"$FLASHSALE\" --db \(directory)/\(name) \(command)")
            #expect(result.status == 74, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("file size limit"), "\(result.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["link.db"], "\(command)")
        }
        #expect(try box.shell("exec \"$FLASHSALE\" --db \(directory)/link.db init").status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["link.db", "target.db"])
        // A log an earlier database left at the name would be read into the new one.
        #expect(FileManager.default.createFile(atPath: directory + "/old.db-wal", contents: Data("old".utf8)))
        let refused = try box.shell("exec \"$FLASHSALE\" --db \(directory)/old.db init")
        #expect(refused.status == 4)
        #expect(refused.stderr == "flashsale: \(directory)/old.db-wal exists (left by an earlier database of that name); "
                + "remove it or choose another name\n")
        #expect(!FileManager.default.fileExists(atPath: directory + "/old.db"))
        let empty = directory + "/empty.db"
        #expect(FileManager.default.createFile(atPath: empty, contents: nil))
        #expect(try box.shell("ulimit -f 1; exec \"$FLASHSALE\" --db \(empty) init").status == 74)
        #expect(FileManager.default.fileExists(atPath: empty))
    }

    /// Found by probing: a command that only reads, whose -shm could not grow past the
    /// limit, blamed the database file, which it had not written.
    @Test func aReaderStoppedByTheFileSizeLimitDoesNotBlameTheDatabaseFile() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let before = try box.dump()
        let result = try box.shell("ulimit -f 10; exec \"$FLASHSALE\" --db \"$DB\" export s1")
        #expect(result.status == 74)
        #expect(result.stderr.hasPrefix("flashsale: a file of the database (the file, its -wal or its -shm) reached the file size limit (ulimit -f)"),
                "\(result.stderr)")
        #expect(try box.dump() == before)
    }

    /// Found by probing: a backup stopped by the file size limit said the database had
    /// reached it. The copy is the file that grows, and is named; nothing is left of it.
    @Test func aBackupStoppedByTheFileSizeLimitNamesTheBackup() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let lines = (0..<2000).map { "{\"user\":\"u\($0)\",\"user_agent\":\"\(String(repeating: "a", count: 200))\"}" }
        try #require(try box.run(["-q", "submit", "s1", "--file", box.file("big.ndjson", lines.joined(separator: "\n"))]).status == 0)
        let directory = box.directory.appendingPathComponent("copies").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        // Room for the source's -shm (32 KiB), not for the copy.
        let result = try box.shell("ulimit -f 64; exec \"$FLASHSALE\" --db \"$DB\" backup \(directory)/copy.db")
        #expect(result.status == 74)
        #expect(result.stderr == "flashsale: cannot write the backup \(directory)/copy.db: it reached the file size limit (ulimit -f)\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    /// Found by probing: a stream whose later group failed on a full disk said "nothing was
    /// written" after its earlier groups had committed and been answered. The message now
    /// says what stays decided.
    @Test func aStreamStoppedByAFullDiskSaysWhatItDecidedBefore() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "100000"])
        let lines = (0..<3000).map { "{\"user\":\"u\($0)\",\"user_agent\":\"\(String(repeating: "a", count: 200))\"}" }
        // 250 lines, 58 KB: one write into the pipe's 64 KiB and one read of the stream's
        // 64 KiB buffer. With 300 (69 KB) the stream once read 282 of them, 64 KiB, and
        // decided those before the rest of the first part came (a loaded CI run).
        let first = try box.file("first.ndjson", lines.prefix(250).joined(separator: "\n") + "\n")
        let rest = try box.file("rest.ndjson", lines.dropFirst(250).joined(separator: "\n") + "\n")
        // The pause makes the first 250 a group of their own, committed before the rest come.
        let result = try box.shell("(cat \(first); sleep 0.5; cat \(rest)) | (ulimit -f 400; exec \"$FLASHSALE\" --db \"$DB\" book s1 --stream)")
        #expect(result.status == 74)
        #expect(result.stdout.filter { $0 == "\n" }.count == 250)
        #expect(result.stderr.hasSuffix("; the 250 lines answered before stay decided\n"), "\(result.stderr)")
        #expect(try box.count("SELECT count(*) FROM booking") == 250)
    }

    /// Found by probing: on a full disk a declined `book` (sold out) was exit 74, and a
    /// stream of declines answered nothing. A decline writes only its attempt's count,
    /// telemetry, which is what is lost; a hold still fails whole. The full disk is a WAL
    /// that cannot grow past 4 KiB (`ulimit -f`), kept from being reset by a reader.
    @Test func aDeclineOnAFullDiskIsStillItsDecline() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1"])
        try box.run(["create-sale", "s2", "--inventory", "1"])
        try box.run(["book", "s1", "u1"])
        let before = try box.dump()
        let reader = try Connection(path: box.database, busyTimeout: .seconds(0))
        try reader.execute("BEGIN")
        try reader.execute("SELECT count(*) FROM sale")
        let full = "ulimit -f 4; exec \"$FLASHSALE\" --db \"$DB\""
        let declined = try box.shell("\(full) book s1 u2")
        #expect(declined.status == 6)
        #expect(declined.stderr == "flashsale: sale s1 is sold out\n")
        let stream = try box.shell(#"printf '{"user":"u2"}\n{"user":"u1"}\n' | (\#(full) book s1 --stream)"#)
        #expect(stream.status == 0, "\(stream.stderr)")
        #expect(stream.stdout == #"{"line":1,"user":"u2","ok":false,"error":"sold_out"}"# + "\n"
                + #"{"line":2,"user":"u1","ok":false,"error":"user_limit"}"# + "\n")
        let held = try box.shell("\(full) book s2 u3")
        #expect(held.status == 74)
        #expect(held.stderr.contains("file size limit"), "\(held.stderr)")
        try reader.execute("ROLLBACK")
        #expect(try box.dump() == before)
    }

    /// A directory nobody may write in, around a database its user owns: no -wal can be
    /// made, so 73, and the file as it was.
    @Test(.enabled(if: runningAsRoot && installed("setpriv") != nil, "needs root and setpriv, to hand the files to nobody and run as nobody"))
    func aReadOnlyDirectoryIsCantOpenAndUnchanged() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1"])
        let before = try box.dump()
        chown(box.database, 65534, 65534)
        chown(box.directory.path, 65534, 65534)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: box.directory.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: box.directory.path) }
        let result = try box.shell(#"setpriv --reuid=65534 --regid=65534 --clear-groups "$FLASHSALE" --db "$DB" book s1 u1 2>&1"#)
        #expect(result.status == 73)
        #expect(result.stdout.hasPrefix("flashsale: cannot use the database") && result.stdout.filter { $0 == "\n" }.count == 1)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: box.directory.path)
        #expect(try box.dump() == before)
    }

    /// Found by probing: a read-only database read by its owner leaves a read-only -shm
    /// beside it, and once the database is made writable again, writes failed through it
    /// with advice to check the database's permissions, which were right. The message
    /// names the -shm, and removing it (no process has the database open) mends it.
    @Test(.enabled(if: runningAsRoot && installed("setpriv") != nil, "needs root and setpriv, to hand the files to nobody and run as nobody"))
    func aReadOnlySharedMemoryFileLeftByAReaderIsNamed() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1"])
        chown(box.database, 65534, 65534)
        chown(box.directory.path, 65534, 65534)
        let asNobody = #"setpriv --reuid=65534 --regid=65534 --clear-groups "$FLASHSALE" --db "$DB" "#
        chmod(box.database, 0o400)
        #expect(try box.shell(asNobody + "status s1").status == 0)
        chmod(box.database, 0o600)
        let refused = try box.shell(asNobody + "book s1 u1")
        #expect(refused.status == 73)
        #expect(refused.stderr.contains("its shared-memory file \(box.database)-shm cannot be written, though the database can"),
                "\(refused.stderr)")
        unlink(box.database + "-shm")
        #expect(try box.shell(asNobody + "book s1 u1").status == 0)
    }

    /// Found by probing: a database on a read-only file system, which SQLite cannot open
    /// even to read (it makes the -wal and -shm beside a WAL database), was said to need
    /// its path and permissions checked, which were right. A read-only bind mount of the
    /// database's directory is that file system.
    @Test(.enabled(if: readOnlyViewsCanBeMounted, "needs root and mount(8), to mount a read-only view of a directory"))
    func aDatabaseOnAReadOnlyFileSystemIsSaidToBe() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1"])
        let before = try box.dump()
        let view = try ReadOnlyView(of: box.directory.path)
        defer { view.unmount() }
        let onView = view.path + "/" + box.database.split(separator: "/").last!
        for command in [["status", "s1"], ["book", "s1", "u1"]] {
            let refused = try box.spawn(["--db", onView] + command, database: false)
            #expect(refused.status == 73)
            #expect(refused.stderr == "flashsale: cannot use the database: it is on a read-only file system, where SQLite "
                    + "cannot make the -wal and -shm files it needs beside a WAL database even to read it: remount it "
                    + "read-write, or copy the database elsewhere\n")
        }
        #expect(try box.dump() == before)
    }

    /// With its -wal and -shm there (another process has the database open), a database
    /// on a read-only file system can be read; a write is refused, and says why (found by
    /// probing: "attempt to write a readonly database", to check the permissions).
    @Test(.enabled(if: readOnlyViewsCanBeMounted, "needs root and mount(8), to mount a read-only view of a directory"))
    func aDatabaseOnAReadOnlyFileSystemWithItsWALCanOnlyBeRead() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1"])
        let before = try box.dump()
        let reader = try Connection(path: box.database, busyTimeout: .seconds(5))
        _ = try reader.firstRow("SELECT count(*) FROM sale") { $0.int64(0) }
        let view = try ReadOnlyView(of: box.directory.path)
        defer { view.unmount() }
        let onView = view.path + "/" + box.database.split(separator: "/").last!
        // In processes of their own: SQLite keeps a descriptor a connection closes while
        // another of its process has the same file open, which would keep the view busy.
        #expect(try box.spawn(["--db", onView, "status", "s1"], database: false).status == 0)
        let refused = try box.spawn(["--db", onView, "book", "s1", "u1"], database: false)
        #expect(refused.status == 73)
        #expect(refused.stderr == "flashsale: cannot use the database: it is on a read-only file system, where it can be "
                + "read and not written: remount it read-write, or copy the database elsewhere\n")
        #expect(try box.dump() == before)
        withExtendedLifetime(reader) {}
    }

    /// A WAL cut in the middle of its last frame, as a crash during a write leaves it: the
    /// cut transaction is lost, every one before it is there, and flashsale carries on.
    @Test func aTruncatedWALLosesOnlyItsLastTransaction() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        // A reader's open snapshot keeps the WAL from being checkpointed and removed.
        let reader = try Connection(path: box.database, busyTimeout: .seconds(5))
        try reader.execute("BEGIN")
        _ = try reader.firstRow("SELECT count(*) FROM sale") { $0.int64(0) }
        for user in ["w1", "w2", "w3"] { try box.run(["book", "s1", user]) }
        let copy = try Sandbox()
        for suffix in ["", "-wal"] {
            try FileManager.default.copyItem(atPath: box.database + suffix, toPath: copy.database + suffix)
        }
        try reader.execute("COMMIT")
        let wal = try FileHandle(forWritingTo: URL(fileURLWithPath: copy.database + "-wal"))
        try wal.truncate(atOffset: try wal.seekToEnd() - 100)
        try wal.close()

        #expect(try copy.run(["book", "s1", "w9"]).status == 0)
        let users = try Connection(path: copy.database, busyTimeout: .seconds(5))
            .rows("SELECT user FROM booking ORDER BY rowid") { $0.text(0) }
        #expect(users == ["w1", "w2", "w9"])
        #expect(try copy.run(["verify"]).stdout == "ok\n")
        #expect(try recount(copy.database).violations.isEmpty)
    }
}
