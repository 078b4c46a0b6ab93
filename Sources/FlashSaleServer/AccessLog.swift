import FlashSaleCLI
import FlashSaleCore
import Synchronization

/// One log line per answer (`request_id`, `method`, `route`, `status`, `duration_ms`,
/// `client`, and `error` for a failure its answer tells the client less of:
/// `HTTPFailure.detail`), in
/// the shape of `JSONLogHandler`'s lines, numbered across every buyer listener. Written by
/// hand, as bytes: it is the line the server writes most; through swift-log's metadata it
/// cost a twentieth of a request, and appended to a String piece by piece 340 instructions
/// a piece (callgrind).
final class AccessLog: Sendable {
    private let output: LogOutput
    private let lastID = Atomic<UInt64>(0)

    init(output: LogOutput) {
        self.output = output
    }

    /// `client` is the buyer's address as the per-IP limit counts it (`ClientAddress`), or
    /// the peer's for a request that could not be read; nil, left out, when nothing names one.
    func record(method: String, route: String, status: Int, seconds: Double, client: String?, problem: String? = nil) {
        let id = lastID.add(1, ordering: .relaxed).newValue
        var line = UTF8Text()
        line.append("{\"time\":\"")
        line.append(SystemClock().now().description)
        line.append(status >= 500 ? "\",\"level\":\"error\"" : "\",\"level\":\"info\"")
        line.append(",\"message\":\"request\",\"duration_ms\":")
        line.append(String((seconds * 1_000_000).rounded() / 1000))
        if let client {
            line.append(",\"client\":")
            line.appendQuoted(client)
        }
        if let problem {
            line.append(",\"error\":")
            line.appendQuoted(problem)
        }
        line.append(",\"method\":")
        line.appendQuoted(method)
        line.append(",\"request_id\":")
        line.append(Int(id))
        line.append(",\"route\":\"")
        line.append(route)
        line.append("\",\"status\":")
        line.append(status)
        line.append("}\n")
        output.append(line)
    }
}
