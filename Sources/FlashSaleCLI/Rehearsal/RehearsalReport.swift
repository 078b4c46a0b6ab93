import FlashSaleCore

/// What a rehearsal found, as `rehearse` prints it (text, or one JSON document).
struct RehearsalReport {
    let path: String
    let seed: UInt64
    let buyers: Int
    let bots: Int
    let inventory: Int64
    let requests: Int
    /// The crowd's decisions, and how long its path took to make them.
    let crowd: WaveTiming
    /// When the stock first ran out, in the sale's time: the arrival of the request that
    /// took the last item in stock.
    let soldOutAfter: Span?
    let holds: Int
    let confirmed: Int
    let cancelled: Int
    let expired: Int64
    let returning: Int
    let resold: Int
    let left: Int64
    let turnedAway: Int
    let botRequests: Int
    let botItems: Int
    let declined: [(String, Int64)]
    let suspects: [Suspect]
    let violations: [String]
    /// The sale `verify` checked alone, in a database given with --db (whose other sales
    /// are not the rehearsal's); nil when it checked the whole scratch database.
    let verifiedSale: SaleID?
    /// Where the database stays (kept, or given), nil when it was removed.
    let database: String?
    let seconds: Double

    var decisionsPerSecond: Int64 {
        crowd.seconds > 0 ? Int64(Double(crowd.decided) / crowd.seconds) : 0
    }

    /// The latency under which `share` of the answers came, in milliseconds.
    func latency(_ share: Double) -> Double? {
        guard let latencies = crowd.latencies, !latencies.isEmpty else { return nil }
        let sorted = latencies.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * share).rounded(.up)) - 1)] * 1000
    }

    var rendered: Rendered {
        Rendered(text: text, json: json)
    }

    private var verdict: String {
        (violations.isEmpty ? "ok" : String.counted(violations.count, "violation") + ": " + violations.prefix(3).joined(separator: "; "))
            + (verifiedSale.map { " (sale \($0.text) only)" } ?? "")
    }

    /// When the stock ran out, and whether items came back after and stayed unsold (a
    /// sale sold out at its opening may end with items left), or why it never ran out.
    private var soldOutLine: String {
        guard let soldOutAfter else { return "no: the stock never ran out" }
        let after = "\(format(Double(soldOutAfter.milliseconds) / 1000, digits: 3)) s after the opening"
        return left > 0 ? after + "; \(String.counted(left, "item")) came back later (cancelled or expired) and \(left == 1 ? "was" : "were") left" : after
    }

    private var text: String {
        func milliseconds(_ value: Double?) -> String { value.map { format($0, digits: 1) + " ms" } ?? "n/a" }
        var lines = [
            "rehearsal via \(path), seed \(seed): \(String.counted(buyers, "buyer")) (\(String.counted(bots, "bot"))), "
                + "\(String.counted(inventory, "item")), \(String.counted(requests, "request"))",
            "  decisions/s      \(decisionsPerSecond) (\(crowd.decided) in \(format(crowd.seconds, digits: 3)) s)",
            "  latency          p50 \(milliseconds(latency(0.5))), p99 \(milliseconds(latency(0.99)))",
            "  sold out         " + soldOutLine,
            "  holds            \(holds): \(confirmed) confirmed, \(cancelled) cancelled, \(expired) expired",
            "  re-sold          \(resold) to \(String.counted(returning, "returning buyer")), after the cancels and expiries",
            "  items            \(Int64(confirmed + resold)) sold, \(left) left",
            "  turned away      \(String.counted(turnedAway, "buyer")) got nothing; "
                + (declined.isEmpty ? "none declined" : "declined: " + declined.map { "\($0.1) \($0.0)" }.joined(separator: ", ")),
            "  bots             \(String.counted(botItems, "item")) sold to bots, who sent \(String.counted(botRequests, "request")) in the crowd",
        ]
        lines.append("  suspects         " + (suspects.isEmpty ? "none" : suspects.count == 1 ? "one, with its score:" : "the top \(suspects.count), by score:"))
        for suspect in suspects {
            lines.append("    \(suspect.score) \(suspect.kind.rawValue) \(Quoted(suspect.value)): \(suspect.reasons.joined(separator: "; "))")
        }
        lines.append("  verify           \(verdict)")
        lines.append("  wall time        \(format(seconds, digits: 2)) s")
        if let database { lines.append("  database         \(database.controlCharactersEscaped)") }
        return lines.joined(separator: "\n")
    }

    private var json: JSON {
        .object([
            ("via", .string(path)), ("seed", .number(String(seed))), ("buyers", .integer(Int64(buyers))),
            ("bots", .integer(Int64(bots))), ("inventory", .integer(inventory)), ("requests", .integer(Int64(requests))),
            ("decisions", .integer(Int64(crowd.decided))), ("decision_seconds", .number(format(crowd.seconds, digits: 6))),
            ("decisions_per_second", .integer(decisionsPerSecond)),
            ("latency_p50_ms", latency(0.5).map { .number(format($0, digits: 3)) } ?? .null),
            ("latency_p99_ms", latency(0.99).map { .number(format($0, digits: 3)) } ?? .null),
            ("sold_out_after_seconds", soldOutAfter.map { .number(format(Double($0.milliseconds) / 1000, digits: 3)) } ?? .null),
            ("holds", .integer(Int64(holds))), ("confirmed", .integer(Int64(confirmed))),
            ("cancelled", .integer(Int64(cancelled))), ("expired", .integer(expired)),
            ("returning", .integer(Int64(returning))), ("resold", .integer(Int64(resold))),
            ("sold", .integer(Int64(confirmed + resold))), ("left", .integer(left)),
            ("turned_away", .integer(Int64(turnedAway))),
            ("declined", .object(declined.map { ($0.0, .integer($0.1)) })),
            ("bot_requests", .integer(Int64(botRequests))), ("bot_items", .integer(Int64(botItems))),
            ("suspects", .array(suspects.map { suspect in
                .object([("kind", .string(suspect.kind.rawValue)), ("value", .string(suspect.value)),
                         ("score", .integer(Int64(suspect.score))), ("reasons", .array(suspect.reasons.map { .string($0) }))])
            })),
            ("verify", .object([("ok", .bool(violations.isEmpty)), ("violations", .array(violations.map { .string($0) }))])),
            ("wall_seconds", .number(format(seconds, digits: 3))),
            ("database", .string(database)),
        ])
    }

    /// `12.345` with `digits` decimals, never in exponent form (JSON and people both read it).
    func format(_ value: Double, digits: Int) -> String {
        var scale: Int64 = 1
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int64((value * Double(scale)).rounded())
        let whole = String(scaled / scale)
        let fraction = String(scaled % scale)
        return digits == 0 ? whole : whole + "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
}
