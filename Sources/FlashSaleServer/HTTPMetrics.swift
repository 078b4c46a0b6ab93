import FlashSaleCLI
import NIOConcurrencyHelpers

/// `flashsale_http_requests_total{route,status}` and the latency histogram
/// `flashsale_http_request_duration_seconds{route}`, the requests in flight, and the group
/// commits with the decisions they made durable, in Prometheus' text format.
final class HTTPMetrics: Sendable {
    /// Upper bounds in seconds: from a decision answered without a sync to a busy wait.
    static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct Histogram: Sendable {
        var counts = [Int](repeating: 0, count: HTTPMetrics.buckets.count)
        var count = 0
        var sum = 0.0

        mutating func add(_ seconds: Double) {
            if let bucket = HTTPMetrics.buckets.firstIndex(where: { seconds <= $0 }) { counts[bucket] += 1 }
            count += 1
            sum += seconds
        }
    }

    /// A requests counter's labels, spelled only when the metrics are read.
    private struct Answered: Hashable, Comparable, Sendable {
        let route: String
        let status: Int

        static func < (a: Answered, b: Answered) -> Bool { (a.route, a.status) < (b.route, b.status) }
    }

    private struct State: Sendable {
        var requests: [Answered: Int] = [:]
        var durations: [String: Histogram] = [:]
        var inFlight = 0
        var commits = 0
        var decisions = 0
    }

    private let state = NIOLockedValueBox(State())

    /// A request's head was read: it is in flight until `record` counts its answer.
    func started() {
        state.withLockedValue { $0.inFlight += 1 }
    }

    /// The committer made a group of `decisions` durable in one commit.
    func committed(decisions: Int) {
        state.withLockedValue { state in
            state.commits += 1
            state.decisions += decisions
        }
    }

    /// `route`: a route's name, or `none` for a path that matched none.
    func record(route: String, status: Int, seconds: Double) {
        state.withLockedValue { state in
            state.inFlight -= 1
            // In place: a copy of the histogram taken out and put back copied its counts each time.
            state.requests[Answered(route: route, status: status), default: 0] += 1
            state.durations[route, default: Histogram()].add(seconds)
        }
    }

    var exposition: String {
        let state = state.withLockedValue { $0 }
        var text = "# HELP flashsale_http_requests_total Buyer API requests answered, by route and status.\n"
        text += "# TYPE flashsale_http_requests_total counter\n"
        for answered in state.requests.keys.sorted() {
            text += "flashsale_http_requests_total{route=\"\(MetricsCommand.labelValue(answered.route))\","
                + "status=\"\(answered.status)\"} \(state.requests[answered] ?? 0)\n"
        }
        text += "# HELP flashsale_http_request_duration_seconds Buyer API answer times, by route.\n"
        text += "# TYPE flashsale_http_request_duration_seconds histogram\n"
        for route in state.durations.keys.sorted() {
            guard let histogram = state.durations[route] else { continue }
            let name = "flashsale_http_request_duration_seconds"
            let label = "route=\"\(MetricsCommand.labelValue(route))\""
            var cumulative = 0
            for (bound, count) in zip(HTTPMetrics.buckets, histogram.counts) {
                cumulative += count
                text += "\(name)_bucket{\(label),le=\"\(bound)\"} \(cumulative)\n"
            }
            text += "\(name)_bucket{\(label),le=\"+Inf\"} \(histogram.count)\n"
            text += "\(name)_sum{\(label)} \(histogram.sum)\n"
            text += "\(name)_count{\(label)} \(histogram.count)\n"
        }
        text += HTTPMetrics.single("flashsale_http_requests_in_flight", "gauge",
                                   "Buyer API requests read and not yet answered.", state.inFlight)
        // Their ratio is the group commit at work: decisions per disk sync.
        text += HTTPMetrics.single("flashsale_http_group_commits_total", "counter",
                                   "Commits of the buyer API's changes, each one disk sync.", state.commits)
        text += HTTPMetrics.single("flashsale_http_group_decisions_total", "counter",
                                   "Changes decided and made durable by those commits.", state.decisions)
        return text
    }

    /// A metric of one sample, without labels: its HELP, its TYPE and its value.
    static func single(_ name: String, _ type: String, _ help: String, _ value: Int) -> String {
        "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
    }
}
