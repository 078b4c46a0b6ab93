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
