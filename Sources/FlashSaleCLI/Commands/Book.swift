import FlashSaleCore

enum BookCommand {
    static let ip = OptionSpec("--ip", value: "IP", "the buyer's IPv4 or IPv6 address, kept for bot defence")
    static let userAgent = OptionSpec("--user-agent", value: "UA", "the buyer's user agent, kept for bot defence")
    static let key = OptionSpec("--key", value: "KEY", "idempotency key: the same key again returns the same booking")
    static let stream = OptionSpec("--stream", "read requests from standard input, one per line, and answer each in NDJSON")
    static let format = OptionSpec("--format", value: "FORMAT", "with --stream: ndjson or csv (default: sniffed from the first character)")

    static let spec = CommandSpec(
        "book", usages: [UsageSpec("SALE USER", options: [ip, userAgent, key]),
                         UsageSpec("SALE", mode: stream, options: [format])],
        summary: "hold one item for USER, or decline (exit 6 sold out, 7 user limit, 8 not open, 9 blocked)",
        details: """
            Prints the booking id. The hold lasts the sale's hold time; confirm or cancel it before then.
            With --stream, USER is not given: each input line is a request, and each gets one NDJSON decision, \
            in input order, printed only after it has committed.
            """
    ) { invocation, context in
        if invocation.flag(stream) {
            try BookStream.run(invocation, context)
            return
        }
        if invocation.options.has(format.name) { throw FlashSaleError.usage("--format goes with --stream") }
        let request = try BookingRequest(
            sale: invocation.requiredSaleID(),
            user: invocation.user(argument: "USER"),
            ip: invocation.text(.ip, option: ip),
            userAgent: invocation.text(.userAgent, option: userAgent),
            key: invocation.text(.key, option: key))
        context.output.success(Render.bookingID(try context.engine().book(request, clock: context.now())))
    }

    /// `--format`, or nil to sniff it.
    static func requestFormat(_ invocation: Invocation) throws(FlashSaleError) -> RequestFormat? {
        guard let text = invocation.options[format.name] else { return nil }
        guard let parsed = RequestFormat(rawValue: text) else {
            throw .usage("--format must be ndjson or csv, not '\(Quoted(text))'")
        }
        return parsed
    }
}
