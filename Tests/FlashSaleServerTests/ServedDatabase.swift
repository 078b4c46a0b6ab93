import Foundation
import Glibc
import NIOHTTP1
import FlashSaleTestSupport

/// A new database in a temporary directory, and `flashsale serve` on it: the buyer API on a
/// free loopback port, the admin API on another, its log in a file. Stopped (SIGKILL if it
/// must) and removed when the test lets go of it.
final class ServedDatabase {
    let directory: String
    let database: String
    private(set) var port = 0
    private(set) var adminPort = 0
    private(set) var server: ChildProcess?
    let logPath: String

    /// Header authentication (`X-User`) unless `arguments` says otherwise.
    static let headerAuth = ["--auth", "header", "--user-header", "X-User"]

    init() throws {
        var template = Array((FileManager.default.temporaryDirectory.path + "/flashsale-serve-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        directory = String(cString: made)
        database = directory + "/sale.db"
        logPath = directory + "/serve.log"
    }

    deinit {
        if let server, server.isRunning {
            server.send(SIGKILL)
            server.wait()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `flashsale --db DB ARGUMENTS`, run to its end: its status, stdout and stderr.
    @discardableResult
    func flashsale(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Termination, stdout: String, stderr: String) {
        let out = directory + "/cli-\(UUID().uuidString)"
        let stdout = open(out + ".out", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let stderr = open(out + ".err", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let stdin = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { [stdout, stderr, stdin].forEach { close($0) } }
        let child = try ChildProcess(flashsaleBinary, ["--db", database] + arguments, environment: environment,
                                     directory: directory, stdin: stdin, stdout: stdout, stderr: stderr)
        let status = child.wait()
        defer { unlink(out + ".out"); unlink(out + ".err") }
        return (status, text(out + ".out"), text(out + ".err"))
    }

    /// `create-sale SALE --inventory N ...` at the real clock, checked.
    func createSale(_ sale: String = "s1", inventory: Int64, _ more: [String] = []) throws {
        let result = try flashsale(["create-sale", sale, "--inventory", String(inventory)] + more)
        guard result.status == .exit(0) else { throw Failed("create-sale: \(result.stderr)") }
    }

    /// Starts `flashsale serve` and waits until its admin listener says the database answers.
    func start(_ arguments: [String] = ServedDatabase.headerAuth, environment: [String: String] = [:]) throws {
        port = try freePort()
        adminPort = try freePort()
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        let stdin = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(log); close(stdin) }
        server = try ChildProcess(flashsaleBinary, ["--db", database, "serve", "--listen", "127.0.0.1:\(port)",
                                                    "--admin-listen", "127.0.0.1:\(adminPort)"] + arguments,
                                  environment: environment, directory: directory, stdin: stdin, stdout: log, stderr: log)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            guard server?.isRunning == true else { throw Failed("serve ended at start-up: \(self.log)") }
            if (try? healthy()) == true { return }
            usleep(20_000)
        }
        throw Failed("serve did not answer /healthz within 20 s: \(self.log)")
    }

    private func healthy() throws -> Bool {
        let semaphore = DispatchSemaphore(value: 0)
        let answer = Box<Int>()
        Task { [adminPort] in
            answer.value = (try? await HTTPClient.send(.GET, "/healthz", port: adminPort))?.status
            semaphore.signal()
        }
        semaphore.wait()
        return answer.value == 200
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

    /// A buyer request to the buyer listener.
    func send(_ method: HTTPMethod, _ path: String, user: String? = nil, headers: [(String, String)] = [],
              body: String? = nil) async throws -> HTTPAnswer {
        try await HTTPClient.send(method, path, port: port,
                                  headers: (user.map { [("X-User", $0)] } ?? []) + headers
                                      + (body == nil ? [] : [("Content-Type", "application/json")]),
                                  body: body)
    }

    /// Everything the server has logged so far.
    var log: String { text(logPath) }

    private func text(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }
}

struct Failed: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A port nothing listens on now (the kernel's pick), for a server about to bind it.
func freePort() throws -> Int {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw POSIXError(.EIO) }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
    }
    guard bound else { throw POSIXError(.EIO) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A value set by one task and read by another after a semaphore.
final class Box<Value>: @unchecked Sendable {
    var value: Value?
}
