import Foundation
import Testing
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

    @Test func aServerThatCannotBeReachedIsExit73NamingHostAndPortNotThePassword() throws {
        let box = try Sandbox()
        let result = try box.spawn(["--db", unreachable, "sales"], database: false)
        #expect(result.status == 73)
        #expect(result.stderr.hasPrefix("flashsale: cannot connect to PostgreSQL at 127.0.0.1:1 (user ann, database shop): "),
                "\(result.stderr)")
        #expect(result.stderr.hasSuffix("; check that the server runs and that --db names it\n"), "\(result.stderr)")
        #expect(!result.stderr.contains("s3cret"))
        #expect(result.stdout.isEmpty)
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
