import FlashSaleCore
import FlashSaleEngine

package enum MetricsCommand {
    static let sale = OptionSpec("--sale", value: "SALE", "only this sale")

    /// One gauge: its name, its HELP text and its value for a sale, in the order printed.
    struct Gauge: Sendable {
        let name: String
        let help: String
        let value: @Sendable (Engine.SaleMetrics) -> String
    }

    static let gauges: [Gauge] = [
        Gauge(name: "total", help: "Items in the sale: available + held + booked.") { String($0.status.sale.counters.total) },
        Gauge(name: "available", help: "Items neither held nor booked.") { String($0.status.sale.counters.available) },
        Gauge(name: "held", help: "Items held and not yet expired by a command, overdue ones included.") {
            String($0.status.sale.counters.held)
        },
        Gauge(name: "booked", help: "Items booked (confirmed).") { String($0.status.sale.counters.booked) },
        Gauge(name: "overdue", help: "Holds past their expiry that no command has expired yet.") { String($0.status.overdue) },
        Gauge(name: "queued", help: "Requests in the sale's queue, not yet decided.") { String($0.status.queued) },
        Gauge(name: "oldest_queued_seconds", help: "How long the oldest queued request has waited; 0 when none.") {
            $0.oldestQueued.secondsText
        },
    ]

    static let attemptsHelp = "Booking attempts: direct ones (book, book --stream) as decided, queued ones as submitted."
    static let declinedHelp = "Booking attempts declined, by error code: direct ones as decided, queued ones as process rejects them."

    static let spec = CommandSpec(
        "metrics", options: [sale],
        summary: "counters, queue depth, overdue holds, oldest queued age and attempts, for Prometheus",
        details: """
            The Prometheus text format (0.0.4): each gauge named flashsale_NAME with a sale label, one \
            line per sale in id order; then two counters: flashsale_attempts_total, every booking attempt, \
            and flashsale_declined_attempts_total, with a reason label for each code an attempt can be \
            declined with (sold_out, user_limit, not_open, blocked, conflict). --json prints \
            {"sales": [{"sale": ..., "total": ..., ..., "attempts": ..., "declined_attempts": {"sold_out": ..., ...}}]} instead. \
            For node_exporter's textfile collector, write a temporary file beside the .prom file and rename \
            it, so the collector never reads half a file; from cron, every minute (full paths: cron's PATH is \
            /usr/bin:/bin and its directory the home): /usr/local/bin/flashsale --db /ABSOLUTE/PATH metrics \
            > DIR/flashsale.prom.tmp && mv DIR/flashsale.prom.tmp DIR/flashsale.prom
            """
    ) { invocation, context in
        let saleID = try invocation.saleOption(sale)
        let sales = try context.engine().metrics(of: saleID, clock: context.now())
        guard !context.output.quiet else { return }
        context.output.stdout.write(context.output.json ? json(sales).serialized + "\n" : exposition(sales))
    }

    /// The text exposition format: HELP and TYPE once per metric, then a sample per sale
    /// (per sale and code for the declines, every code listed, so that a rate starts at 0).
    package static func exposition(_ sales: [Engine.SaleMetrics]) -> String {
        var text = ""
        for gauge in gauges {
            let name = "flashsale_" + gauge.name
            text += "# HELP \(name) \(gauge.help)\n# TYPE \(name) gauge\n"
            for sale in sales {
                text += "\(name){sale=\"\(labelValue(sale.status.sale.id.text))\"} \(gauge.value(sale))\n"
            }
        }
        text += "# HELP flashsale_attempts_total \(attemptsHelp)\n# TYPE flashsale_attempts_total counter\n"
        for sale in sales {
            text += "flashsale_attempts_total{sale=\"\(labelValue(sale.status.sale.id.text))\"} \(sale.attempts.attempts)\n"
        }
        text += "# HELP flashsale_declined_attempts_total \(declinedHelp)\n# TYPE flashsale_declined_attempts_total counter\n"
        for sale in sales {
            for code in AttemptTotals.declineCodes {
                text += "flashsale_declined_attempts_total{sale=\"\(labelValue(sale.status.sale.id.text))\",reason=\"\(code.rawValue)\"} "
                    + "\(sale.attempts.declined[code] ?? 0)\n"
            }
        }
        return text
    }

    static func json(_ sales: [Engine.SaleMetrics]) -> JSON {
        .object([("sales", .array(sales.map { sale in
            .object([("sale", .string(sale.status.sale.id.text))] + gauges.map { ($0.name, .number($0.value(sale))) } + [
                ("attempts", .integer(sale.attempts.attempts)),
                ("declined_attempts", .object(AttemptTotals.declineCodes.map { ($0.rawValue, .integer(sale.attempts.declined[$0] ?? 0)) })),
            ])
        }))])
    }

    /// Label values escape backslash, double quote and line feed, as the format requires.
    /// (Sale ids cannot contain them today; the format must hold whatever ids become.)
    package static func labelValue(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
