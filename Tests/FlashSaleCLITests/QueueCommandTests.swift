import Foundation
import Testing

/// Each NDJSON line of stdout as an object.
func ndjson(_ text: String) throws -> [[String: Any]] {
    try text.split(separator: "\n").map { line in
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
    }
}

/// Whether a thread of process `pid` sleeps in a read of a pipe or FIFO (the kernel's
/// `pipe_read`, as /proc's wchan names it).
func isReadingAPipe(_ pid: pid_t) -> Bool {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.contains { task in
        ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/wchan", encoding: .utf8)) ?? "").hasSuffix("pipe_read")
    }
}

let requestFields = ["id", "sale", "user", "status", "reason", "booking", "submitted_at", "decided_at", "position"]

@Suite struct SubmitCommandTests {
    @Test(arguments: commandLineStores)
    func submitPrintsTheRequestIDAlone(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "1"])
        #expect(try box.run(["submit", "s1", "alice", "--ip", "203.0.113.7"]).stdout == "1\n")
        let json = try box.run(["submit", "s1", "bob", "--json"])
        #expect(keyOrder(json.stdout) == requestFields)
        #expect(try json.json()["position"] as? Int == 2)
        #expect(try box.run(["submit", "s1", "carol", "--key", "k"]).line == "3")
        #expect(try box.run(["submit", "s1", "carol", "--key", "k"]).line == "3")
        #expect(try box.run(["submit", "s1", "dave", "--key", "k"]).status == 4)
        #expect(try box.run(["submit", "nope", "x"]).status == 3)
        #expect(try box.run(["status", "s1", "--json"]).json()["queued"] as? Int == 3)
    }

    @Test(arguments: commandLineStores)
    func processAndRequestTellWhatBecameOfEachRequest(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "1"])
        try box.run(["submit", "s1", "alice"])
        try box.run(["submit", "s1", "bob"])
        #expect(try box.run(["request", "2", "--json"]).json()["status"] as? String == "queued")
        #expect(try box.run(["process"]).stdout == "1 accepted, 1 rejected\n")
        let accepted = try box.run(["request", "1", "--json"]).json()
        #expect(accepted["status"] as? String == "accepted")
        let booking = try #require(accepted["booking"] as? String)
        #expect(try box.run(["booking", "s1", booking, "--json"]).json()["user"] as? String == "alice")
        let rejected = try box.run(["request", "2", "--json"]).json()
        #expect(rejected["reason"] as? String == "sold_out")
        #expect(rejected["position"] is NSNull)
        #expect(try box.run(["request", "x"]).status == 2)
        #expect(try box.run(["request", "-1"]).status == 2)
        #expect(try box.run(["request", "99"]).status == 3)
        #expect(try box.run(["process", "--json"]).stdout == #"{"accepted":0,"rejected":0,"decided":0,"waiting":[]}"# + "\n")
    }

    @Test(arguments: commandLineStores)
    func processLimitDecidesAtMostThatMany(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "10"])
        for user in ["a", "b", "c"] { try box.run(["submit", "s1", user]) }
        #expect(try box.run(["process", "s1", "--limit", "2", "--batch", "1"]).stdout == "2 accepted, 0 rejected\n")
        #expect(try box.run(["status", "s1", "--json"]).json()["queued"] as? Int == 1)
    }

    @Test func aFileIsEnqueuedAllOrNothing() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let good = try box.file("good.csv", "user_agent,user,ip\r\n\"Mozilla, 5.0\",u1,203.0.113.7\r\n\r\n\"curl\",\"u\"\"2\",\r\n")
        let result = try box.run(["submit", "s1", "--file", good])
        #expect(result.stdout == "2 enqueued (ids 1-2), 0 repeated, 0 skipped\n")
        let bad = try box.file("bad.ndjson", "{\"user\":\"x1\"}\n{\"user\":\"x2\",\"ip\":\"999.1.1.1\"}\n")
        let before = try box.dump()
        let refused = try box.run(["submit", "s1", "--file", bad])
        #expect(refused.status == 65)
        #expect(refused.stderr.hasPrefix("flashsale: line 2: "))
        #expect(try box.dump() == before)
        let skipped = try box.run(["submit", "s1", "--file", bad, "--skip-invalid"])
        #expect(skipped.status == 0)
        #expect(skipped.stderr.hasPrefix("flashsale: line 2 skipped: "))
        #expect(skipped.stdout == "1 enqueued (id 3), 0 repeated, 1 skipped\n")
        #expect(try box.run(["request", "2", "--json"]).json()["user"] as? String == "u\"2")
    }

    /// Found by probing: a skipped line came out only when the command ended, held in
    /// stderr's buffer. Here the bad line comes first, before 300,000 good ones (read
    /// 4,096 at a time): it is said while the submit still has most of them to queue.
    @Test func aSkippedLineIsSaidBeforeTheInputEnds() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let file = try box.file("requests.ndjson", "{\"nouser\": 1}\n" + (0..<300_000).map { "{\"user\": \"u\($0)\"}\n" }.joined())
        let submit = try box.start(["submit", "s1", "--file", file, "--skip-invalid"])
        let said = submit.waitUntil(within: 60) { submit.stderr.contains("flashsale: line 1 skipped: ") }
        let stillRunning = submit.child.isRunning
        #expect(said && stillRunning, "the skipped line came only at the end: \(submit.stderr)")
        #expect(submit.child.wait() == .exit(0))
        #expect(submit.stdout == "300000 enqueued (ids 1-300000), 0 repeated, 1 skipped\n")
    }

    /// Found by probing: `submit --file -` read its input inside its write transaction, so
    /// a producer slow to write kept every other writer waiting (`book` exit 75 after its
    /// busy timeout, `process` stopped). Here the input is a FIFO this test holds open
    /// after one line, while the submit waits to read more: a `book` goes through at once.
    @Test(arguments: commandLineStores)
    func aSlowInputKeepsNoOtherWriterWaiting(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let fifo = box.directory.appendingPathComponent("requests.fifo").path
        try #require(mkfifo(fifo, 0o600) == 0)
        let submit = try box.start(["submit", "s1", "--file", fifo])
        let writer = open(fifo, O_WRONLY | O_CLOEXEC)
        try #require(writer >= 0)
        func send(_ line: String) { _ = line.withCString { write(writer, $0, strlen($0)) } }
        send("{\"user\":\"early\"}\n")
        #expect(submit.waitUntil { isReadingAPipe(submit.child.pid) }, "the submit never waited for its input")
        let book = try box.run(["--busy-timeout", "2s", "book", "s1", "meanwhile"])
        #expect(book.status == 0, "\(book.stderr)")
        send("{\"user\":\"late\"}\n")
        close(writer)
        #expect(submit.child.wait() == .exit(0), "\(submit.stderr)")
        #expect(submit.stdout == "2 enqueued (ids 1-2), 0 repeated, 0 skipped\n")
    }

    /// Standard input is kept in $TMPDIR while it is read: where that cannot be, the
    /// submit is an I/O error that names it, with nothing queued.
    @Test func anInputThatCannotBeKeptIsExit74AndQueuesNothing() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let missing = box.directory.appendingPathComponent("no-such-dir").path
        let result = try box.shell("echo '{\"user\":\"a\"}' | TMPDIR='\(missing)' \"$FLASHSALE\" --db \"$DB\" submit s1 --file -")
        #expect(result.status == 74)
        #expect(result.stderr == "flashsale: cannot keep standard input in \(missing) while it is read: No such file or directory\n")
        #expect(try box.run(["status", "s1", "--json"]).json()["queued"] as? Int == 0)
    }

    /// Found by probing: a TMPDIR that is not UTF-8 was said not to exist (74); it is
    /// refused as every such variable is, and the rehearsal's scratch too.
    @Test func aTMPDIRThatIsNotUTF8IsAUsageError() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        // A directory there, whose name's last byte is 0xFF.
        let scratch = "\"$(printf '\(box.directory.path)/tmp\\377')\""
        let result = try box.shell("mkdir \(scratch) && echo '{\"user\":\"a\"}' | TMPDIR=\(scratch) \"$FLASHSALE\" --db \"$DB\" submit s1 --file -")
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr == "flashsale: TMPDIR is not valid UTF-8\n")
        #expect(try box.run(["status", "s1", "--json"]).json()["queued"] as? Int == 0)
        let rehearsal = try box.shell("TMPDIR=\(scratch) \"$FLASHSALE\" rehearse --buyers 10")
        #expect(rehearsal.status == 2, "\(rehearsal.stderr)")
        #expect(rehearsal.stderr == "flashsale: TMPDIR is not valid UTF-8\n")
    }

    /// Found by probing: an endless line (`/dev/zero`) was kept in $TMPDIR until it was
    /// full, then exit 74. The copy stops past the longest line a request may be, which
    /// the submit refuses as it did before the copy: exit 65, nothing queued, nothing kept.
    @Test func anEndlessLineIsRefusedWithoutFillingTheTemporaryDirectory() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let scratch = box.directory.appendingPathComponent("scratch").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
        let result = try box.shell("TMPDIR='\(scratch)' \"$FLASHSALE\" --db \"$DB\" submit s1 --file - < /dev/zero")
        #expect(result.status == 65)
        #expect(result.stderr.hasPrefix("flashsale: line 1: line is longer than 65536 bytes; nothing was enqueued"), "\(result.stderr)")
        #expect(try box.run(["status", "s1", "--json"]).json()["queued"] as? Int == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch).isEmpty)
    }

    /// Found by probing: with `--skip-invalid` the copy went on through a line too long, to
    /// skip it later, and an endless one filled $TMPDIR all the same. The copy keeps such a
    /// line cut short, still too long, and the lines around it are queued. (A file size
    /// limit of 1 MiB stands for a small disk: the line is 10 MB.)
    @Test func aSkippedLongLineIsNotKeptWhole() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let result = try box.shell("""
            (echo '{"user":"a"}'; head -c 10000000 /dev/zero | tr '\\0' x; echo; echo '{"user":"b"}') \\
                | (ulimit -f 1024; "$FLASHSALE" --db "$DB" submit s1 --file - --skip-invalid)
            """)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "2 enqueued (ids 1-2), 0 repeated, 1 skipped\n")
        #expect(result.stderr == "flashsale: line 2 skipped: line is longer than 65536 bytes\n")
    }

    /// Found by review: a CSV line cut inside a quoted field left the field open in the
    /// copy, and the lines after it were read into the same record, skipped with it. The
    /// cut closes what it opened: the same lines are queued through a pipe as from a file.
    @Test func aCSVLineCutInsideAQuotedFieldKeepsTheLinesAfterIt() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let lines = #"(printf 'user,user_agent\nu1,"'; head -c 70000 /dev/zero | tr '\0' a; printf '"\nu2,x\nu3,x\n')"#
        let piped = try box.shell(lines + #" | "$FLASHSALE" --db "$DB" submit s1 --file - --format csv --skip-invalid"#)
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(piped.stdout == "2 enqueued (ids 1-2), 0 repeated, 1 skipped\n")
        #expect(piped.stderr == "flashsale: line 2 skipped: line is longer than 65536 bytes\n")
    }

    /// Found by review: the copy stopped as soon as a line passed the longest a record may
    /// be, so a line of exactly that many bytes whose CRLF's LF had not come yet was read
    /// as the last, whole, and the lines after it were dropped: a submit of part of its
    /// input. The copy keeps room for the CR and a byte order mark; all of it is queued.
    @Test func aLongestLineEndingInCRLFAtAReadsEndKeepsTheLinesAfterIt() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let longest = "{\"user\":\"u1\",\"x\":\"" + String(repeating: "x", count: 65_536 - 20) + "\"}"
        try #require(longest.utf8.count == 65_536)
        let head = try box.file("head", "\u{FEFF}" + longest + "\r")
        let tail = try box.file("tail", "\n{\"user\":\"u2\"}\n")
        // Two writes into the pipe, the first ending with the CR: the copy reads them apart.
        let result = try box.shell("(cat '\(head)'; sleep 0.2; cat '\(tail)') | \"$FLASHSALE\" --db \"$DB\" submit s1 --file -")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "2 enqueued (ids 1-2), 0 repeated, 0 skipped\n")
    }

    /// Skipped lines are said as they are found (stderr) or written into the report as
    /// they are (--json), not kept as values: a million of them took 336 MB (443 with
    /// --json), found by probing. Each is still listed, in order, with its reason.
    @Test func eachSkippedLineIsListedInOrderOnStderrOrInTheJSONReport() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let file = try box.file("mixed.ndjson", "{\"user\":\"a\"}\n{\"user\":\n{\"user\":\"b\"}\n{\"user\":\"c\",\"ip\":\"x\"}\n")
        let text = try box.run(["submit", "s1", "--file", file, "--skip-invalid"])
        #expect(text.stdout == "2 enqueued (ids 1-2), 0 repeated, 2 skipped\n")
        let lines = text.stderr.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].hasPrefix("flashsale: line 2 skipped: ") && lines[1].hasPrefix("flashsale: line 4 skipped: "),
                "\(text.stderr)")
        let json = try box.run(["submit", "s1", "--file", file, "--skip-invalid", "--json"])
        let skipped = try #require(json.json()["skipped"] as? [[String: Any]], "\(json.stdout)")
        #expect(skipped.map { $0["line"] as? Int } == [2, 4])
        #expect(skipped.map { $0["reason"] as? String } == lines.map { String($0.split(separator: " skipped: ", maxSplits: 1)[1]) })
        #expect(json.stderr.isEmpty)
        let none = try box.run(["submit", "s1", "--file", try box.file("good.ndjson", "{\"user\":\"d\"}\n"), "--skip-invalid", "--json"])
        #expect(none.stdout.contains("\"skipped\":[]"), "\(none.stdout)")
    }

    @Test(arguments: commandLineStores)
    func standardInputAndEmptyInputs(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "10"])
        #expect(try box.run(["submit", "s1", "--file", "-"], input: "{\"user\":\"a\"}\n").line == "1 enqueued (id 1), 0 repeated, 0 skipped")
        #expect(try box.run(["submit", "s1", "--file", "-"], input: "").line == "0 enqueued, 0 repeated, 0 skipped")
        #expect(try box.run(["submit", "s1", "--file", "-", "--format", "csv"], input: "user,ip\n").line == "0 enqueued, 0 repeated, 0 skipped")
        #expect(try box.run(["submit", "s1", "--file", "/no/such/file"]).status == 2)
    }

    /// A spreadsheet's CSV, with empty header cells at the end, reads the same in both paths.
    @Test func aHeaderWithTrailingEmptyCellsIsAccepted() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let sheet = "user,ip,,\r\nu1,203.0.113.7,,\r\nu2,,,\r\n"
        #expect(try box.run(["submit", "s1", "--file", "-"], input: sheet).line == "2 enqueued (ids 1-2), 0 repeated, 0 skipped")
        let streamed = try ndjson(box.run(["book", "s1", "--stream"], input: sheet).stdout)
        #expect(streamed.map { $0["ok"] as? Bool } == [true, true])
        let valued = try box.run(["submit", "s1", "--file", "-"], input: "user,,\nu3,,oops\n")
        #expect(valued.status == 65)
        #expect(valued.stderr.hasPrefix("flashsale: line 2: a value in column 3, which the header leaves without a name"))
    }

    /// A directory is the caller's mistake, as a missing file is: exit 2, one line naming it
    /// as given (relative to the process's working directory), or standard input.
    @Test func aDirectoryAsInputIsAUsageError() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        try FileManager.default.createDirectory(at: box.directory.appendingPathComponent("requests"), withIntermediateDirectories: false)
        let file = try box.spawn(["submit", "s1", "--file", "requests"])
        #expect(file.status == 2)
        #expect(file.stderr == "flashsale: cannot read requests: Is a directory\n")
        let stream = try box.shell("\"$FLASHSALE\" --db \"$DB\" book s1 --stream < .")
        #expect(stream.status == 2)
        #expect(stream.stderr == "flashsale: cannot read standard input: Is a directory\n")
        // Found by probing: "cannot read : No such file or directory".
        let empty = try box.spawn(["submit", "s1", "--file", ""])
        #expect(empty.status == 2)
        #expect(empty.stderr == "flashsale: cannot read an empty path: give a file, or - for standard input\n")
    }

    @Test func badFormatsAndArgumentsAreUsageErrors() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        #expect(try box.run(["submit", "s1", "--file", "-", "--format", "xml"], input: "").status == 2)
        #expect(try box.run(["submit", "s1", "u", "--file", "-"], input: "").status == 2)
    }

    @Test(arguments: commandLineStores)
    func keysInAFileAreIdempotentToo(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "10"])
        try box.run(["submit", "s1", "a", "--key", "k1"])
        let file = try box.file("k.ndjson", "{\"user\":\"a\",\"key\":\"k1\"}\n{\"user\":\"b\",\"key\":\"k2\"}\n{\"user\":\"b\",\"key\":\"k2\"}\n")
        #expect(try box.run(["submit", "s1", "--file", file]).line == "1 enqueued (id 2), 2 repeated, 0 skipped")
    }

    /// A key another user holds is not a malformed line: the whole file is refused, even
    /// with --skip-invalid, naming the line.
    @Test(arguments: [[], ["--skip-invalid"]])
    func aKeyOfAnotherUserRefusesTheWholeFile(options: [String]) throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        try box.run(["submit", "s1", "a", "--key", "k1"])
        let clash = try box.file("clash.ndjson", "{\"user\":\"c\"}\n{\"user\":\"mallory\",\"key\":\"k1\"}\n")
        let before = try box.dump()
        let refused = try box.run(["submit", "s1", "--file", clash] + options)
        #expect(refused.status == 4)
        #expect(refused.stderr.hasPrefix("flashsale: line 2: key k1 was already used by another user"))
        #expect(try box.dump() == before)
        #expect(try box.run(["status", "s1", "--json"]).json()["queued"] as? Int == 1)
    }

    /// Found by probing: a header without a user column was a malformed line like any
    /// other, so --skip-invalid, which its message advised, skipped the header and then every
    /// line after it, and exited 0 having enqueued nothing. No line can be read without the
    /// header: the file is refused, with or without --skip-invalid, and no advice to skip.
    @Test(arguments: [[], ["--skip-invalid"]])
    func aMalformedHeaderRefusesTheWholeFile(options: [String]) throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        let file = try box.file("no-user.csv", "usr,ip\nu1,192.0.2.1\nu2,192.0.2.2\n")
        let before = try box.dump()
        let refused = try box.run(["submit", "s1", "--file", file] + options)
        #expect(refused.status == 65)
        #expect(refused.stderr == "flashsale: line 1: the header has no user column; nothing was enqueued\n")
        #expect(refused.stdout.isEmpty)
        #expect(try box.dump() == before)
    }

    /// One key space per sale, for book, book --stream and submit alike.
    @Test(arguments: commandLineStores)
    func aKeyIsItsFirstUsersAcrossBookAndSubmit(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "10", "--per-user", "5"])
        let id = try box.run(["submit", "s1", "alice", "--key", "k1"]).line
        let refused = try box.run(["book", "s1", "bob", "--key", "k1", "--json"])
        #expect(refused.status == 4)
        #expect(try (refused.json()["error"] as? [String: Any])?["code"] as? String == "conflict")
        let streamed = try ndjson(box.run(["book", "s1", "--stream"], input: "{\"user\":\"bob\",\"key\":\"k1\"}\n").stdout)
        #expect(streamed.map { $0["error"] as? String } == ["conflict"])
        try box.run(["book", "s1", "carol", "--key", "k2"])
        #expect(try box.run(["submit", "s1", "dave", "--key", "k2"]).status == 4)
        let booking = try box.run(["book", "s1", "alice", "--key", "k1"]).line
        try box.run(["process"])
        #expect(try box.run(["request", id, "--json"]).json()["booking"] as? String == booking)
        #expect(try box.run(["status", "s1", "--json"]).json()["held"] as? Int == 2)
    }

    @Test(arguments: [
        ("nul", "{\"user\":\"a\u{0}b\"}\n"),
        ("utf8", "user\n\u{FFFF}"),
        ("big", "{\"user\":\"" + String(repeating: "x", count: 10_240) + "\"}\n"),
    ])
    func hostileLinesAreBadInputWithTheirLineNumber(name: String, contents: String) throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10"])
        var bytes = Array(contents.utf8)
        if name == "utf8" { bytes = Array("{\"user\":\"ok\"}\n{\"user\":\"a".utf8) + [0xFF, 0xFE] + Array("\"}\n".utf8) }
        let path = box.directory.appendingPathComponent("\(name).in").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let before = try box.dump()
        let result = try box.run(["submit", "s1", "--file", path])
        #expect(result.status == 65)
        #expect(result.stderr.hasPrefix("flashsale: line \(name == "utf8" ? 2 : 1): "))
        #expect(try box.dump() == before)
    }
}

@Suite struct StreamCommandTests {
    @Test(arguments: commandLineStores)
    func everyLineGetsOneDecisionInOrder(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "1"])
        let input = """
            {"user": "u1", "ip": "203.0.113.7"}
            {"user": "u2"}

            not json
            {"user": "u1"}

            """
        let result = try box.run(["book", "s1", "--stream"], input: input)
        #expect(result.status == 0)
        let lines = try ndjson(result.stdout)
        #expect(lines.map { $0["line"] as? Int } == [1, 2, 4, 5])
        #expect(lines[0]["ok"] as? Bool == true)
        #expect((lines[0]["booking"] as? String)?.hasPrefix("bk_") == true)
        #expect(lines[0]["expires_at"] as? String == "2026-11-24T15:05:00.000Z")
        #expect(lines[1]["error"] as? String == "sold_out")
        #expect(lines[2]["error"] as? String == "bad_input")
        #expect(lines[3]["error"] as? String == "user_limit")
        #expect(result.stdout.hasPrefix(#"{"line":1,"user":"u1","ok":true,"booking":"#))
        #expect(try box.run(["verify"]).stdout == "ok\n")
    }

    @Test(arguments: commandLineStores)
    func csvWithAHeaderAndKeys(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let input = "user,key\nu1,k1\nu1,k1\nu2,k1\n"
        let lines = try ndjson(try box.run(["book", "s1", "--stream"], input: input).stdout)
        #expect(lines.map { $0["line"] as? Int } == [2, 3, 4])
        #expect(lines[0]["booking"] as? String == lines[1]["booking"] as? String)
        #expect(lines[2]["error"] as? String == "conflict")
    }

    @Test func aHeaderOnlyOrEmptyInputAnswersNothing() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        for input in ["", "user,ip\r\n", "\n\n"] {
            let result = try box.run(["book", "s1", "--stream"], input: input)
            #expect(result.status == 0)
            #expect(result.stdout.isEmpty)
        }
    }

    @Test func perRequestOptionsAndUnknownSalesAreRefused() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        #expect(try box.run(["book", "s1", "u1", "--stream"], input: "").status == 2)
        #expect(try box.run(["book", "s1", "--stream", "--key", "k"], input: "").status == 2)
        #expect(try box.run(["book", "nope", "--stream"], input: "{\"user\":\"a\"}\n").status == 3)
        #expect(try box.run(["book", "s1", "u1", "--format", "csv"]).status == 2)
    }
}

@Suite struct WaitlistCommandTests {
    @Test(arguments: commandLineStores)
    func aWaitlistedRequestWaitsThenGetsTheCancelledItem(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "1", "--waitlist"])
        try box.run(["submit", "s1", "alice"])
        try box.run(["submit", "s1", "bob"])
        #expect(try box.run(["process"]).stdout == "1 accepted, 0 rejected, waiting: s1\n")
        #expect(try box.run(["request", "2", "--json"]).json()["position"] as? Int == 1)
        #expect(try box.run(["book", "s1", "mallory"]).status == 6)
        let held = try #require(try box.run(["request", "1", "--json"]).json()["booking"] as? String)
        try box.run(["cancel", "s1", held])
        #expect(try box.run(["book", "s1", "mallory"]).status == 6)
        #expect(try box.run(["process"]).stdout == "1 accepted, 0 rejected\n")
        #expect(try box.run(["request", "2", "--json"]).json()["status"] as? String == "accepted")
    }
}
