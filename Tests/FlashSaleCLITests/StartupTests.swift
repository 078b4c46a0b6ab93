import Foundation
import Testing
import FlashSaleTestSupport

let nmInstalled = FileManager.default.isExecutableFile(atPath: "/usr/bin/nm")

/// A single `book` is mostly process start-up, so nothing may run before main that the
/// command line does not need. Swift's ContinuousClock once pulled in libdispatch, whose
/// initializer then ran in every process (0.3 ms of a 0.64 ms start).
@Suite struct StartupTests {
    @Test(.enabled(if: nmInstalled, "nm (binutils) is not installed"))
    func theBinaryRunsNoDispatchInitializer() throws {
        let symbols = try Sandbox().execute("/usr/bin/nm", [flashsaleBinary])
        #expect(symbols.status == 0)
        #expect(symbols.stdout.contains(" main"), "nm listed no symbols: \(symbols.stderr)")
        #expect(!symbols.stdout.contains("libdispatch_init"))
    }

    /// Without flashsale-serve beside it, a command that needs it says so, naming the
    /// whole path: cut at 40 characters, it lost the very name that was missing (found by
    /// a walk-through of the README).
    @Test func aMissingServerExecutableIsNamedWhole() throws {
        let box = try Sandbox()
        let lone = box.directory.appendingPathComponent("a-directory-long-enough-to-cut-the-name/flashsale").path
        try FileManager.default.createDirectory(atPath: (lone as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // Written through a descriptor closed on exec: a server another test starts
        // meanwhile would otherwise keep it open for writing as long as it runs, and the
        // copy could not run until then (ETXTBSY; a local full run).
        let copy = open(lone, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o755)
        try #require(copy >= 0)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: flashsaleBinary))
        let written = bytes.withUnsafeBytes { write(copy, $0.baseAddress, $0.count) }
        close(copy)
        try #require(written == bytes.count)
        let result = try Self.retryingBusyText {
            try box.execute(lone, ["--db", box.database, "serve", "--auth", "header", "--user-header", "X-User"])
        }
        #expect(result.status == 73)
        let server = (lone as NSString).deletingLastPathComponent + "/flashsale-serve"
        #expect(result.stderr == "flashsale: cannot run \(server): No such file or directory; install flashsale-serve beside flashsale\n")
    }

    /// `run` again while it fails with ETXTBSY: a child another test forks while the copy
    /// is being written holds the copy's descriptor open for writing until it execs, and
    /// the copy cannot run until then (a full run's flake).
    private static func retryingBusyText<T>(_ run: () throws -> T) throws -> T {
        for _ in 0..<50 {
            do {
                return try run()
            } catch let error as POSIXError where error.code == .ETXTBSY {
                usleep(20_000)
            }
        }
        return try run()
    }

    /// PostgreSQL's client and SwiftNIO live in flashsale-serve, which flashsale hands a
    /// postgresql:// database to: a `book` on a file loads neither.
    @Test(.enabled(if: nmInstalled, "nm (binutils) is not installed"))
    func theBinaryLinksNeitherNIONorThePostgreSQLClient() throws {
        let symbols = try Sandbox().execute("/usr/bin/nm", [flashsaleBinary])
        #expect(symbols.stdout.contains(" main"), "nm listed no symbols: \(symbols.stderr)")
        for module in ["PostgresNIO", "NIOPosix", "FlashSalePostgres"] {
            // Swift mangles a module name as its length and its name.
            #expect(!symbols.stdout.contains("\(module.count)\(module)"), "\(module) is linked")
        }
    }
}
