import Foundation
import Glibc
import Testing
@testable import FlashSaleCLI
import FlashSaleCore
import FlashSalePostgres
@testable import FlashSaleStore
import FlashSaleTestSupport

/// 2026-11-24T15:00:00Z, the clock most tests run at.
let T0 = "2026-11-24T15:00:00Z"

/// What a command did: how it ended and what it printed.
struct Result {
    let termination: Termination
    let stdout: String
    let stderr: String

    init(termination: Termination, stdout: String, stderr: String) {
        self.termination = termination
        self.stdout = stdout
        self.stderr = stderr
    }

    init(status: Int32, stdout: String = "", stderr: String = "") {
        self.init(termination: .exit(status), stdout: stdout, stderr: stderr)
    }

    /// The exit status; a process killed by a signal shows as a shell shows it.
    var status: Int32 { termination.status }

    /// stdout's JSON document.
    func json() throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8))
        return try #require(object as? [String: Any], "stdout is not a JSON object: \(stdout)")
    }

    func jsonArray() throws -> [[String: Any]] {
        let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8))
        return try #require(object as? [[String: Any]], "stdout is not a JSON array: \(stdout)")
    }

    var line: String { stdout.trimmingCharacters(in: .newlines) }
}

/// What a stream received, as text; `isTerminal` for one that says it is a terminal.
final class Captured: TextSink {
    var text = ""
    let isTerminal: Bool
    init(isTerminal: Bool = false) {
        self.isTerminal = isTerminal
    }
    func write(_ text: String) { self.text += text }
    func flush() {}
    var endsMidLine: Bool { text.utf8.last.map { $0 != UInt8(ascii: "\n") } ?? false }
}

/// A temporary directory with a database path, where commands run as a user would run them:
/// `run` in this process through `CLI.run` (as sqlite-utils tests its CLI with CliRunner),
/// `spawn` as a process of its own (Subprocess.swift), with the same parameters and `Result`.
/// In this process a relative path is relative to the test runner's directory, not the
/// sandbox: a command given one runs with `spawn`.
/// On PostgreSQL, `database` is the tests' server's URL with a schema of the sandbox's own,
/// dropped with it, so that tests run in parallel on one server.
final class Sandbox: @unchecked Sendable {
    let directory: URL
    let database: String
    let store: TestStore
    private let schema: String?

    /// `url`: a PostgreSQL database of the test's own making instead (another server, another
    /// database), which the test removes itself.
    init(_ store: TestStore = .sqlite, url: String? = nil) throws {
        self.store = store
        directory = sandboxRoot.appendingPathComponent("flashsale-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        switch store {
        case .postgres where url != nil:
            schema = nil
            database = url ?? ""
        case .sqlite:
            schema = nil
            database = directory.appendingPathComponent("sale.db").path
        case .postgres:
            let schema = TestPostgres.newSchema()
            database = try #require(TestPostgres.url(schema: schema), "FLASHSALE_TEST_PG is not set")
            self.schema = schema
        }
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
        if let schema { TestPostgres.dropSchema(schema) }
    }

    /// Runs `flashsale --db DATABASE ARGS...` in this process with the clock at `now` (nil:
    /// the real clock), `input` on standard input (nil: an empty one) and stdout captured,
    /// or written to `stdout` when given (then `Result.stdout` is empty).
    @discardableResult
    func run(_ arguments: [String], now: String? = T0, database: Bool = true, environment: [String: String] = [:],
             input: String? = nil, stdout: TextSink? = nil) throws -> Result {
        try run(bytes: arguments.map { Array($0.utf8) }, now: now, database: database, environment: environment,
                input: input, stdout: stdout)
    }

    /// `run` with arguments as bytes, which need not be UTF-8 (or free of NUL) as a Swift
    /// String's are.
    @discardableResult
    func run(bytes arguments: [[UInt8]], now: String? = T0, database: Bool = true, environment: [String: String] = [:],
             input: String? = nil, stdout: TextSink? = nil) throws -> Result {
        // A follower blocks SIGINT and SIGTERM and runs until one comes: in this process it
        // would hold a test thread, and a signal would stop the test runner.
        try #require(!arguments.contains(Array("--follow".utf8)), "a follower runs as a process: use start")
        let stdin = try openInput(input)
        defer { close(stdin) }
        let out = Captured()
        let err = Captured()
        let status = CLI.run(rawArguments: (database ? [Array("--db".utf8), Array(self.database.utf8)] : []) + arguments,
                             environment: commandEnvironment(now: now, environment).mapValues { Array($0.utf8) },
                             stdin: stdin, stdout: stdout ?? out, stderr: err, linked: Sandbox.inProcess)
        return Result(status: status, stdout: out.text, stderr: err.text)
    }

    /// What the test process links: the PostgreSQL store as `flashsale-serve` does, and never
    /// the real hand-off, whose exec would replace the test runner with the server. A test
    /// of serve runs it as a process (`start`, `spawn`).
    static let inProcess = Linked(
        serve: { _ in
            Issue.record("serve ran in the test process: run it with start or spawn")
            throw FlashSaleError.internalFailure("serve does not run in the test process")
        },
        databaseServer: PostgresLocation.opening)

    /// The variables a command gets: the clock at `now`, then `environment`.
    func commandEnvironment(now: String?, _ environment: [String: String]) -> [String: String] {
        var variables = now.map { ["FLASHSALE_NOW": $0] } ?? [:]
        variables.merge(environment) { _, new in new }
        return variables
    }

    /// A descriptor reading `input`, or an empty input (/dev/null) for nil.
    func openInput(_ input: String?) throws -> Int32 {
        let path = try input.map { text in try file("stdin-\(UUID().uuidString)", text) } ?? "/dev/null"
        defer { if input != nil { unlink(path) } }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return descriptor
    }

    /// Writes `contents` to a file in the sandbox; returns its path.
    func file(_ name: String, _ contents: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The whole database as text: its schema version, its schema, and every row of every
    /// table (sqlite_sequence too) with every column and the rowid, in key order. Read from
    /// the schema, so a table or column a migration adds is in it without a change here:
    /// equal dumps mean an unchanged database.
    func dump() throws -> String {
        let connection = try Connection(path: database, busyTimeout: .seconds(5))
        var lines = try connection.rows("PRAGMA user_version") { "user_version \($0.int64(0))" }
        lines += try connection.rows("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name") {
            "\($0.text(0)) \($0.text(1)): \($0.optionalText(2) ?? "")"
        }
        let tables = try connection.rows("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name") { $0.text(0) }
        for table in tables {
            let columns = try connection.rows("SELECT name FROM pragma_table_info(:table) ORDER BY cid", [":table": .text(table)]) {
                quotedIdentifier($0.text(0))
            }
            let key = try connection.rows("SELECT name FROM pragma_table_info(:table) WHERE pk > 0 ORDER BY pk", [":table": .text(table)]) {
                quotedIdentifier($0.text(0))
            }
            let withoutRowid = try connection.firstRow("SELECT wr FROM pragma_table_list(:table)", [":table": .text(table)]) { $0.int64(0) == 1 } ?? false
            let selected = (withoutRowid ? columns : ["rowid"] + columns).map { "quote(\($0))" }.joined(separator: " || '|' || ")
            let order = withoutRowid ? key.joined(separator: ", ") : "rowid"
            // Test code: the names come from the schema itself, quoted as identifiers.
            lines += try connection.rows("SELECT \(selected) FROM \(quotedIdentifier(table)) ORDER BY \(order)") { "\(table): \($0.text(0))" }
        }
        return lines.joined(separator: "\n")
    }

    /// The first column of the first row of `sql`, an integer (-1 for no row).
    func count(_ sql: String) throws -> Int64 {
        try Connection(path: database, busyTimeout: .seconds(5)).firstRow(sql) { $0.int64(0) } ?? -1
    }

    /// The first column of the first row of `sql`, as text (empty for no row).
    func text(_ sql: String) throws -> String {
        try Connection(path: database, busyTimeout: .seconds(5)).firstRow(sql) { $0.text(0) } ?? ""
    }
}

/// A `Sandbox.dump` without the rows of the attempt counters, which a declined booking adds to.
func withoutAttemptCounts(_ dump: String) -> String {
    dump.split(separator: "\n", omittingEmptySubsequences: false)
        .filter { !$0.hasPrefix("attempt_counter: ") }
        .joined(separator: "\n")
}

/// Where sandboxes go: $TMPDIR when set, else memory (/dev/shm) where there is one. No test
/// here can tell a synced write from an unsynced one (a kill -9 loses neither), and on a
/// disk the fsync of every commit was a third of the suite's time.
private let sandboxRoot: URL = {
    let memory = "/dev/shm"
    guard ProcessInfo.processInfo.environment["TMPDIR"] == nil, FileManager.default.isWritableFile(atPath: memory) else {
        return FileManager.default.temporaryDirectory
    }
    return URL(fileURLWithPath: memory)
}()

private func quotedIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
