import Foundation
import Testing
import Glibc
import NIOHTTP1
import FlashSaleTestSupport
import FlashSaleCore
import FlashSaleStore

/// A new database in a temporary directory (or a schema of its own on the tests'
/// PostgreSQL server), and `flashsale serve` on it: the buyer API on a free loopback port,
/// the admin API on another, its log in a file. Stopped (SIGKILL if it must) and removed
/// when the test lets go of it.
final class ServedDatabase {
    let directory: String
    let database: String
    private let schema: String?
    private(set) var port = 0
    private(set) var adminPort = 0
    private(set) var server: ChildProcess?
    let logPath: String

    /// Header authentication (`X-User`) unless `arguments` says otherwise.
    static let headerAuth = ["--auth", "header", "--user-header", "X-User"]

    init(_ store: ServedStore = .sqlite) throws {
        directory = try ServedDatabase.temporaryDirectory()
        logPath = directory + "/serve.log"
        switch store {
        case .sqlite:
            schema = nil
            database = directory + "/sale.db"
        case .postgres:
            let schema = TestPostgres.newSchema()
            guard let url = TestPostgres.url(schema: schema) else { throw Failed("FLASHSALE_TEST_PG is not set") }
            self.schema = schema
            database = url
        }
    }

    /// A database at `url` that another owns (a test's own PostgreSQL cluster, which goes
    /// with it), served the same way.
    init(url: String) throws {
        directory = try ServedDatabase.temporaryDirectory()
        database = url
        schema = nil
        logPath = directory + "/serve.log"
    }

    /// A second server on `other`'s database (started by `start`), with a directory and a
    /// log of its own; the database goes when `other` does.
    init(sharing other: ServedDatabase) throws {
        directory = try ServedDatabase.temporaryDirectory()
        database = other.database
        schema = nil
        logPath = directory + "/serve.log"
    }

    private static func temporaryDirectory() throws -> String {
        var template = Array((FileManager.default.temporaryDirectory.path + "/flashsale-serve-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        return String(cString: made)
    }

    deinit {
        if let server, server.isRunning {
            server.send(SIGKILL)
            server.wait()
        }
        try? FileManager.default.removeItem(atPath: directory)
        if let schema { TestPostgres.dropSchema(schema) }
    }

    /// `flashsale --db DB ARGUMENTS`, run to its end: its status, stdout and stderr.
    @discardableResult
    /// `openFiles`: its limit of descriptors, soft and hard (through prlimit(1)).
    func flashsale(_ arguments: [String], environment: [String: String] = [:],
                   openFiles: Int? = nil) throws -> (status: Termination, stdout: String, stderr: String) {
        try launch(arguments, environment: environment, openFiles: openFiles).finish()
    }

    /// `command` run under a limit of `openFiles` descriptors, soft and hard, if given.
    private static func limited(_ command: [String], openFiles: Int?) -> [String] {
        openFiles.map { ["/usr/bin/prlimit", "--nofile=\($0):\($0)"] + command } ?? command
    }

    /// `flashsale --db DB ARGUMENTS`, started and left running (for commands that must run
    /// at the same time as the server's clients).
    func launch(_ arguments: [String], environment: [String: String] = [:], openFiles: Int? = nil) throws -> Command {
        let out = directory + "/cli-\(UUID().uuidString)"
        let stdout = open(out + ".out", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let stderr = open(out + ".err", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let stdin = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { [stdout, stderr, stdin].forEach { close($0) } }
        let command = ServedDatabase.limited([flashsaleBinary, "--db", database] + arguments, openFiles: openFiles)
        let child = try ChildProcess(command[0], Array(command.dropFirst()), environment: environment,
                                     directory: directory, stdin: stdin, stdout: stdout, stderr: stderr)
        return Command(child: child, output: out)
    }

    /// A command started by `launch`.
    final class Command {
        private let child: ChildProcess
        private let output: String

        fileprivate init(child: ChildProcess, output: String) {
            self.child = child
            self.output = output
        }

        /// Waits for it to end: its status, stdout and stderr.
        func finish() -> (status: Termination, stdout: String, stderr: String) {
            let status = child.wait()
            defer { unlink(output + ".out"); unlink(output + ".err") }
            return (status, ServedDatabase.text(output + ".out"), ServedDatabase.text(output + ".err"))
        }

        /// `finish()`, without holding one of Swift's few cooperative threads while it runs.
        func finished() async -> (status: Termination, stdout: String, stderr: String) {
            while child.isRunning { try? await Task.sleep(for: .milliseconds(2)) }
            return finish()
        }
    }

    /// `create-sale SALE --inventory N ...` at the real clock, checked; with a hold of an
    /// hour unless `more` gives one. The server decides at the real clock too, and in a full
    /// `swift test` on two loaded cores a test has waited over five minutes between two
    /// requests, long enough for a hold of the default five to expire under it.
    func createSale(_ sale: String = "s1", inventory: Int64, _ more: [String] = []) throws {
        let hold = more.contains("--hold") ? [] : ["--hold", "1h"]
        let result = try flashsale(["create-sale", sale, "--inventory", String(inventory)] + hold + more)
        guard result.status == .exit(0) else { throw Failed("create-sale: \(result.stderr)") }
    }

    /// Starts `flashsale serve` and waits until its admin listener says the database answers
    /// and its buyer listener accepts connections. A port another process took between
    /// `freePort` and the server's bind (an outgoing connection's, as likely as not) is
    /// not the test's failure: the server starts again on others. `meanwhile` runs each
    /// time it looks.
    /// `openFiles`: the server's limit of descriptors, soft and hard (through prlimit(1)).
    func start(_ arguments: [String] = ServedDatabase.headerAuth, environment: [String: String] = [:], openFiles: Int? = nil,
               meanwhile: () throws -> Void = {}) throws {
        for _ in 0..<5 {
            let logged = log.utf8.count
            port = try freePort()
            // Two draws may give one port (CI: "--admin-listen … is also a --listen address").
            repeat { adminPort = try freePort() } while adminPort == port
            let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            let stdin = open("/dev/null", O_RDONLY | O_CLOEXEC)
            defer { close(log); close(stdin) }
            let command = [flashsaleBinary, "--db", database, "serve", "--listen", "127.0.0.1:\(port)",
                           "--admin-listen", "127.0.0.1:\(adminPort)"] + arguments
            let limited = ServedDatabase.limited(command, openFiles: openFiles)
            let server = try ChildProcess(limited[0], Array(limited.dropFirst()),
                                          environment: environment, directory: directory, stdin: stdin, stdout: log, stderr: log)
            self.server = server
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                guard server.isRunning else { break }
                try meanwhile()
                if (try? healthy()) == true, (try? connect(to: port)).map({ close($0) }) != nil, socketIsThere(arguments) { return }
                usleep(20_000)
            }
            guard !server.isRunning else { throw Failed("serve did not answer /healthz within 20 s: \(self.log)") }
            guard String(self.log.utf8.dropFirst(logged))?.contains(": address already in use") == true else { break }
        }
        throw Failed("serve ended at start-up: \(self.log)")
    }

    /// Whether the `--socket` among `arguments`, if any, is at its path: serve puts it there
    /// once it listens, which may be after the other listeners.
    private func socketIsThere(_ arguments: [String]) -> Bool {
        guard let option = arguments.firstIndex(of: "--socket"), arguments.indices.contains(option + 1) else { return true }
        return access(arguments[option + 1], F_OK) == 0
    }

    /// Whether `GET /healthz` answers 200. Through a blocking socket, not the async client:
    /// `start` is synchronous and may run on one of the concurrency pool's threads (two on
    /// a two-core machine), and waiting there for a task that needs a pool thread could
    /// wait forever once as many tests start servers at once.
    private func healthy() throws -> Bool {
        let socket = try connect(to: adminPort)
        defer { close(socket) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard write(socket, request, request.count) == request.count else { return false }
        let expected = Array("HTTP/1.1 200".utf8)
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64)
        while answer.count < expected.count {
            let got = read(socket, &chunk, chunk.count)
            guard got > 0 else { return false }
            answer += chunk[..<got]
        }
        return answer.starts(with: expected)
    }

    /// A blocking TCP connection to 127.0.0.1:`port`; the caller closes it.
    private func connect(to port: Int) throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw POSIXError(.EIO) }
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else {
            close(socket)
            throw POSIXError(.ECONNREFUSED)
        }
        return socket
    }

    /// Sends `signal` and waits for the server to end (SIGKILL after 20 s).
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM) -> Termination? {
        guard let server else { return nil }
        server.send(signal)
        let deadline = Date().addingTimeInterval(20)
        while server.isRunning, Date() < deadline { usleep(10_000) }
        if server.isRunning {
            server.send(SIGKILL)
            server.wait()
            return nil
        }
        return server.wait()
    }

    /// Waits for the server to end by itself, for at most `limit`: how it ended, or nil if
    /// it still runs. Async, so that the test's clients go on running meanwhile.
    func exit(within limit: Duration) async -> Termination? {
        guard let server else { return nil }
        // Read off the clock, not counted in looks (`eventually`): tests hold serve to this
        // limit (7.5 s tells a stop delayed by one busy timeout from one delayed by two).
        let deadline = ContinuousClock.now + limit
        while server.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(5)) }
        return server.isRunning ? nil : server.wait()
    }

    /// The admin listener's `/metrics`: each sample's value by its name and labels, as
    /// written (`flashsale_http_group_commits_total`, `flashsale_held{sale="s1"}`).
    func metrics() async throws -> [String: Double] {
        let answer = try await HTTPClient.send(.GET, "/metrics", port: adminPort)
        guard answer.status == 200 else { throw Failed("/metrics: \(answer.status) \(answer.body)") }
        var samples: [String: Double] = [:]
        for line in answer.body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }

    /// A buyer request to the buyer listener; a body is `application/json` unless `headers`
    /// name another type.
    func send(_ method: HTTPMethod, _ path: String, user: String? = nil, headers: [(String, String)] = [],
              body: String? = nil) async throws -> HTTPAnswer {
        try await ServedDatabase.send(method, path, port: port, user: user, headers: headers, body: body)
    }

    /// `send`, for tasks that have only the port.
    static func send(_ method: HTTPMethod, _ path: String, port: Int, user: String? = nil, headers: [(String, String)] = [],
                     body: String? = nil) async throws -> HTTPAnswer {
        let typed = body == nil || headers.contains { $0.0.lowercased() == "content-type" }
        return try await HTTPClient.send(method, path, port: port,
                                         headers: (user.map { [("X-User", $0)] } ?? []) + headers
                                             + (typed ? [] : [("Content-Type", "application/json")]),
                                         body: body)
    }

    /// Everything the server has logged so far.
    var log: String { ServedDatabase.text(logPath) }

    static func text(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }
}

/// 127.0.0.1:`port`, as the socket calls take it.
private func loopback(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return address
}

/// The stores the server's tests of the rules run on: PostgreSQL joins when a server is
/// given (FLASHSALE_TEST_PG); `servePostgresHalf` says when it is not.
enum ServedStore: String, Sendable, CustomTestStringConvertible {
    case sqlite = "SQLite"
    case postgres = "PostgreSQL"

    static let all: [ServedStore] = TestPostgres.isConfigured ? [.sqlite, .postgres] : [.sqlite]

    var testDescription: String { rawValue }
}

/// Reported skipped without a server, so that the PostgreSQL half never passes unseen.
@Test("serve's PostgreSQL half", .enabled(if: TestPostgres.isConfigured, "FLASHSALE_TEST_PG is not set"))
func servePostgresHalf() {
    #expect(ServedStore.all.contains(.postgres))
}

extension ServedDatabase {
    /// Another process's write lock on the (SQLite) database, taken once it is free or
    /// `waitingUpTo` has passed, and held until the returned connection rolls back: what
    /// keeps every change waiting inside the server.
    func writeLockHeld(waitingUpTo busyTimeout: Span = .seconds(0)) throws -> Connection {
        let holder = try Connection(path: database, busyTimeout: busyTimeout)
        try holder.execute("BEGIN IMMEDIATE")
        return holder
    }
}
