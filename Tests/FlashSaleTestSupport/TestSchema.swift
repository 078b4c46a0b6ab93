import Foundation
import Glibc

extension TestPostgres {
    /// The tests' server (`FLASHSALE_TEST_PG`) as a `--db` URL for a schema of one test's own.
    public static func url(schema: String) -> String? {
        guard let url = ProcessInfo.processInfo.environment["FLASHSALE_TEST_PG"] else { return nil }
        return url + (url.contains("?") ? "&" : "?") + "schema=" + schema
    }

    /// Drops a test's schema (a `newSchema` name, which needs no quoting) with everything in
    /// it, so that the tests leave the server as they found it. By the server's own psql:
    /// this target builds in release builds too, where the store's internals are closed.
    public static func dropSchema(_ schema: String) {
        _ = runPSQL("DROP SCHEMA IF EXISTS \(schema) CASCADE")
    }

    /// Whether the tests' server has ICU's collations (PostgreSQL built with ICU, as
    /// Debian's is): the way to make a database whose text sorts by language, not by byte,
    /// on a machine with no such locale. (Fails, dividing by zero, when there are none.)
    public static let offersICU: Bool = runPSQL("SELECT 1 / count(*) FROM pg_collation WHERE collprovider = 'i'") == .exit(0)

    /// Whether `condition` (an SQL boolean) holds on the tests' server now, asked with its
    /// psql; false without a server.
    public static func holds(_ condition: String) -> Bool {
        // Dividing by zero is psql's failing exit: the condition's answer in its status.
        runPSQL("SELECT 1 / (\(condition))::int") == .exit(0)
    }

    /// Runs `sql` with the server's psql; nil without a server.
    private static func runPSQL(_ sql: String) -> Termination? {
        guard let url = ProcessInfo.processInfo.environment["FLASHSALE_TEST_PG"], let psql else { return nil }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(null) }
        let run = try? ChildProcess(psql, ["-X", "-q", "-d", url, "-c", sql], environment: [:], stdin: null, stdout: null, stderr: null)
        return run?.wait()
    }

    /// The server's psql (not Debian's wrapper in /usr/bin, a Perl script that costs 30 ms more).
    private static let psql: String? = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?
        .sorted { $0.compare($1, options: .numeric) == .orderedAscending }
        .map { "/usr/lib/postgresql/\($0)/bin/psql" }
        .last { FileManager.default.isExecutableFile(atPath: $0) }
}
