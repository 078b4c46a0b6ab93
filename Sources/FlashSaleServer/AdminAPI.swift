import FlashSaleCLI
import FlashSaleCore
import FlashSaleEngine
import HTTPTypes
import HummingbirdCore

/// The admin listener (http.md, "Admin endpoints"): health, metrics and the OpenAPI
/// document, without credentials. Keep it off the public network.
struct AdminAPI: Sendable {
    let readers: Readers
    let metrics: HTTPMetrics
    let clock: @Sendable () -> Instant

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
                try await readers.read { engine in try engine.checkReadable() }
                return Answer.text(.ok, "ok\n")
            } catch {
                return Answer.text(.serviceUnavailable, "unavailable: \(HTTPFailure(error).message)\n")
            }
        case "/metrics":
            do {
                let sales = try await readers.read { [clock] engine in try engine.metrics(of: nil, clock: clock()) }
                return Answer.text(.ok, MetricsCommand.exposition(sales) + metrics.exposition,
                                   type: "text/plain; version=0.0.4; charset=utf-8")
            } catch {
                return Answer.failure(HTTPFailure(error))
            }
        default:
            return Answer.text(.ok, OpenAPIDocument.json, type: "application/json")
        }
    }
}
