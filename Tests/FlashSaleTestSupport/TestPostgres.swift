import Foundation

/// The throwaway PostgreSQL server the tests may use (`.ci/postgres start`):
/// `FLASHSALE_TEST_PG` is `postgresql://user:password@host:port/database`. Without it,
/// PostgreSQL tests report themselves skipped.
public struct TestPostgres: Sendable {
    public let user: String
    public let password: String?
    public let host: String
    public let port: Int
    public let database: String

    /// The server named by the environment, or nil.
    public static let server: TestPostgres? = ProcessInfo.processInfo.environment["FLASHSALE_TEST_PG"].flatMap(TestPostgres.init(url:))

    public static var isConfigured: Bool { server != nil }

    /// Only the simple form `.ci/postgres` prints; the real parser is the CLI's.
    init?(url: String) {
        guard let components = URLComponents(string: url), let host = components.host,
              components.scheme == "postgresql" || components.scheme == "postgres" else { return nil }
        user = components.user ?? "postgres"
        password = components.password
        self.host = host
        port = components.port ?? 5432
        let path = components.path.drop { $0 == "/" }
        database = path.isEmpty ? user : String(path)
    }

    /// A schema name of one test's own, so that tests run in parallel on one server.
    public static func newSchema() -> String {
        "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }
}
