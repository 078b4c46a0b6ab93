import FlashSaleCLI
import FlashSaleCore
import FlashSaleEngine
import HTTPTypes
import HummingbirdCore
import Logging

/// The admin listener (http.md, "Admin endpoints"): health, metrics and the OpenAPI
/// document, without credentials. Keep it off the public network.
struct AdminAPI: Sendable {
    /// The admin's own reader, so that its reads are not queued behind the buyers'.
    let readers: Readers
    /// The buyers' reader, for when the database has no connection free for the admin's.
    let buyersReaders: Readers
    let metrics: HTTPMetrics
    let clock: @Sendable () -> Instant
    /// Where a failed read's words go: its answer is read by a load balancer or a scraper,
    /// not by the operator.
    let logger: Logger

    /// Connections the admin listener holds at once; one more is closed as soon as it opens.
    /// A health checker and a scraper need a few. Unbounded, idle ones (the admin listener
    /// may face a monitoring network) took every descriptor the buyers' listeners needed,
    /// which then answered nobody (found by probing); this many fit in the descriptors
    /// kept beside the buyers' (`OpenFilesLimit.reserve`).
    static let maximumConnections = 16

    private static let routes: [String: String] = [
        "/healthz": "health", "/metrics": "metrics", "/openapi.json": "openapi",
    ]

    func answer(_ request: Request) async -> Answer {
        // The buyers' limit: what a health checker or a scraper sends is far smaller, and
        // anything bigger is someone else's request on a port that should not reach them.
        do {
            try Limits.checkHeaders(request.headers)
        } catch {
            return Answer.failure(HTTPFailure(error))
        }
        let path = String((request.head.path ?? "").split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        guard AdminAPI.routes[path] != nil else {
            return Answer.failure(HTTPFailure(.notFound, ErrorCode.notFound.rawValue, "no such resource: /healthz, /metrics, /openapi.json"))
        }
        guard request.method == .get || request.method == .head else {
            return Answer.failure(.badInput("\(request.method.rawValue) is not allowed here; use GET, HEAD", status: .methodNotAllowed,
                                            headers: [.allow: "GET, HEAD"]))
        }
        switch path {
        case "/healthz":
            // A read that reaches the database: 503 while it cannot answer one. The sales'
            // rows, which every buyer's request reads: the log's tail alone read well from
            // a file whose sale rows could no longer be read.
            do {
                try await read { engine in try engine.checkReadable() }
                return Answer.text(.ok, "ok\n")
            } catch {
                return Answer.text(.serviceUnavailable, "unavailable: \(unanswered(path, error))\n")
            }
        case "/metrics":
            // The HTTP series whether or not the database answers: a scrape that failed
            // whole lost them when they were most wanted (found by probing).
            var sales: String?
            do {
                sales = try await MetricsCommand.exposition(read { [clock] engine in try engine.metrics(of: nil, clock: clock()) })
            } catch {
                unanswered(path, error)
            }
            let up = HTTPMetrics.single("flashsale_database_up", "gauge",
                                        "Whether the database answered this scrape's read (1), with the sales' series, or not (0).",
                                        sales == nil ? 0 : 1)
            return Answer.text(.ok, (sales ?? "") + up + metrics.exposition, type: "text/plain; version=0.0.4; charset=utf-8")
        default:
            return Answer.text(.ok, OpenAPIDocument.json, type: "application/json")
        }
    }

    /// `body` on the admin's reader, or on the buyers' when the database server has no
    /// connection free for the admin's own: the buyers' are served, and so this server is
    /// up. Found by probing: after PostgreSQL restarted, other clients took the connections
    /// left before a health check made its own anew, and /healthz said 503 for as long as
    /// they held them, while the buyers' reads and bookings went on.
    private func read<T: Sendable>(_ body: @escaping @Sendable (Engine) throws -> T) async throws -> T {
        do {
            return try await readers.read(body)
        } catch {
            guard case .noConnectionFree? = StoreFailure.of(error) else { throw error }
            return try await buyersReaders.read(body)
        }
    }

    /// Logs why the database did not answer `path`'s read (found by probing: a 503 said
    /// "its log says why", and the log said nothing), and returns those words: the admin
    /// listener is the operator's.
    @discardableResult
    private func unanswered(_ path: String, _ error: any Error) -> String {
        let failure = HTTPFailure(error)
        let words = failure.detail ?? failure.message
        logger.error("the database did not answer", metadata: ["path": .string(path), "error": .string(words)])
        return words
    }
}
