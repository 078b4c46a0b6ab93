import Foundation
import Testing
import FlashSaleTestSupport
@testable import FlashSaleCLI

private let stracePath = installed("strace")

/// Every booking attempt is counted for bot defence and `metrics`, declined ones too, on
/// every path: `book`, `book --stream` and the queue.
@Suite struct AttemptCounterTests {
    /// Sale s1 of one item, held by "first".
    private func soldOut() throws -> Sandbox {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "1"])
        #expect(try box.run(["book", "s1", "first"]).status == 0)
        return box
    }

    private let browser = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"

    /// The samples of `metrics` for s1, without the HELP and TYPE lines.
    private func samples(_ box: Sandbox) throws -> [String] {
        try box.run(["metrics", "--sale", "s1"]).stdout.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
    }

    /// Found by probing: suspects sorts a sale's attempts in SQLite's temporary directory,
    /// and a full one was "the disk is full; nothing was written", which blamed the
    /// database's disk (with room to spare) and spoke of writes a report does not make. It
    /// names the directory; still 74.
    @Test(.enabled(if: RehearseTests.tmpfsMountable, "needs root to mount a tmpfs"))
    func suspectsWithAFullTemporaryDirectoryNamesIt() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "100000"])
        // Enough distinct requesters that the sorts spill out of memory.
        let lines = (0..<60_000).map { #"{"user":"u\#($0)","ip":"10.\#($0 / 65536).\#($0 / 256 % 256).\#($0 % 256)","user_agent":"agent \#($0)"}"# }
        #expect(try box.run(["book", "s1", "--stream"], input: lines.joined(separator: "\n") + "\n").status == 0)
        let tiny = try TmpfsMount(megabytes: 1, owner: "root")
        let result = try box.spawn(["suspects", "s1"], environment: ["TMPDIR": tiny.path])
        #expect(result.status == 74)
        #expect(result.stderr == "flashsale: no room to sort the sale's attempts in \(tiny.path) (SQLITE_TMPDIR, else TMPDIR, "
                + "else /var/tmp): point TMPDIR at a disk with room\n")
        #expect(try box.spawn(["suspects", "s1"]).status == 0)
    }

    @Test func tenThousandDeclinedStreamAttemptsFromOneAddressPutItFirstInSuspects() throws {
        let box = try soldOut()
        // Thirty buyers who came too late, each from an address of their own...
        let people = (0..<30).map { #"{"user":"person\#($0)","ip":"198.51.100.\#($0)","user_agent":"\#(browser)"}"# }
        // ...two hundred behind one carrier's NAT, each trying once (found by probing: they
        // tied with the script below, and were listed first)...
        let natted = (0..<200).map { #"{"user":"mobile\#($0)","ip":"100.64.9.9","user_agent":"\#(browser)"}"# }
        // ...and a script hammering the sold-out sale from one address under 10,000 names.
        let script = (0..<10_000).map { #"{"user":"u\#($0)","ip":"203.0.113.66","user_agent":"\#(browser)"}"# }
        let stream = try box.run(["book", "s1", "--stream"], input: (people + natted + script).joined(separator: "\n") + "\n")
        #expect(stream.status == 0)
        #expect(stream.stdout.components(separatedBy: "\"error\":\"sold_out\"").count - 1 == 10_230)

        let rows = try box.run(["suspects", "s1", "--json"]).jsonArray()
        let top = try #require(rows.first)
        #expect(top["kind"] as? String == "ip")
        #expect(top["value"] as? String == "203.0.113.66")
        let reasons = try #require(top["reasons"] as? [String])
        #expect(reasons.dropFirst() == ["10000 declines", "10000 requests within 10 s"])
        // The counters keep a sample of the 10,000 names: an estimate, within a quarter.
        let users = try #require(reasons.first.flatMap { Int($0.split(separator: " ")[1]) })
        #expect(reasons.first == "about \(users) distinct users" && (7_500...12_500).contains(users))
        #expect(!rows.contains { ($0["value"] as? String)?.hasPrefix("198.51.100.") ?? false })
        #expect(rows.map { $0["value"] as? String } == ["203.0.113.66", "100.64.9.9"], "\(rows)")
    }

    @Test func aDeclinedBookLeavesACounter() throws {
        let box = try soldOut()
        let declined = try box.run(["book", "s1", "second", "--ip", "203.0.113.5"])
        #expect(declined.status == 6)
        let lines = try samples(box)
        #expect(lines.contains("flashsale_attempts_total{sale=\"s1\"} 2"))
        #expect(lines.contains("flashsale_declined_attempts_total{sale=\"s1\",reason=\"sold_out\"} 1"))
        #expect(lines.contains("flashsale_declined_attempts_total{sale=\"s1\",reason=\"user_limit\"} 0"))
    }

    /// A declined `book` wrote nothing before it was counted, and so cost no disk sync; its
    /// counter is telemetry and is still written without one, at commit or at exit.
    @Test(.enabled(if: stracePath != nil, "needs strace"))
    func aDeclinedBookCostsNoDiskSync() throws {
        let box = try soldOut()
        func syncs(_ arguments: [String]) throws -> (status: Int32, syncs: Int) {
            let trace = box.directory.appendingPathComponent("trace-\(UUID().uuidString)").path
            let result = try box.execute(try #require(stracePath),
                                         ["-f", "-qq", "-e", "trace=fsync,fdatasync,sync_file_range,msync", "-o", trace,
                                          flashsaleBinary, "--db", box.database] + arguments,
                                         environment: ["FLASHSALE_NOW": T0])
            let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
            return (result.status, lines.filter { $0.contains("sync") }.count)
        }
        let declined = try syncs(["book", "s1", "another", "--ip", "203.0.113.5"])
        #expect(declined.status == 6)
        #expect(declined.syncs == 0)
        // The same command on a sale with stock is durable: the count above is no accident.
        try box.run(["create-sale", "s2", "--inventory", "5"])
        let durable = try syncs(["book", "s2", "another"])
        #expect(durable.status == 0)
        #expect(durable.syncs > 0)
        // Both attempts counted, and the file is sound.
        #expect(try samples(box).contains("flashsale_attempts_total{sale=\"s1\"} 2"))
        #expect(try box.run(["verify"]).status == 0)
    }

    /// A stream's group of declines commits its counts alone, without a sync, like a
    /// lone declined book.
    @Test(.enabled(if: stracePath != nil, "needs strace"))
    func aStreamOfDeclinesCostsNoDiskSync() throws {
        let box = try soldOut()
        let input = try box.file("late.ndjson", (0..<100).map { #"{"user":"late\#($0)"}"# }.joined(separator: "\n") + "\n")
        let trace = box.directory.appendingPathComponent("trace").path
        let result = try box.shell("""
            strace -f -qq -e trace=fsync,fdatasync,sync_file_range,msync -o "\(trace)" "$FLASHSALE" --db "$DB" book s1 --stream < "\(input)"
            """)
        #expect(result.status == 0)
        #expect(result.stdout.components(separatedBy: "sold_out").count - 1 == 100)
        #expect(try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").filter { $0.contains("sync") }.isEmpty)
        #expect(try samples(box).contains("flashsale_declined_attempts_total{sale=\"s1\",reason=\"sold_out\"} 100"))
    }

    @Test func theQueueCountsItsAttemptsWhenSubmittedAndItsDeclinesWhenProcessed() throws {
        let box = try soldOut()
        let file = try box.file("r.ndjson", (0..<3).map { #"{"user":"q\#($0)","ip":"203.0.113.9"}"# }.joined(separator: "\n") + "\n")
        #expect(try box.run(["submit", "s1", "--file", file]).status == 0)
        #expect(try box.run(["submit", "s1", "first"]).status == 0)
        #expect(try samples(box).contains("flashsale_attempts_total{sale=\"s1\"} 5"))
        #expect(try box.run(["process"]).status == 0)
        let lines = try samples(box)
        #expect(lines.contains("flashsale_attempts_total{sale=\"s1\"} 5"))
        #expect(lines.contains("flashsale_declined_attempts_total{sale=\"s1\",reason=\"sold_out\"} 3"))
        #expect(lines.contains("flashsale_declined_attempts_total{sale=\"s1\",reason=\"user_limit\"} 1"))
    }
}
