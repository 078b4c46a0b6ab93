import Foundation
import NIOHTTP1
import Testing
import FlashSaleTestSupport

/// The suites that load the server (many clients, killed and stopped servers, live streams),
/// one test after another: on two shared cores, side by side they would only slow each other
/// into timeouts.
@Suite(.serialized) struct LoadTests {}

extension ServedDatabase {
    /// `flashsale --json ARGUMENTS`, which must exit 0, parsed.
    func json(_ arguments: [String], environment: [String: String] = [:]) throws -> Any {
        let result = try flashsale(["--json"] + arguments, environment: environment)
        guard result.status == .exit(0) else { throw Failed("\(arguments): \(result.status) \(result.stdout)\(result.stderr)") }
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    }

    /// Every booking of the sale, by id (`bookings SALE --json`).
    func bookings(_ sale: String = "s1") throws -> [String: [String: Any]] {
        guard let list = try json(["bookings", sale]) as? [[String: Any]] else { throw Failed("bookings is not an array") }
        return Dictionary(list.map { ($0["id"] as? String ?? "", $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// A counter of the sale (`status SALE --json`): `held`, `available`...
    func counter(_ name: String, of sale: String = "s1") throws -> Int {
        guard let status = try json(["status", sale]) as? [String: Any], let value = status[name] as? Int else {
            throw Failed("status \(sale) has no \(name)")
        }
        return value
    }

    /// Whether `verify` finds the counters and the bookings consistent.
    func verifies() throws -> Bool {
        try flashsale(["verify"]).stdout == "ok\n"
    }

    /// The `events` command's lines after `seq`, as it prints them.
    func eventLines(after seq: Int64 = 0) throws -> [String] {
        let result = try flashsale(["events", "--after", String(seq)])
        guard result.status == .exit(0) else { throw Failed("events: \(result.stderr)") }
        return result.stdout.split(separator: "\n").map(String.init)
    }

    /// The last event's seq (0 for an empty log).
    func latestSeq() throws -> Int64 {
        try eventLines().last.map(eventSeq) ?? 0
    }
}

/// The `seq` of one of the `events` command's lines.
func eventSeq(_ line: String) throws -> Int64 {
    guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
          let seq = object["seq"] as? Int else { throw Failed("not an event: \(line)") }
    return Int64(seq)
}

/// An object of a JSON body.
func object(_ body: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
        throw Failed("not a JSON object: \(body)")
    }
    return object
}

/// The JSON log lines of serve's stderr, each one object: a line that is not one is a
/// failure (a reader such as `jq` stops at it).
func logObjects(_ log: String) throws -> [[String: Any]] {
    try log.split(separator: "\n").map { try object(String($0)) }
}

extension ServedDatabase {
    /// serve's log lines that `include` takes, once there are `count` of them (its writer
    /// thread writes them a few milliseconds after their answers are counted), or as they
    /// are after 10 s.
    func logged(_ count: Int, where include: ([String: Any]) -> Bool) async throws -> [[String: Any]] {
        var lines: [[String: Any]] = []
        _ = try await eventually(within: .seconds(10), every: .milliseconds(10)) {
            lines = try logObjects(log).filter(include)
            return lines.count >= count
        }
        return lines
    }
}

/// `count` requests at once, each from its own task and connection; their answers in the
/// order of `index` (nil where the connection failed).
func concurrently(_ count: Int, _ request: @escaping @Sendable (Int) async throws -> HTTPAnswer) async -> [HTTPAnswer?] {
    await withTaskGroup(of: (Int, HTTPAnswer?).self) { group in
        for index in 0..<count { group.addTask { (index, try? await request(index)) } }
        var answers = [HTTPAnswer?](repeating: nil, count: count)
        for await (index, answer) in group { answers[index] = answer }
        return answers
    }
}

/// Milliseconds, for printing.
func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}
