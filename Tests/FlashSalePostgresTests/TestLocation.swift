@testable import FlashSalePostgres
import FlashSaleTestSupport

extension TestPostgres {
    /// This server, in a schema of one test's own (`newSchema`), without TLS.
    func newLocation() -> PostgresLocation {
        PostgresLocation(endpoint: .tcp(host: host, port: port), user: user, password: password, database: database,
                         tls: .disable, schema: TestPostgres.newSchema())
    }
}
