import Foundation
import FlashSaleCore
@testable import FlashSalePostgres

extension TestPostgres {
    /// The tests' server (`FLASHSALE_TEST_PG`) as a `--db` URL for a schema of one test's own.
    public static func url(schema: String) -> String? {
        guard let url = ProcessInfo.processInfo.environment["FLASHSALE_TEST_PG"] else { return nil }
        return url + (url.contains("?") ? "&" : "?") + "schema=" + schema
    }

    /// Drops a test's schema with everything in it, so that the tests leave the server as
    /// they found it; nothing when the schema was never made.
    public static func dropSchema(_ schema: String) {
        guard let url = url(schema: schema),
              let location = try? PostgresLocation(url: url, environment: [:], operatingSystemUser: nil),
              let session = try? PostgresSession(location: location, busyTimeout: .seconds(30))
        else { return }
        _ = try? session.execute("DROP SCHEMA IF EXISTS \(quotedIdentifier(schema)) CASCADE")
    }
}
