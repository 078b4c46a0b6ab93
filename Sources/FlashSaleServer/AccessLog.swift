import FlashSaleCLI
import FlashSaleCore
import Synchronization

/// One log line per answer (`request_id`, `method`, `route`, `status`, `duration_ms`, and
/// `error` for a failure its answer tells the client less of: `HTTPFailure.detail`), in
/// the shape of `JSONLogHandler`'s lines, numbered across every buyer listener. Written by
/// hand: it is the line the server writes most, and through swift-log's metadata it cost
/// a twentieth of a request.
final class AccessLog: Sendable {
    private let output: LogOutput
    private let lastID = Atomic<UInt64>(0)

    init(output: LogOutput) {
        self.output = output
    }

    func record(method: String, route: String, status: Int, seconds: Double, problem: String? = nil) {
        let id = lastID.add(1, ordering: .relaxed).newValue
        var line = "{\"time\":\""
        line += SystemClock().now().description
        line += status >= 500 ? "\",\"level\":\"error\"" : "\",\"level\":\"info\""
        line += ",\"message\":\"request\",\"duration_ms\":"
        line += String((seconds * 1_000_000).rounded() / 1000)
        if let problem {
            line += ",\"error\":"
            JSON.quote(problem, into: &line)
        }
        line += ",\"method\":"
        JSON.quote(method, into: &line)
        line += ",\"request_id\":"
        line += String(id)
        line += ",\"route\":\""
        line += route
        line += "\",\"status\":"
        line += String(status)
        line += "}\n"
        output.append(line)
    }
}
