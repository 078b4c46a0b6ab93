import Foundation
import Testing
@testable import FlashSaleCLI

// `events`, `export` and `metrics` on a temp database; followers as processes of their own.

/// Every line of an output, without the final newline.
private func reportLines(_ text: String) -> [String] {
    text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
}

/// The `seq` of each NDJSON event line.
private func reportSeqs(_ text: String) throws -> [Int] {
    try ndjson(text).map { try #require($0["seq"] as? Int) }
}

/// `count` bookings made by one `process` run: the log then holds `count + 1` events
/// (sale_created first), more than one page of `events`, without `count` processes.
private func reportManyEvents(_ box: Sandbox, count: Int) throws {
    try box.run(["create-sale", "s1", "--inventory", String(count)])
    let file = try box.file("users.csv", "user\n" + (0..<count).map { "u\($0)\n" }.joined())
    #expect(try box.run(["submit", "s1", "--file", file]).status == 0)
    #expect(try box.run(["process"]).status == 0)
}

@Suite struct ReportEventsCommandTests {
    /// Each state change appends one event, in commit order, with the fields of its kind
    /// and no others; `--json` changes nothing (events are always NDJSON).
    @Test func eventsListTheLogOldestFirstWithTheFieldsOfEachKind() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "2"])
        let alice = try box.run(["book", "s1", "alice"]).line
        try box.run(["confirm", "s1", alice])
        let bob = try box.run(["book", "s1", "bob"]).line
        try box.run(["cancel", "s1", bob])
        let request = try box.run(["submit", "s1", "carol"]).line
        try box.run(["process"])
        let carol = try #require(try box.run(["request", request, "--json"]).json()["booking"] as? String)

        let result = try box.run(["events"])
        #expect(result.status == 0)
        let at = "\"at\":\"2026-11-24T15:00:00.000Z\",\"sale\":\"s1\""
        #expect(reportLines(result.stdout) == [
            "{\"seq\":1,\(at),\"kind\":\"sale_created\",\"detail\":\"inventory 2\"}",
            "{\"seq\":2,\(at),\"kind\":\"held\",\"booking\":\"\(alice)\",\"user\":\"alice\"}",
            "{\"seq\":3,\(at),\"kind\":\"booked\",\"booking\":\"\(alice)\",\"user\":\"alice\",\"detail\":\"confirm\"}",
            "{\"seq\":4,\(at),\"kind\":\"held\",\"booking\":\"\(bob)\",\"user\":\"bob\"}",
            "{\"seq\":5,\(at),\"kind\":\"cancelled\",\"booking\":\"\(bob)\",\"user\":\"bob\",\"detail\":\"cancel\"}",
            "{\"seq\":6,\(at),\"kind\":\"held\",\"booking\":\"\(carol)\",\"user\":\"carol\",\"request\":\(request)}",
        ])
        #expect(try box.run(["events", "--json"]).stdout == result.stdout)
    }

    @Test func eventsSaleAfterAndLimitSelect() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])  // 1
        try box.run(["create-sale", "s2", "--inventory", "5"])  // 2
        try box.run(["book", "s1", "alice"])                    // 3
        try box.run(["book", "s2", "bob"])                      // 4
        try box.run(["book", "s2", "carol"])                    // 5
        #expect(try reportSeqs(box.run(["events", "--sale", "s2"]).stdout) == [2, 4, 5])
        #expect(try reportSeqs(box.run(["events", "--after", "3"]).stdout) == [4, 5])
        #expect(try reportSeqs(box.run(["events", "--after", "0"]).stdout) == [1, 2, 3, 4, 5])
        #expect(try reportSeqs(box.run(["events", "--limit", "2"]).stdout) == [1, 2])
        #expect(try reportSeqs(box.run(["events", "--sale", "s2", "--after", "2", "--limit", "1"]).stdout) == [4])
        #expect(try box.run(["events", "--after", "5"]).stdout == "")
        // Past the log's end (another database's seq, or one from before a restore):
        // --follow would skip every event up to it, so it is refused, as HTTP's
        // Last-Event-ID is.
        for command in [["events", "--after", "6"], ["-q", "events", "--after", "6"]] {
            let past = try box.run(command)
            #expect(past.status == 3)
            #expect(past.stdout == "")
            #expect(past.stderr == "flashsale: no event 6 in this database, whose last is 5: --after takes a seq it printed\n")
        }
    }

    @Test func eventsRefuseAnUnknownSaleAndAMalformedSeq() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1"])
        let unknown = try box.run(["events", "--sale", "nope"])
        #expect(unknown.status == 3)
        #expect(unknown.stdout == "")
        #expect(try box.run(["events", "--after", "-1"]).status == 2)
        #expect(try box.run(["events", "--after", "x"]).status == 2)
        #expect(try box.run(["events", "--limit", "0"]).status == 2)
    }

    /// The command reads 1000 events per query: a log longer than that comes out whole,
    /// and an `--after`/`--limit` window across a page boundary too.
    @Test func eventsStreamALogLongerThanOnePage() throws {
        let box = try Sandbox()
        try reportManyEvents(box, count: 2100)
        #expect(try reportSeqs(box.run(["events"]).stdout) == Array(1...2101))
        #expect(try reportSeqs(box.run(["events", "--after", "700", "--limit", "1500"]).stdout) == Array(701...2101))
        #expect(try reportSeqs(box.run(["events", "--sale", "s1", "--after", "999", "--limit", "3"]).stdout) == [1000, 1001, 1002])
    }

    /// A consumer that saves the last seq it saw and restarts with `--after` it, in pages
    /// and after more writes in between, gets exactly the log: nothing lost, nothing twice.
    @Test func resumingWithAfterLosesAndRepeatsNothing() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10", "--per-user", "10"])
        for user in ["a", "b", "c"] { try box.run(["book", "s1", user]) }
        var seen: [Int] = []
        func consume(limit: Int) throws {
            let after = seen.last.map(String.init) ?? "0"
            seen += try reportSeqs(box.run(["events", "--after", after, "--limit", String(limit)]).stdout)
        }
        try consume(limit: 3)
        for user in ["d", "e"] { try box.run(["book", "s1", user]) }
        try consume(limit: 2)
        try consume(limit: 100)
        try box.run(["sweep"], now: "2026-11-24T15:10:00Z")  // five expired events
        try consume(limit: 100)
        try consume(limit: 100)  // nothing new: nothing printed
        #expect(seen == Array(1...11))
        #expect(seen == (try reportSeqs(box.run(["events"]).stdout)))
    }
}

@Suite struct ReportFollowCommandTests {
    /// `events --follow` prints an event that another flashsale process commits while it
    /// waits, and ends with exit 0 on SIGINT or SIGTERM.
    @Test(arguments: commandLineStores, [SIGTERM, SIGINT])
    func followPrintsAnotherProcesssEventAndExitsOnASignal(store: TestStore, signal: Int32) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"], now: nil)
        let follower = try box.start(["events", "--follow", "--after", "1"], now: nil)
        let booking = try box.run(["book", "s1", "alice"], now: nil).line
        #expect(follower.waitUntil { follower.stdout.contains(booking) })
        let event = try #require(try ndjson(follower.stdout).first)
        #expect(event["seq"] as? Int == 2)
        #expect(event["kind"] as? String == "held")
        #expect(event["booking"] as? String == booking)

        follower.child.send(signal)
        #expect(follower.waitForExit() == .exit(0))
        #expect(reportLines(follower.stdout).count == 1)
    }

    /// With `--limit`, a follower stops by itself once it has printed that many events.
    @Test(arguments: commandLineStores)
    func followWithLimitExitsAfterThatManyEvents(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "5"], now: nil)
        let follower = try box.start(["events", "--follow", "--after", "1", "--limit", "2"], now: nil)
        try box.run(["book", "s1", "alice"], now: nil)
        try box.run(["book", "s1", "bob"], now: nil)
        try box.run(["book", "s1", "carol"], now: nil)
        #expect(follower.waitForExit() == .exit(0))
        #expect(try reportSeqs(follower.stdout) == [2, 3])
    }

    /// `events --follow | head -n 1`: once head has its line and exits, the follower,
    /// idle with nothing new to print, notices and exits 0 (not 141 from SIGPIPE), so
    /// the pipeline ends.
    @Test func followEndsWithExitZeroWhenAnIdleReaderCloses() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let started = Date()
        let result = try box.shell(
            #"{ timeout 10 "$FLASHSALE" --db "$DB" events --follow; echo "events exited $?" >&2; } | head -n 1"#)
        #expect(result.stderr == "events exited 0\n")
        #expect(try reportSeqs(result.stdout) == [1])
        #expect(Date().timeIntervalSince(started) < 5)
    }

    /// The reader closes while a long log is still being written: the failed write
    /// (EPIPE) ends the follower with exit 0.
    @Test func followEndsWithExitZeroWhenTheReaderClosesMidStream() throws {
        let box = try Sandbox()
        try reportManyEvents(box, count: 2100)
        let result = try box.shell(
            #"{ timeout 10 "$FLASHSALE" --db "$DB" events --follow; echo "events exited $?" >&2; } | head -n 1"#)
        #expect(result.stderr == "events exited 0\n")
        #expect(try reportSeqs(result.stdout) == [1])
    }
}

/// A strict RFC 4180 reader: records end with CRLF, quoted fields may hold anything
/// with quotes doubled, nothing else may follow a closing quote. Nil if malformed.
private func reportParseCSV(_ text: String) -> [[String]]? {
    let scalars = Array(text.unicodeScalars)
    var records: [[String]] = []
    var record: [String] = []
    var field = ""
    var index = 0
    func next() -> Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }
    while index < scalars.count {
        if scalars[index] == "\"" {
            index += 1
            while true {
                guard let scalar = next() else { return nil }  // unterminated
                index += 1
                if scalar == "\"" {
                    guard next() == "\"" else { break }
                    index += 1
                }
                field.unicodeScalars.append(scalar)
            }
        } else {
            while let scalar = next(), scalar != ",", scalar != "\r", scalar != "\n" {
                if scalar == "\"" { return nil }  // a quote inside an unquoted field
                field.unicodeScalars.append(scalar)
                index += 1
            }
        }
        switch next() {
        case ",":
            record.append(field)
            field = ""
            index += 1
        case "\r":
            guard index + 1 < scalars.count, scalars[index + 1] == "\n" else { return nil }
            record.append(field)
            records.append(record)
            record = []
            field = ""
            index += 2
        default:
            return nil  // a bare LF, or no line end after the last record
        }
    }
    return records
}

@Suite struct ReportExportCommandTests {
    /// Quotes, commas, line breaks and formula-looking values survive a round trip
    /// through a strict CSV reader; formula-looking cells, and those that start with `'`,
    /// come back with a `'` in front.
    @Test func exportCSVRoundTripsAwkwardValuesAndDefusesFormulas() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "20"])
        let users = ["plain", #"say "hi""#, "a, b", "line1\nline2", "cr\r\nlf", "=1+1", "+cmd", "-2", "@x", "\tTab",
                     #"=HYPERLINK("http://x","a,b")"#, "ünïcode ✓", "'quoted already"]
        var ids: [String] = []
        for user in users {
            let result = try box.run(["book", "s1", "--user-agent", #"Mozilla "5", x"#, "--key", "k,\(ids.count)", "--", user])
            #expect(result.status == 0, "book \(user): \(result.stderr)")
            ids.append(result.line)
        }
        let result = try box.run(["export", "s1"])
        #expect(result.status == 0)
        let records = try #require(reportParseCSV(result.stdout), "not RFC 4180: \(result.stdout)")
        #expect(records.first == bookingFields)
        let rows = records.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(bookingFields, $0)) }
        #expect(rows.map { $0["id"] } == ids)
        let defused = ["=1+1", "+cmd", "-2", "@x", "\tTab", #"=HYPERLINK("http://x","a,b")"#, "'quoted already"]
        #expect(rows.map { $0["user"] ?? "?" } == users.map { defused.contains($0) ? "'" + $0 : $0 })
        #expect(rows.allSatisfy { $0["user_agent"] == #"Mozilla "5", x"# })
        #expect(rows.map { $0["key"] ?? "?" } == users.indices.map { "k,\($0)" })
        #expect(rows.allSatisfy { $0["ip"] == "" && $0["confirmed_at"] == "" && $0["status"] == "held" })
        #expect(result.stdout.contains("\r\n\(ids[5]),s1,\"'=1+1\",held,"))
    }

    /// `--format ndjson`: each line is exactly what `booking --json` prints for it.
    @Test func exportNDJSONPrintsTheBookingObjects() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        let ids = try ["alice", "=bob", "carol\n"].map { try box.run(["book", "s1", "--ip", "203.0.113.7", $0]).line }
        try box.run(["confirm", "s1", ids[0]])
        let result = try box.run(["export", "s1", "--format", "ndjson"])
        #expect(result.status == 0)
        let expected = try ids.map { try box.run(["booking", "s1", $0, "--json"]).stdout }.joined()
        #expect(result.stdout == expected)
        #expect(try box.run(["export", "s1", "--format", "ndjson", "--json"]).stdout == expected)
        // The contract: --json is NDJSON for export, unless CSV is asked for by name.
        #expect(try box.run(["export", "s1", "--json"]).stdout == expected)
        #expect(try box.run(["export", "s1", "--json", "--format", "csv"]).stdout.hasPrefix("id,sale,user,"))
    }

    /// `--status` filters as `bookings --status` does: a hold past its expiry is expired.
    @Test func exportStatusSelectsBookingsAsTheyAreNow() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5", "--hold", "1m"])
        let booked = try box.run(["book", "s1", "alice"]).line
        try box.run(["confirm", "s1", booked])
        let cancelled = try box.run(["book", "s1", "bob"]).line
        try box.run(["cancel", "s1", cancelled])
        let overdue = try box.run(["book", "s1", "carol"]).line
        let fresh = try box.run(["book", "s1", "dave"], now: "2026-11-24T15:00:30Z").line
        let later = "2026-11-24T15:01:00Z"  // carol's hold expires now, dave's does not
        func ids(_ status: String) throws -> [String] {
            try ndjson(box.run(["export", "s1", "--format", "ndjson", "--status", status], now: later).stdout)
                .map { $0["id"] as? String ?? "?" }
        }
        #expect(try ids("booked") == [booked])
        #expect(try ids("cancelled") == [cancelled])
        #expect(try ids("expired") == [overdue])
        #expect(try ids("held") == [fresh])
        let csv = try box.run(["export", "s1", "--status", "expired"], now: later).stdout
        #expect(reportParseCSV(csv)?.count == 2)
        #expect(try box.run(["export", "s1", "--status", "gone"]).status == 2)
    }

    @Test func exportRefusesAnUnknownSaleOrFormatBeforePrintingAnything() throws {
        let box = try Sandbox()
        try box.run(["init"])
        let unknown = try box.run(["export", "nope"])
        #expect(unknown.status == 3)
        #expect(unknown.stdout == "")
        try box.run(["create-sale", "s1", "--inventory", "1"])
        let format = try box.run(["export", "s1", "--format", "xlsx"])
        #expect(format.status == 2)
        #expect(format.stdout == "")
        #expect(try box.run(["export", "s1"]).stdout == "id,sale,user,status,created_at,expires_at,confirmed_at,cancelled_at,expired_at,ip,user_agent,key\r\n")
    }

    @Test func csvFieldsQuoteOnlyWhatNeedsIt() {
        #expect(CSVWriter.field("plain text") == "plain text")
        #expect(CSVWriter.field("") == "")
        #expect(CSVWriter.field("a\"b") == "\"a\"\"b\"")
        #expect(CSVWriter.field("=1+1") == "\"'=1+1\"")
        #expect(CSVWriter.field("\r") == "\"'\r\"")
        #expect(CSVWriter.field("a=b") == "a=b")
        #expect(CSVWriter.field("'a") == "\"''a\"")
        #expect(CSVWriter.field("2026-11-24T15:00:00.000Z") == "2026-11-24T15:00:00.000Z")
    }
}

@Suite struct ReportMetricsCommandTests {
    /// s1: 10 items, alice booked, bob's one-minute hold overdue, two queued requests, the
    /// first submitted at 15:00:10; s2: untouched. Metrics read at 15:01:30.250.
    private func twoSales() throws -> Sandbox {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "10", "--hold", "1m"])
        try box.run(["confirm", "s1", box.run(["book", "s1", "alice"]).line])
        try box.run(["book", "s1", "bob"])
        try box.run(["submit", "s1", "carol"], now: "2026-11-24T15:00:10Z")
        try box.run(["submit", "s1", "dave"], now: "2026-11-24T15:00:20Z")
        try box.run(["create-sale", "s2", "--inventory", "5"])
        return box
    }

    private let at = "2026-11-24T15:01:30.250Z"

    @Test func metricsPrintThePrometheusTextFormat() throws {
        let box = try twoSales()
        let result = try box.run(["metrics"], now: at)
        #expect(result.status == 0)
        #expect(result.stdout == """
            # HELP flashsale_total Items in the sale: available + held + booked.
            # TYPE flashsale_total gauge
            flashsale_total{sale="s1"} 10
            flashsale_total{sale="s2"} 5
            # HELP flashsale_available Items neither held nor booked.
            # TYPE flashsale_available gauge
            flashsale_available{sale="s1"} 8
            flashsale_available{sale="s2"} 5
            # HELP flashsale_held Items held and not yet expired by a command, overdue ones included.
            # TYPE flashsale_held gauge
            flashsale_held{sale="s1"} 1
            flashsale_held{sale="s2"} 0
            # HELP flashsale_booked Items booked (confirmed).
            # TYPE flashsale_booked gauge
            flashsale_booked{sale="s1"} 1
            flashsale_booked{sale="s2"} 0
            # HELP flashsale_overdue Holds past their expiry that no command has expired yet.
            # TYPE flashsale_overdue gauge
            flashsale_overdue{sale="s1"} 1
            flashsale_overdue{sale="s2"} 0
            # HELP flashsale_queued Requests in the sale's queue, not yet decided.
            # TYPE flashsale_queued gauge
            flashsale_queued{sale="s1"} 2
            flashsale_queued{sale="s2"} 0
            # HELP flashsale_oldest_queued_seconds How long the oldest queued request has waited; 0 when none.
            # TYPE flashsale_oldest_queued_seconds gauge
            flashsale_oldest_queued_seconds{sale="s1"} 80.25
            flashsale_oldest_queued_seconds{sale="s2"} 0
            # HELP flashsale_attempts_total Booking attempts: direct ones (book, book --stream) as decided, queued ones as submitted.
            # TYPE flashsale_attempts_total counter
            flashsale_attempts_total{sale="s1"} 4
            flashsale_attempts_total{sale="s2"} 0
            # HELP flashsale_declined_attempts_total Booking attempts declined, by error code: direct ones as decided, queued ones as process rejects them.
            # TYPE flashsale_declined_attempts_total counter
            flashsale_declined_attempts_total{sale="s1",reason="sold_out"} 0
            flashsale_declined_attempts_total{sale="s1",reason="user_limit"} 0
            flashsale_declined_attempts_total{sale="s1",reason="not_open"} 0
            flashsale_declined_attempts_total{sale="s1",reason="blocked"} 0
            flashsale_declined_attempts_total{sale="s1",reason="conflict"} 0
            flashsale_declined_attempts_total{sale="s2",reason="sold_out"} 0
            flashsale_declined_attempts_total{sale="s2",reason="user_limit"} 0
            flashsale_declined_attempts_total{sale="s2",reason="not_open"} 0
            flashsale_declined_attempts_total{sale="s2",reason="blocked"} 0
            flashsale_declined_attempts_total{sale="s2",reason="conflict"} 0

            """)
    }

    @Test func metricsSaleLimitsToOneSale() throws {
        let box = try twoSales()
        let lines = reportLines(try box.run(["metrics", "--sale", "s2"], now: at).stdout)
        #expect(lines.filter { !$0.hasPrefix("#") } == [
            "flashsale_total{sale=\"s2\"} 5", "flashsale_available{sale=\"s2\"} 5", "flashsale_held{sale=\"s2\"} 0",
            "flashsale_booked{sale=\"s2\"} 0", "flashsale_overdue{sale=\"s2\"} 0", "flashsale_queued{sale=\"s2\"} 0",
            "flashsale_oldest_queued_seconds{sale=\"s2\"} 0", "flashsale_attempts_total{sale=\"s2\"} 0",
        ] + ["sold_out", "user_limit", "not_open", "blocked", "conflict"].map {
            "flashsale_declined_attempts_total{sale=\"s2\",reason=\"\($0)\"} 0"
        })
        #expect(try box.run(["metrics", "--sale", "nope"]).status == 3)
    }

    @Test func metricsJSONHasOneObjectPerSale() throws {
        let box = try twoSales()
        #expect(try box.run(["metrics", "--json"], now: at).stdout == """
            {"sales":[{"sale":"s1","total":10,"available":8,"held":1,"booked":1,"overdue":1,"queued":2,"oldest_queued_seconds":80.25,\
            "attempts":4,"declined_attempts":{"sold_out":0,"user_limit":0,"not_open":0,"blocked":0,"conflict":0}},\
            {"sale":"s2","total":5,"available":5,"held":0,"booked":0,"overdue":0,"queued":0,"oldest_queued_seconds":0,\
            "attempts":0,"declined_attempts":{"sold_out":0,"user_limit":0,"not_open":0,"blocked":0,"conflict":0}}]}

            """)
    }

    @Test func metricsLabelValuesEscapeBackslashQuoteAndNewline() {
        #expect(MetricsCommand.labelValue("a\\b\"c\nd") == #"a\\b\"c\nd"#)
        #expect(MetricsCommand.labelValue("s1.sale-2") == "s1.sale-2")
    }
}
