import Testing
import FlashSaleTestSupport

/// The stores the command-line tests of the rules run on, each test taking each in turn:
/// the same commands, the same output and exit codes. PostgreSQL joins when a server is
/// given (FLASHSALE_TEST_PG); `commandLinePostgresHalf` says when it is not.
let commandLineStores: [TestStore] = TestPostgres.isConfigured ? [.sqlite, .postgres] : [.sqlite]

/// Reported skipped without a server, so that the PostgreSQL half never passes unseen.
@Test("The command-line tests' PostgreSQL half", .enabled(if: TestPostgres.isConfigured, "FLASHSALE_TEST_PG is not set"))
func commandLinePostgresHalf() throws {
    #expect(commandLineStores.contains(.postgres))
    let box = try Sandbox(.postgres)
    #expect(try box.run(["init"]).status == 0)
    #expect(try box.spawn(["sales"]).status == 0)
}

enum TestStore: String, Sendable, CustomTestStringConvertible {
    case sqlite = "SQLite"
    case postgres = "PostgreSQL"

    var testDescription: String { rawValue }
}
