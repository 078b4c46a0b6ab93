import Foundation
import Glibc
import FlashSaleCore

// What the tests that need PostgreSQL's own programs share (a cluster of their own, to
// restart or to listen elsewhere), and the small tools they run it with.

/// Where Debian keeps PostgreSQL's server programs (the newest version).
public let postgresBinaries: String? = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?
    .sorted { $0.compare($1, options: .numeric) == .orderedAscending }.last.map { "/usr/lib/postgresql/\($0)/bin" }

public func installed(_ name: String, in directory: String?) -> String? {
    guard let directory else { return nil }
    let path = directory + "/" + name
    return FileManager.default.isExecutableFile(atPath: path) ? path : nil
}

/// A throwaway cluster of one test's own (.ci/postgres), for what would disturb the other
/// tests on the shared one: a restart, another listening address. Stopped when let go.
public final class OwnCluster {
    public let port: Int
    public let password: String
    public let directory: String
    /// With `tls`: the certificate of the authority that signed the server's (for
    /// localhost and 127.0.0.1).
    public let certificateAuthority: String?
    private let listen: String?

    public init(listen: String? = nil, subnet: String? = nil, tls: Bool = false) throws {
        port = try freePort()
        self.listen = listen
        var environment = ["FLASHSALE_TEST_PG_PORT": String(port), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        if let listen { environment["FLASHSALE_TEST_PG_LISTEN"] = listen }
        if let subnet { environment["FLASHSALE_TEST_PG_HBA_SUBNET"] = subnet }
        if tls { environment["FLASHSALE_TEST_PG_TLS"] = "1" }
        let output = try runTool("/bin/bash", [ciScript("postgres"), "start"], environment: environment)
        func exported(_ name: String) throws -> String {
            guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("export \(name)='") }) else {
                throw FlashSaleError.internalFailure(".ci/postgres start exported no \(name): \(output)")
            }
            return String(line.dropFirst("export \(name)='".count).dropLast())
        }
        directory = try exported("FLASHSALE_TEST_PG_DIR")
        certificateAuthority = tls ? try exported("FLASHSALE_TEST_PG_CA") : nil
        let url = try exported("FLASHSALE_TEST_PG")
        guard let password = url.split(separator: ":").dropFirst(2).first?.split(separator: "@").first else {
            throw FlashSaleError.internalFailure(".ci/postgres start gave a URL without a password")
        }
        self.password = String(password)
    }

    deinit {
        _ = try? runTool("/bin/bash", [ciScript("postgres"), "stop", directory], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
    }

    /// The server's URL as psql takes it.
    public var serverURL: String {
        "postgresql://postgres:\(password)@\(listen ?? "127.0.0.1"):\(port)/postgres"
    }

    /// A `--db` URL for `schema`, on `host` (the listening address by default).
    public func url(schema: String, host: String? = nil) -> String {
        "postgresql://postgres:\(password)@\(host ?? listen ?? "127.0.0.1"):\(port)/postgres?schema=\(schema)"
    }

    /// `pg_ctl restart -m fast`: every connection is cut, the server comes back.
    public func restart() throws {
        try control("restart")
    }

    /// `pg_ctl stop -m fast`, until `start()`.
    public func stop() throws {
        try control("stop")
    }

    public func start() throws {
        try control("start")
    }

    /// Stops every process of the server (SIGSTOP) until `thaw`: it keeps its connections
    /// and sends nothing, as a hung disk or a stuck proxy would have it.
    public func freeze() {
        processes().forEach { kill($0, SIGSTOP) }
    }

    public func thaw() {
        processes().forEach { kill($0, SIGCONT) }
    }

    /// The postmaster (its pid the first line of `postmaster.pid`) and its children.
    private func processes() -> [pid_t] {
        guard let file = try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8),
              let postmaster = file.split(separator: "\n").first.flatMap({ pid_t($0) }) else { return [] }
        return [postmaster] + ProcessStatus.all().filter { $0.parent == postmaster }.map(\.pid)
    }

    private func control(_ action: String) throws {
        guard let pgctl = installed("pg_ctl", in: postgresBinaries) else {
            throw FlashSaleError.internalFailure("no pg_ctl in /usr/lib/postgresql")
        }
        let command = [pgctl, "-D", directory + "/data", "-l", directory + "/server.log", "-m", "fast", "-w", action]
        if runningAsRoot {
            _ = try runTool("/usr/sbin/runuser", ["-u", "postgres", "--"] + command, environment: [:])
        } else {
            _ = try runTool(command[0], Array(command.dropFirst()), environment: [:])
        }
    }
}

/// The path of a script in the repository's .ci folder.
public func ciScript(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".ci").appendingPathComponent(name).path
}

/// Runs a tool to its end; its stdout, or an error with its stderr when it failed.
@discardableResult
public func runTool(_ executable: String, _ arguments: [String], environment: [String: String]) throws -> String {
    // ChildProcess, not Foundation's Process, whose waitUntilExit never returned here once
    // other tests' children had been reaped; files, not pipes, in case a daemon it starts
    // keeps its standard streams.
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("tool-\(UUID().uuidString)").path
    let out = open(base + ".out", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    let err = open(base + ".err", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    let input = open("/dev/null", O_RDONLY | O_CLOEXEC)
    defer {
        [out, err, input].forEach { close($0) }
        unlink(base + ".out")
        unlink(base + ".err")
    }
    guard out >= 0, err >= 0, input >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    let status = try ChildProcess(executable, arguments, environment: environment, stdin: input, stdout: out, stderr: err)
        .wait().status
    let output = FileManager.default.contents(atPath: base + ".out") ?? Data()
    let errors = FileManager.default.contents(atPath: base + ".err") ?? Data()
    guard status == 0 else {
        throw FlashSaleError.internalFailure("\(executable) \(arguments.joined(separator: " ")): exit \(status): "
                                             + String(decoding: errors, as: UTF8.self))
    }
    return String(decoding: output, as: UTF8.self)
}

/// A TCP port nothing listens on now, as the kernel hands one out.
public func freePort() throws -> Int {
    let (descriptor, port) = try loopbackSocket(listening: false)
    close(descriptor)
    return port
}

/// A TCP socket on 127.0.0.1, bound to a port the kernel chose, and listening if asked.
public func loopbackSocket(listening: Bool) throws -> (descriptor: Int32, port: Int) {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && (!listening || listen(descriptor, 8) == 0)
                && getsockname(descriptor, $0, &length) == 0
        }
    }
    guard bound else {
        let error = POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        close(descriptor)
        throw error
    }
    return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
}
