import Foundation
import Testing
@testable import FlashSalePostgres
import FlashSaleTestSupport

/// `--db postgresql://…` on the command line, where no server is needed: `flashsale` hands
/// the command to `flashsale-serve`, which reads the URL; a path stays a file.
@Suite struct DatabaseURLTests {
    /// No server listens on port 1: what must not connect never finds out.
    private let unreachable = "postgresql://ann:s3cret@127.0.0.1:1/shop"

    @Test func backupOfAPostgreSQLDatabaseSaysToUsePgDump() throws {
        let box = try Sandbox()
        let result = try box.run(["--db", unreachable, "backup", box.directory.appendingPathComponent("copy.db").path],
                                 database: false)
        #expect(result.status == 2)
        #expect(result.stderr == "flashsale: backup copies a SQLite file: back up a PostgreSQL database with pg_dump\n")
        #expect(!FileManager.default.fileExists(atPath: box.directory.appendingPathComponent("copy.db").path))
    }

    @Test func theBinaryHandsAURLToTheServerExecutable() throws {
        let box = try Sandbox()
        let result = try box.spawn(["--db", unreachable, "backup", "copy.db"], database: false)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("pg_dump"), "\(result.stderr)")
        // The file-named-by-URL of old is not made either.
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.directory.path).filter { !$0.hasPrefix("process-") } == [])
    }

    @Test func aMalformedURLIsAUsageErrorThatNeverShowsThePassword() throws {
        let box = try Sandbox()
        let result = try box.spawn(["--db", "postgresql://ann:s3cret@db.example:99999/shop", "status", "s1"], database: false)
        #expect(result.status == 2)
        #expect(result.stderr == "flashsale: database URL: port '99999' from the URL is not a number from 1 to 65535\n")
        let json = try box.spawn(["--db", "postgresql://ann:s3cret%zz@db.example/shop", "--json", "sales"], database: false)
        #expect(json.status == 2)
        #expect(try json.json()["error"] as? [String: String]
                == ["code": "usage", "message": "database URL: the password has a malformed %-escape (use %XX, e.g. %40 for @)"])
        #expect(!json.stdout.contains("s3cret") && !json.stderr.contains("s3cret"))
    }

    /// Taken for paths, these were "no flashsale database at" the whole URL, password and
    /// all, or a new file named by the password (probe of 2026-12-04).
    @Test(arguments: [
        ("postgresq://ann:s3cret@db.example/shop", "it begins 'postgresq://'"),
        ("POSTGRESQL://ann:s3cret@db.example/shop", "it begins 'POSTGRESQL://'"),
        (" postgresql://ann:s3cret@db.example/shop", "spaces come before its postgresql://"),
        ("postgresql:/ann:s3cret@db.example/shop", "it begins 'postgresql:' without the // of postgresql://"),
        ("postgres:s3cret@db.example/shop", "it begins 'postgres:' without the // of postgres://"),
        ("host=db.example password=s3cret", "it is in libpq's keyword=value form"),
        ("password = s3cret", "it is in libpq's keyword=value form"),
        // Found by probing: quotes an env file's reader kept, another scheme before it, its
        // colon missing.
        ("\"postgresql://ann:s3cret@db.example/shop\"", "quotes come before its postgresql://"),
        ("'postgres://ann:s3cret@db.example/shop'", "quotes come before its postgresql://"),
        ("jdbc:postgresql://db.example/shop?password=s3cret", "it begins 'jdbc:postgresql://'"),
        ("postgres//ann:s3cret@db.example/shop", "it begins 'postgres//' without the colon of postgres://"),
    ])
    func aMistypedURLIsAUsageErrorThatShowsNoneOfIt(url: String, words: String) throws {
        let box = try Sandbox()
        for command in [["--db", url, "create-sale", "s1", "--inventory", "1"], ["copy-to", url]] {
            let result = try box.run(command, database: command[0] == "copy-to")
            #expect(result.status == 2)
            #expect(result.stderr.contains(words + " (the rest is not shown: it may hold a password)\n"), "\(result.stderr)")
            #expect(!result.stderr.contains("s3cret"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.directory.path).filter { $0.contains("s3cret") } == [])
    }

    /// A mistyped URL from FLASHSALE_DB is said as FLASHSALE_DB's, not --db's, which was
    /// not typed (found by probing).
    @Test func aMistypedURLFromTheEnvironmentIsNamedSo() throws {
        let box = try Sandbox()
        let result = try box.spawn(["status", "s1"], database: false, environment: ["FLASHSALE_DB": "postgresq://ann:s3cret@db.example/shop"])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("flashsale: FLASHSALE_DB is neither a file path nor a postgresql:// URL: "), "\(result.stderr)")
        #expect(!result.stderr.contains("s3cret"))
    }

    /// Found by probing: a URL in another value's place was echoed, password and all, by
    /// the error that refused it (40 characters of it: most of a generated password).
    @Test(arguments: [
        ["copy-to", "postgresql://ann:s3cret@db.example/shop", "postgresql://ann:s3cret@db.example/shop"],
        ["rehearse", "postgresql://ann:s3cret@db.example/shop"],
        ["backup", "postgresql://ann:s3cret@db.example/shop"],
        ["create-sale", "s1", "--inventory", "1", "--per-user", "postgres:s3cret@db.example/shop"],
        // Found by probing: a URL without its scheme, or with it misspelt and a slash short.
        ["copy-to", "ann:s3cret@db.example:5432/shop"],
        ["copy-to", "postgersql:/ann:s3cret@db.example/shop"],
        ["postgresql://ann:s3cret@db.example/shop"],
    ])
    func aURLInAnotherValuesPlaceIsNotShown(arguments: [String]) throws {
        let box = try Sandbox()
        let result = try box.run(arguments + ["--json"])
        #expect(result.status == 2, "\(result.stdout)")
        #expect(result.stdout.contains("<a database URL, not shown: it may hold a password>")
                || result.stdout.contains("PATH is a database URL (not shown: it may hold a password)"), "\(result.stdout)")
        #expect(!result.stdout.contains("s3cret") && !result.stderr.contains("s3cret"))
    }

    /// A path that holds a URL with a password is a path (`./` before a scheme), but the
    /// errors that name it do not show it (found by probing: "no flashsale database at"
    /// showed a wrapped URL whole).
    @Test func aPathHoldingAURLIsNotShownByTheErrorsThatNameIt() throws {
        let box = try Sandbox()
        let misspelt = try box.run(["--db", "postgersql:/ann:s3cret@db.example/shop", "status", "s1"], database: false)
        #expect(misspelt.status == 73)
        #expect(!misspelt.stderr.contains("s3cret"), "\(misspelt.stderr)")
        let missing = try box.run(["--db", "./postgresql://ann:s3cret@db.example/shop", "status", "s1"], database: false)
        #expect(missing.status == 73)
        #expect(missing.stderr.hasPrefix("flashsale: no flashsale database at <a database URL, not shown: it may hold a password>"),
                "\(missing.stderr)")
        let made = try box.run(["--db", "./postgresql://ann:s3cret@db.example/shop", "create-sale", "s1", "--inventory", "1"],
                               database: false)
        #expect(made.status == 73)
        #expect(made.stderr.hasPrefix("flashsale: cannot create the database <a database URL, not shown: it may hold a password>"),
                "\(made.stderr)")
        #expect(!missing.stderr.contains("s3cret") && !made.stderr.contains("s3cret"))
    }

    @Test func aPathWithAnEqualsSignOrAColonIsStillAPath() throws {
        let box = try Sandbox()
        for name in ["a=b.db", "host=x.db", "a:b.db"] {
            let path = box.directory.appendingPathComponent(name).path
            #expect(try box.run(["--db", path, "create-sale", "s1", "--inventory", "1"], database: false).status == 0)
        }
    }

    @Test func aServerThatCannotBeReachedIsExit73NamingHostAndPortNotThePassword() throws {
        let box = try Sandbox()
        let result = try box.spawn(["--db", unreachable, "sales"], database: false)
        #expect(result.status == 73)
        #expect(result.stderr == "flashsale: cannot connect to PostgreSQL at 127.0.0.1:1 (user ann, database shop): "
                + "connection refused; check that the server runs and that the URL names it\n")
        #expect(result.stdout.isEmpty)
    }

    /// Each way of not reaching a server in words like psql's, not the client library's
    /// type names (`Connection errors: SingleConnectionFailure(target: …`).
    @Test(arguments: [
        ("postgresql://ann:s3cret@nosuchhost.invalid/shop", "nosuchhost.invalid:5432", #"could not translate host name "nosuchhost.invalid" to address: "#),
        ("postgresql://ann:s3cret@/shop?host=/nonexistent", "/nonexistent/.s.PGSQL.5432", "no such file or directory;"),
    ])
    func whyAServerCannotBeReachedIsSaidInWords(url: String, server: String, reason: String) throws {
        let result = try Sandbox().spawn(["--db", url, "sales"], database: false)
        #expect(result.status == 73)
        #expect(result.stderr.hasPrefix("flashsale: cannot connect to PostgreSQL at \(server) (user ann, database shop): \(reason)"),
                "\(result.stderr)")
        #expect(!result.stderr.contains("s3cret"))
    }

    /// A URL may hold 100 KB where no user, database, socket path or host name is that long:
    /// the message echoes each shortened, on one line.
    @Test(arguments: ["postgresql://ann@/LONG?host=/nonexistent", "postgresql://LONG@/shop?host=/nonexistent",
                      "postgresql://ann@/shop?host=/LONG", "postgresql://ann@LONG.invalid/shop"])
    func aLongPartOfAURLIsShortenedInTheMessage(url: String) throws {
        let long = String(repeating: "d", count: 100_000)
        let result = try Sandbox().spawn(["--db", url.replacingOccurrences(of: "LONG", with: long), "sales"], database: false)
        #expect(result.status == 73)
        #expect(result.stderr.hasPrefix("flashsale: cannot connect to PostgreSQL at "), "\(result.stderr.prefix(200))")
        #expect(result.stderr.contains("ddd..."))
        #expect(result.stderr.utf8.count < 500, "\(result.stderr.utf8.count) bytes")
    }

    @Test func aServerThatHangsUpAtOnceIsSaidSo() throws {
        let listener = try HangingUpListener()
        let result = try Sandbox().spawn(["--db", "postgresql://ann:s3cret@127.0.0.1:\(listener.port)/shop", "sales"],
                                         database: false)
        #expect(result.status == 73)
        #expect(result.stderr == "flashsale: cannot connect to PostgreSQL at 127.0.0.1:\(listener.port) (user ann, database shop): "
                + "the server closed the connection; check that the server runs and that the URL names it\n")
    }

    /// A server that takes the connection and never answers (a wrong port, a hung host):
    /// libpq's `connect_timeout` bounds the wait, instead of flashsale's 10 s.
    @Test func connectTimeoutBoundsTheWaitForAServerThatNeverAnswers() throws {
        let (silent, port) = try loopbackSocket(listening: true)
        defer { close(silent) }
        let started = Date()
        let result = try Sandbox().spawn(["--db", "postgresql://ann:s3cret@127.0.0.1:\(port)/shop?connect_timeout=2", "sales"],
                                         database: false)
        #expect(result.status == 73)
        #expect(result.stderr == "flashsale: cannot connect to PostgreSQL at 127.0.0.1:\(port) (user ann, database shop): "
                + "the connection timed out; check that the server runs and that the URL names it\n")
        #expect(Date().timeIntervalSince(started) < 8, "waited for the default 10 s, not connect_timeout's 2")
    }

    @Test func aURLInTheEnvironmentIsAURLToo() throws {
        let box = try Sandbox()
        let result = try box.spawn(["backup", "copy.db"], database: false, environment: ["FLASHSALE_DB": unreachable])
        #expect(result.status == 2)
        #expect(result.stderr.contains("pg_dump"), "\(result.stderr)")
    }

    @Test func theEnvironmentFillsInWhatTheURLLeavesOut() throws {
        let box = try Sandbox()
        let result = try box.spawn(["--db", "postgresql:///shop", "sales"], database: false, environment: ["PGPORT": "none"])
        #expect(result.status == 2)
        #expect(result.stderr == "flashsale: database URL: port 'none' from PGPORT is not a number from 1 to 65535\n")
    }

    @Test func pgSchemaGoesWithAURLOnly() throws {
        let box = try Sandbox()
        let result = try box.run(["--pg-schema", "s1", "init"])
        #expect(result.status == 2)
        #expect(result.stderr == "flashsale: --pg-schema goes with a postgresql:// database, not a file\n")
        #expect(!FileManager.default.fileExists(atPath: box.database))
        let bad = try box.run(["--db", unreachable, "--pg-schema", "Bad-Name", "sales"], database: false)
        #expect(bad.status == 2)
        #expect(bad.stderr.hasPrefix("flashsale: schema 'Bad-Name' is not a schema name"), "\(bad.stderr)")
    }

    @Test func aPathThatOnlyLooksLikeAURLIsAFile() throws {
        let box = try Sandbox()
        let result = try box.spawn(["--db", "./postgresql://x", "sales"], database: false)
        #expect(result.status == 73)
        #expect(result.stderr.contains("no flashsale database at ./postgresql://x"), "\(result.stderr)")
    }
}

/// Reaching the tests' server (FLASHSALE_TEST_PG) in the ways a URL can say, and failing to.
@Suite(.enabled(if: TestPostgres.isConfigured, "FLASHSALE_TEST_PG is not set"))
struct DatabaseServerConnectionTests {
    private let server = ProcessInfo.processInfo.environment["FLASHSALE_TEST_PG"] ?? ""

    /// The URL's parts: `postgresql://user:password@host:port/database`.
    private var parts: URLComponents? { URLComponents(string: server) }

    @Test func aWrongPasswordIsExit73WithoutThePassword() throws {
        let box = try Sandbox()
        var url = try #require(parts)
        url.password = "wrong-s3cret"
        let result = try box.spawn(["--db", try #require(url.string), "sales"], database: false)
        #expect(result.status == 73)
        #expect(result.stderr.contains("password authentication failed"), "\(result.stderr)")
        #expect(result.stderr.contains("\(url.host ?? ""):\(url.port ?? 0)"), "\(result.stderr)")
        #expect(!result.stderr.contains("s3cret"))
    }

    /// A schema with tables but no flashsale version is another program's: not migrated,
    /// not written, and the message says what it is on a server, not "the file".
    @Test func aSchemaOfAnotherProgramIsExit73AndLeftAsItWas() throws {
        let box = try Sandbox(.postgres)
        let session = try PostgresSession(location: PostgresLocation(url: box.database, environment: [:], operatingSystemUser: nil),
                                          busyTimeout: .seconds(30))
        let schema = session.location.schema
        try session.execute("CREATE SCHEMA \(schema)")
        try session.execute("CREATE TABLE \(schema).orders (id int)")
        let result = try box.spawn(["--db", box.database, "create-sale", "s1", "--inventory", "1"], database: false)
        #expect(result.status == 73)
        #expect(result.stderr == "flashsale: not a usable flashsale database: schema \(schema) holds another program's objects, "
                + "not flashsale's (--pg-schema chooses another schema); use another database\n")
        #expect(try session.rows("SELECT tablename FROM pg_tables WHERE schemaname = $1", [.text(schema)]) { try $0.text("tablename") }
                == ["orders"])
    }

    /// A URL without a password takes it from libpq's password file, as psql does; a file
    /// that others may read is not used, and the message says where a password may come from.
    @Test func aPasswordFileGivesThePasswordTheURLLeavesOut() throws {
        let box = try Sandbox(.postgres)
        var url = try #require(URLComponents(string: box.database))
        let password = try #require(url.password)
        url.password = nil
        let file = box.directory.appendingPathComponent("pgpass")
        try "# flashsale's tests\n\(url.host ?? ""):\(url.port ?? 0):*:\(url.user ?? ""):\(password)\n"
            .write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        let arguments = ["--db", try #require(url.string), "init"]
        let read = try box.spawn(arguments, database: false, environment: ["PGPASSFILE": file.path])
        #expect(read.status == 0, "\(read.stderr)")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        let ignored = try box.spawn(arguments, database: false, environment: ["PGPASSFILE": file.path])
        #expect(ignored.status == 73)
        #expect(ignored.stderr.contains("the server asks for a password and none was given (in ~/.pgpass or PGPASSFILE's file"),
                "\(ignored.stderr)")
        #expect(!ignored.stderr.contains(password))
    }

    /// libpq's `application_name` (or `PGAPPNAME`) names the connection in the server's
    /// `pg_stat_activity`, where an operator looks for who holds a lock.
    @Test func theApplicationNameReachesTheServer() throws {
        let box = try Sandbox(.postgres)
        #expect(try box.spawn(["--db", box.database, "init"], database: false).status == 0)
        let name = "fs_" + UUID().uuidString.prefix(8).lowercased()
        let follower = try box.start(["--db", box.database, "events", "--follow"], database: false,
                                     environment: ["PGAPPNAME": name])
        defer { _ = follower.stop() }
        #expect(follower.waitUntil { TestPostgres.holds("EXISTS (SELECT FROM pg_stat_activity WHERE application_name = '\(name)')") },
                "\(follower.stderr)")
    }

    @Test func tlsRequiredButNotOfferedIsExit73() throws {
        let box = try Sandbox(.postgres)
        let result = try box.spawn(["--db", box.database + "&sslmode=require", "sales"], database: false)
        #expect(result.status == 73)
        #expect(result.stderr.contains("the server does not offer TLS"), "\(result.stderr)")
        // prefer, the default, goes on without.
        #expect(try box.spawn(["--db", box.database + "&sslmode=prefer", "init"], database: false).status == 0)
    }

    /// The server's Unix socket (trust, no password), named by the URL or by PGHOST and the
    /// other variables, as psql would reach it.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["FLASHSALE_TEST_PG_SOCKET"] != nil,
                   "FLASHSALE_TEST_PG_SOCKET is not set"))
    func aUnixSocketFromTheURLOrFromTheEnvironment() throws {
        let socket = try #require(ProcessInfo.processInfo.environment["FLASHSALE_TEST_PG_SOCKET"])
        let url = try #require(parts)
        let port = try #require(url.port)
        let user = try #require(url.user)
        let database = url.path.split(separator: "/").first.map(String.init) ?? user
        let schema = TestPostgres.newSchema()
        defer { TestPostgres.dropSchema(schema) }
        let box = try Sandbox()
        let socketURL = "postgresql://\(user)@/\(database)?host=\(socket)&port=\(port)&schema=\(schema)"
        let created = try box.spawn(["--db", socketURL, "create-sale", "s1", "--inventory", "1"], database: false)
        #expect(created.status == 0, "\(created.stderr)")
        let environment = ["PGHOST": socket, "PGPORT": String(port), "PGUSER": user, "PGDATABASE": database]
        let booked = try box.spawn(["--db", "postgresql://", "--pg-schema", schema, "book", "s1", "alice"], database: false,
                                   environment: environment)
        #expect(booked.status == 0, "\(booked.stderr)")
        #expect(try box.run(["--db", socketURL, "status", "s1", "--json"], database: false).json()["held"] as? Int == 1)
    }
}

/// A TCP listener on 127.0.0.1 that accepts each connection and closes it after the
/// client's first message, as a server going down (or something else on PostgreSQL's
/// port) does.
private final class HangingUpListener: @unchecked Sendable {
    let port: Int
    private let listening: Int32

    init() throws {
        let (listening, port) = try loopbackSocket(listening: true)
        self.listening = listening
        self.port = port
        Thread.detachNewThread {
            var request = [UInt8](repeating: 0, count: 512)
            while case let connection = accept(listening, nil, nil), connection >= 0 {
                // The client's first message read, so that closing sends a FIN, not a reset.
                _ = recv(connection, &request, request.count, 0)
                close(connection)
            }
            // Closed here, once accept has failed: closed in deinit, the descriptor's number
            // could go to another test's file while this thread still calls accept on it.
            close(listening)
        }
    }

    deinit {
        // Ends the accepting thread: accept fails on a socket shut down.
        shutdown(listening, Int32(SHUT_RDWR))
    }
}
