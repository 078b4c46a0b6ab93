import FlashSaleCLI
import FlashSaleCore
import Synchronization

/// One log line per answer (`request_id`, `method`, `route`, `status`, `duration_ms`,
/// `client` or `peer` (`Origin`), and `error` for a failure its answer tells the client
/// less of: `HTTPFailure.detail`), in the shape of `JSONLogHandler`'s lines (its keys in
/// order), numbered across every buyer listener. Written by
/// hand, as bytes: it is the line the server writes most; through swift-log's metadata it
/// cost a twentieth of a request, and appended to a String piece by piece 340 instructions
/// a piece (callgrind).
final class AccessLog: Sendable {
    private let output: LogOutput
    private let lastID = Atomic<UInt64>(0)

    init(output: LogOutput) {
        self.output = output
    }

    /// Whom a line names. The buyer's address as blocks and the per-IP limit see it
    /// (`ClientAddress`, after `--trusted-proxy`); for a request that could not be read,
    /// the connection's peer, which may be a proxy, under a key of its own so that an
    /// operator blocking by `client` never blocks the proxy. nil, left out: nothing names
    /// one (a Unix socket's peer).
    enum Origin {
        case client(String?)
        case peer(String?)
    }

    func record(method: String, route: String, status: Int, seconds: Double, from origin: Origin, problem: String? = nil) {
        let id = lastID.add(1, ordering: .relaxed).newValue
        var line = UTF8Text()
        line.append("{\"time\":\"")
        line.append(SystemClock().now().description)
        line.append(status >= 500 ? "\",\"level\":\"error\"" : "\",\"level\":\"info\"")
        line.append(",\"message\":\"request\"")
        if case .client(let client?) = origin {
            line.append(",\"client\":")
            line.appendQuoted(client)
        }
        line.append(",\"duration_ms\":")
        line.append(String((seconds * 1_000_000).rounded() / 1000))
        if let problem {
            line.append(",\"error\":")
            line.appendQuoted(problem)
        }
        line.append(",\"method\":")
        line.appendQuoted(method)
        if case .peer(let peer?) = origin {
            line.append(",\"peer\":")
            line.appendQuoted(peer)
        }
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
