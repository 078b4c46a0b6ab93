import Foundation
import Testing
@testable import FlashSaleStore

/// The `flashsale` binary `swift test` built beside this test bundle ($FLASHSALE_BIN overrides).
let flashsaleBinary: String = {
    if let path = ProcessInfo.processInfo.environment["FLASHSALE_BIN"] { return path }
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("flashsale")
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside.path }
    // Under some runners argv[0] is a helper: fall back to the package's debug build.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/flashsale").path
}()

/// 2026-11-24T15:00:00Z, the clock most tests run at.
let T0 = "2026-11-24T15:00:00Z"

struct Result {
    let status: Int32
    let stdout: String
    let stderr: String

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

/// A temporary directory with a database path, where commands run as a user would run them.
final class Sandbox: @unchecked Sendable {
    let directory: URL
    let database: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        database = directory.appendingPathComponent("sale.db").path
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `flashsale --db DATABASE ARGS...` with the clock at `now` (nil: the real clock).
    /// Its stdout goes to `output` when given (then `Result.stdout` is empty).
    @discardableResult
    func run(_ arguments: [String], now: String? = T0, database: Bool = true, environment: [String: String] = [:],
             input: String? = nil, output: FileHandle? = nil) throws -> Result {
        var env = ["PATH": "/usr/bin:/bin"]
        if let now { env["FLASHSALE_NOW"] = now }
        env.merge(environment) { _, new in new }
        let stdin = try input.map { text in try file("stdin-\(UUID().uuidString)", text) }
        defer { stdin.map { try? FileManager.default.removeItem(atPath: $0) } }
        return try execute(flashsaleBinary, (database ? ["--db", self.database] : []) + arguments, environment: env, stdin: stdin,
                           output: output)
    }

    /// Writes `contents` to a file in the sandbox; returns its path.
    func file(_ name: String, _ contents: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Starts `flashsale --db DATABASE ARGS...` with stdin from `inputPath`, kills it with
    /// SIGKILL after `killAfter` microseconds, and returns what it printed before dying.
    /// `now` fixes its clock (nil: the real clock).
    func runKilled(_ arguments: [String], inputPath: String? = nil, now: String? = nil, killAfter microseconds: UInt32) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: flashsaleBinary)
        process.arguments = ["--db", database] + arguments
        process.environment = ["PATH": "/usr/bin:/bin"].merging(now.map { ["FLASHSALE_NOW": $0] } ?? [:]) { _, new in new }
        let outURL = directory.appendingPathComponent("killed-\(UUID().uuidString).out")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = try inputPath.map { try FileHandle(forReadingFrom: URL(fileURLWithPath: $0)) } ?? FileHandle.nullDevice
        try process.run()
        usleep(microseconds)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try out.close()
        defer { try? FileManager.default.removeItem(at: outURL) }
        return String(decoding: try Data(contentsOf: outURL), as: UTF8.self)
    }

    /// Runs a shell command line with `$FLASHSALE` and `$DB` set: for bytes that a Swift
    /// String cannot carry into argv (invalid UTF-8).
    func shell(_ script: String, now: String = T0) throws -> Result {
        try execute("/bin/sh", ["-c", script],
                    environment: ["FLASHSALE": flashsaleBinary, "DB": database, "FLASHSALE_NOW": now, "PATH": "/usr/bin:/bin"], stdin: nil)
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

    private func execute(_ executable: String, _ arguments: [String], environment: [String: String], stdin: String?,
                         output: FileHandle? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = directory
        // Files, not pipes: nothing can fill up and block while the child runs.
        let id = UUID().uuidString
        let outURL = directory.appendingPathComponent("\(id).out")
        let errURL = directory.appendingPathComponent("\(id).err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = output ?? out
        process.standardError = err
        process.standardInput = try stdin.map { try FileHandle(forReadingFrom: URL(fileURLWithPath: $0)) } ?? FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                      stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}

private func quotedIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
