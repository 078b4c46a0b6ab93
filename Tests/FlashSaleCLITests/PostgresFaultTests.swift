import Foundation
import Glibc
import Testing
import FlashSaleCore
@testable import FlashSalePostgres
import FlashSaleTestSupport

/// The PostgreSQL server failing under the commands, as the contract words each failure:
/// a server that refuses the connection is 73, a lock held past `--busy-timeout` is 75, a
/// full disk and a lost connection are 74; each is one line without the password, and
/// none leaves anything half-written.
@Suite(.enabled(if: TestPostgres.isConfigured, "FLASHSALE_TEST_PG is not set"))
struct PostgresFaultTests {
    /// A sandbox on the tests' server with sale s1 of `inventory` items.
    private func saleBox(inventory: Int = 10) throws -> Sandbox {
        let box = try Sandbox(.postgres)
        try #require(try box.run(["init"]).status == 0)
        try #require(try box.run(["create-sale", "s1", "--inventory", String(inventory)]).status == 0)
        return box
    }

    @Test func aWrongPasswordIsExit73AndNotShown() throws {
        let server = try #require(TestPostgres.server)
        let secret = "not-the-password-\(UUID().uuidString.prefix(8))"
        let url = "postgresql://\(server.user):\(secret)@\(server.host):\(server.port)/\(server.database)"
        let result = try Sandbox(.postgres).spawn(["--db", url, "sales"], database: false)
        #expect(result.status == 73)
        #expect(isOneLine(result.stderr))
        #expect(result.stderr.contains("\(server.host):\(server.port)"))
        #expect(!result.stderr.contains(secret))
        #expect(!result.stdout.contains(secret))
    }

    /// The tests' server offers no TLS (.ci/postgres): a client that requires it stops
    /// before it sends the password.
    @Test func tlsRequiredOfAServerWithoutItIsExit73() throws {
        let box = try Sandbox(.postgres)
        let result = try box.spawn(["--db", box.database + "&sslmode=require", "sales"], database: false)
        #expect(result.status == 73)
        #expect(isOneLine(result.stderr))
        #expect(result.stderr.contains("TLS"))
        #expect(!result.stderr.contains(try #require(TestPostgres.server?.password)))
    }

    @Test func aTableLockHeldPastTheBusyTimeoutIsExit75AndChangesNothing() throws {
        let box = try saleBox()
        let before = try box.run(["--json", "status", "s1"]).stdout
        try holding(box, "LOCK TABLE sale IN ACCESS EXCLUSIVE MODE") {
            let result = try box.spawn(["--busy-timeout", "300ms", "book", "s1", "alice"])
            #expect(result.status == 75)
            #expect(isOneLine(result.stderr))
        }
        #expect(try box.run(["--json", "status", "s1"]).stdout == before)
        #expect(try box.run(["verify"]).status == 0)
    }

    @Test func aRowLockHeldPastTheBusyTimeoutIsExit75AndChangesNothing() throws {
        let box = try saleBox()
        let before = try box.run(["--json", "status", "s1"]).stdout
        try holding(box, "SELECT id FROM sale WHERE id = 's1' FOR UPDATE") {
            let single = try box.spawn(["--busy-timeout", "300ms", "book", "s1", "alice"])
            #expect(single.status == 75)
            #expect(isOneLine(single.stderr))
            let stream = try box.spawn(["--busy-timeout", "300ms", "book", "s1", "--stream"],
                                       input: "{\"user\":\"bob\"}\n{\"user\":\"carol\"}\n")
            #expect(stream.status == 75)
            #expect(stream.stdout == "")
        }
        #expect(try box.run(["--json", "status", "s1"]).stdout == before)
        #expect(try box.run(["verify"]).status == 0)
    }

    /// Runs `body` while another connection holds what `lock` takes, in the sandbox's schema.
    private func holding(_ box: Sandbox, _ lock: String, _ body: () throws -> Void) throws {
        let location = try PostgresLocation(url: box.database, environment: [:], operatingSystemUser: nil)
        let session = try PostgresSession(location: location, busyTimeout: .seconds(30))
        try session.execute("BEGIN")
        defer { _ = try? session.execute("ROLLBACK") }
        try session.execute(lock)
        try body()
    }

    /// `pg_ctl restart -m fast` while `book` processes and a `book --stream` write: each
    /// command succeeds or fails 73/74 in one line, and the database holds exactly what
    /// was answered (a commit whose answer the restart cut may stand: its command said 74
    /// and can be retried with its key), with every invariant kept.
    // A command that waits forever on a lost connection would hang the run: fail instead.
    @Test(.enabled(if: installed("pg_ctl", in: postgresBinaries) != nil, "needs PostgreSQL's pg_ctl"),
          .timeLimit(.minutes(2)))
    func aServerRestartMidRunFailsCleanly() throws {
        let cluster = try OwnCluster()
        defer { withExtendedLifetime(cluster) {} }
        let box = try Sandbox(.postgres, url: cluster.url(schema: TestPostgres.newSchema()))
        try #require(try box.run(["init"]).status == 0)
        try #require(try box.run(["create-sale", "s1", "--inventory", "100000", "--per-user", "1000000"]).status == 0)
        let lines = (0..<20_000).map { "{\"user\":\"s\($0)\"}" }.joined(separator: "\n") + "\n"
        let stream = try box.start(["book", "s1", "--stream"], input: lines)
        var singles: [Background] = []
        for worker in 0..<6 {
            singles.append(try box.startShell(
                "i=0; while [ $i -lt 40 ]; do \"$FLASHSALE\" --db \"$DB\" book s1 w\(worker)-$i; echo \"exit $?\" >&2; i=$((i+1)); done"))
        }
        usleep(300_000)
        try cluster.restart()
        let streamResult = stream.result()
        #expect([0, 73, 74].contains(streamResult.status), "book --stream: \(streamResult.stderr)")
        #expect(streamResult.status == 0 || isOneLine(streamResult.stderr))
        var held = streamResult.stdout.split(separator: "\n").filter { $0.contains("\"ok\":true") }.count
        var cut = streamResult.status == 74 ? 8192 : 0
        for single in singles {
            let result = single.result()
            let exits = result.stderr.split(separator: "\n").filter { $0.hasPrefix("exit ") }
            let messages = result.stderr.split(separator: "\n").filter { !$0.hasPrefix("exit ") }
            #expect(exits.count == 40)
            #expect(exits.allSatisfy { ["exit 0", "exit 73", "exit 74"].contains($0) }, "\(exits)")
            #expect(messages.allSatisfy { $0.hasPrefix("flashsale: ") && !$0.contains(cluster.password) }, "\(messages)")
            held += result.stdout.split(separator: "\n").count
            cut += exits.filter { $0 == "exit 74" }.count
        }
        #expect(try box.spawn(["verify"]).status == 0)
        let status = try box.spawn(["--json", "status", "s1"]).json()
        let counted = try #require((status["counters"] as? [String: Any])?["held"] as? Int ?? status["held"] as? Int,
                                   "no held count in \(status)")
        #expect(counted >= held && counted <= held + cut, "held \(counted), answered \(held), cut \(cut)")
    }

    /// `process --follow` and `events --follow` outlive a restart of the server: each says
    /// once that it lost the connection and once that it is back, then goes on (the requests
    /// submitted after the restart decided, their events printed), every event exactly once.
    @Test(.enabled(if: installed("pg_ctl", in: postgresBinaries) != nil, "needs PostgreSQL's pg_ctl"),
          .timeLimit(.minutes(2)))
    func followersGoOnAfterTheServerRestarts() throws {
        let cluster = try OwnCluster()
        defer { withExtendedLifetime(cluster) {} }
        let box = try Sandbox(.postgres, url: cluster.url(schema: TestPostgres.newSchema()))
        try #require(try box.run(["create-sale", "s1", "--inventory", "100"]).status == 0)
        let processing = try box.start(["process", "s1", "--follow"])
        let following = try box.start(["events", "--follow"])
        func held() throws -> Int? { try box.spawn(["--json", "status", "s1"]).json()["held"] as? Int }
        try #require(try box.run(["submit", "s1", "before"]).status == 0)
        #expect(try processing.waitUntil { try held() == 1 })

        try cluster.restart()
        try #require(try box.run(["submit", "s1", "after"]).status == 0)
        #expect(try processing.waitUntil { try held() == 2 }, "\(processing.stderr)")
        #expect(following.waitUntil { following.stdout.contains("\"after\"") && following.stdout.components(separatedBy: "\"held\"").count == 3 },
                "\(following.stdout)\n\(following.stderr)")

        #expect(processing.stop() == .exit(0), "\(processing.stderr)")
        #expect(following.stop() == .exit(0), "\(following.stderr)")
        for follower in [processing, following] {
            #expect(follower.stderr.contains("connecting again until it is back"), "\(follower.stderr)")
            #expect(follower.stderr.contains("connected to the database again; going on"), "\(follower.stderr)")
            #expect(!follower.stderr.contains(cluster.password))
        }
        let seqs = following.stdout.split(separator: "\n").map { $0.split(separator: ",").first ?? "" }
        #expect(Set(seqs).count == seqs.count, "an event printed twice: \(following.stdout)")
    }

    /// A database in a tablespace on a small tmpfs, filled by `book --stream` until the
    /// server says disk full: exit 74 in one line, the group rolled back, every invariant kept.
    @Test(.enabled(if: runningAsRoot && installed("mount") != nil, "needs root, to mount a tmpfs"))
    func aFullTablespaceIsExit74AndLeavesNothingHalfWritten() throws {
        let server = try #require(TestPostgres.server)
        let name = "t_full_" + UUID().uuidString.prefix(8).lowercased()
        let mount = try TmpfsMount(megabytes: 8, owner: "postgres")
        defer { withExtendedLifetime(mount) {} }
        let admin = try PostgresSession(location: PostgresLocation(url: try #require(TestPostgres.url(schema: "public")),
                                                                   environment: [:], operatingSystemUser: nil),
                                        busyTimeout: .seconds(30))
        try admin.execute("CREATE TABLESPACE \(name) LOCATION '\(mount.path)'")
        defer { _ = try? admin.execute("DROP TABLESPACE IF EXISTS \(name)") }
        try admin.execute("CREATE DATABASE \(name) TABLESPACE \(name)")
        defer { _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        // Each connection's temporary tables (the events a transaction holds until its
        // commit) stay on the default tablespace: the full disk is the tables' alone, so
        // that `verify` can still read them afterwards.
        try admin.execute("ALTER DATABASE \(name) SET temp_tablespaces = 'pg_default'")
        let url = "postgresql://\(server.user):\(server.password ?? "")@\(server.host):\(server.port)/\(name)"
        let box = try Sandbox(.postgres, url: url)
        try #require(try box.run(["init"]).status == 0)
        try #require(try box.run(["create-sale", "s1", "--inventory", "100000000", "--per-user", "1000000000"]).status == 0)
        // Room an operator can free once the disk is full: PostgreSQL cannot even start a
        // session in a full tablespace, so `verify` runs after it is given back.
        let ballast = mount.path + "/ballast"
        try #require(FileManager.default.createFile(atPath: ballast, contents: Data(count: 1 << 20)))
        let lines = (0..<50_000).map { "{\"user\":\"user-with-a-long-name-to-fill-the-disk-\($0)\"}" }.joined(separator: "\n") + "\n"
        var full: Result?
        for _ in 0..<40 {
            let result = try box.spawn(["book", "s1", "--stream"], input: lines)
            if result.status != 0 {
                full = result
                break
            }
        }
        let result = try #require(full, "8 MiB never filled")
        #expect(result.status == 74, "\(result.stderr)")
        #expect(isOneLine(result.stderr))
        #expect(!result.stderr.contains(server.password ?? "-"))
        try FileManager.default.removeItem(atPath: ballast)
        let verify = try box.spawn(["verify"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }
}

func isOneLine(_ text: String) -> Bool {
    text.hasPrefix("flashsale: ") && text.hasSuffix("\n") && text.dropLast().allSatisfy { $0 != "\n" }
}

/// Where Debian keeps PostgreSQL's server programs (the newest version).
let postgresBinaries: String? = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?
    .sorted { $0.compare($1, options: .numeric) == .orderedAscending }.last.map { "/usr/lib/postgresql/\($0)/bin" }

func installed(_ name: String, in directory: String?) -> String? {
    guard let directory else { return nil }
    let path = directory + "/" + name
    return FileManager.default.isExecutableFile(atPath: path) ? path : nil
}

/// A throwaway cluster of one test's own (.ci/postgres), for what would disturb the other
/// tests on the shared one: a restart, another listening address. Stopped when let go.
final class OwnCluster {
    let port: Int
    let password: String
    let directory: String
    private let listen: String?

    init(listen: String? = nil, subnet: String? = nil) throws {
        port = try freePort()
        self.listen = listen
        var environment = ["FLASHSALE_TEST_PG_PORT": String(port), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        if let listen { environment["FLASHSALE_TEST_PG_LISTEN"] = listen }
        if let subnet { environment["FLASHSALE_TEST_PG_HBA_SUBNET"] = subnet }
        let output = try runTool("/bin/bash", [ciScript("postgres"), "start"], environment: environment)
        func exported(_ name: String) throws -> String {
            let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("export \(name)='") })
            return String(line.dropFirst("export \(name)='".count).dropLast())
        }
        directory = try exported("FLASHSALE_TEST_PG_DIR")
        let url = try exported("FLASHSALE_TEST_PG")
        password = String(try #require(url.split(separator: ":").dropFirst(2).first?.split(separator: "@").first))
    }

    deinit {
        _ = try? runTool("/bin/bash", [ciScript("postgres"), "stop", directory], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
    }

    /// A `--db` URL for `schema`, on `host` (the listening address by default).
    func url(schema: String, host: String? = nil) -> String {
        "postgresql://postgres:\(password)@\(host ?? listen ?? "127.0.0.1"):\(port)/postgres?schema=\(schema)"
    }

    /// `pg_ctl restart -m fast`: every connection is cut, the server comes back.
    func restart() throws {
        let pgctl = try #require(installed("pg_ctl", in: postgresBinaries))
        let command = [pgctl, "-D", directory + "/data", "-l", directory + "/server.log", "-m", "fast", "-w", "restart"]
        if runningAsRoot {
            _ = try runTool("/usr/sbin/runuser", ["-u", "postgres", "--"] + command, environment: [:])
        } else {
            _ = try runTool(command[0], Array(command.dropFirst()), environment: [:])
        }
    }
}

/// A tmpfs of `megabytes`, owned by `owner`, unmounted and removed when let go.
final class TmpfsMount {
    let path: String

    init(megabytes: Int, owner: String) throws {
        path = "/tmp/flashsale-tmpfs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        _ = try runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", path], environment: [:])
        _ = try runTool("/bin/chown", ["\(owner):", path], environment: [:])
    }

    deinit {
        _ = try? runTool("/bin/umount", ["-l", path], environment: [:])
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The path of a script in the repository's .ci folder.
func ciScript(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".ci").appendingPathComponent(name).path
}

/// Runs a tool to its end; its stdout, or an error with its stderr when it failed.
@discardableResult
func runTool(_ executable: String, _ arguments: [String], environment: [String: String]) throws -> String {
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
func freePort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
        }
    }
    guard bound else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    return Int(UInt16(bigEndian: address.sin_port))
}
