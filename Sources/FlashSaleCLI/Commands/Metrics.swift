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

    static let spec = CommandSpec(
        "metrics", options: [sale],
        summary: "counters, queue depth, overdue holds and oldest queued age, for Prometheus",
        details: """
            The Prometheus text format (0.0.4): each gauge named flashsale_NAME with a sale label, one \
            line per sale in id order. --json prints {"sales": [{"sale": ..., "total": ..., ...}]} instead. \
            For node_exporter's textfile collector, write a temporary file beside the .prom file and rename \
            it, so the collector never reads half a file; from cron, every minute: \
            flashsale --db PATH metrics > DIR/flashsale.prom.tmp && mv DIR/flashsale.prom.tmp DIR/flashsale.prom
            """
    ) { invocation, context in
        let saleID = try invocation.saleOption(sale)
        let sales = try context.engine().metrics(of: saleID, clock: context.now())
        guard !context.output.quiet else { return }
        context.output.stdout.write(context.output.json ? json(sales).serialized + "\n" : exposition(sales))
    }

    /// The text exposition format: HELP and TYPE once per gauge, then a sample per sale.
    package static func exposition(_ sales: [Engine.SaleMetrics]) -> String {
        var text = ""
        for gauge in gauges {
            let name = "flashsale_" + gauge.name
            text += "# HELP \(name) \(gauge.help)\n# TYPE \(name) gauge\n"
            for sale in sales {
                text += "\(name){sale=\"\(labelValue(sale.status.sale.id.text))\"} \(gauge.value(sale))\n"
            }
        }
        return text
    }

    static func json(_ sales: [Engine.SaleMetrics]) -> JSON {
        .object([("sales", .array(sales.map { sale in
            .object([("sale", .string(sale.status.sale.id.text))] + gauges.map { ($0.name, .number($0.value(sale))) })
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
