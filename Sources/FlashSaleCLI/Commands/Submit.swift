import FlashSaleCore
import FlashSaleEngine

enum SubmitCommand {
    static let file = OptionSpec("--file", value: "PATH", "enqueue every request of a file (- for standard input), all or nothing")
    static let key = OptionSpec("--key", value: "KEY", "idempotency key: the same key again returns the same request")
    static let format = OptionSpec("--format", value: "FORMAT", "with --file: ndjson or csv (default: sniffed from the first character)")
    static let skipInvalid = OptionSpec("--skip-invalid", "with --file: leave malformed lines out and report them, instead of enqueuing nothing")

    static let spec = CommandSpec(
        "submit", usages: [UsageSpec("SALE USER", options: [BookCommand.ip, BookCommand.userAgent, key]),
                           UsageSpec("SALE", mode: file, options: [format, skipInvalid])],
        summary: "enqueue a booking request durably; prints its request id (FIFO order)",
        details: """
            'flashsale process' decides queued requests; 'flashsale request ID' tells what became of one.
            With --file, USER is not given: each line of the file is a request (NDJSON, or CSV with a header).
            """
    ) { invocation, context in
        guard let path = invocation.options[file.name] else {
            for option in [format, skipInvalid] where invocation.options.has(option.name) {
                throw FlashSaleError.usage("\(option.name) goes with --file")
            }
            try submitOne(invocation, context)
            return
        }
        for option in [BookCommand.ip, BookCommand.userAgent, key] where invocation.options.has(option.name) {
            throw FlashSaleError.usage("\(option.name) is per request: with --file it comes from each line")
        }
        if invocation.arguments["USER"] != nil {
            throw FlashSaleError.usage("submit --file reads its users from the file; give no USER")
        }
        try submitFile(path, invocation, context)
    }

    private static func submitOne(_ invocation: Invocation, _ context: Context) throws {
        let request = try BookingRequest(
            sale: invocation.requiredSaleID(),
            user: invocation.user(argument: "USER"),
            ip: invocation.text(.ip, option: BookCommand.ip),
            userAgent: invocation.text(.userAgent, option: BookCommand.userAgent),
            key: invocation.text(.key, option: key))
        let engine = try context.engine()
        let id = try engine.submit(request, clock: context.now()).id
        let queued = context.output.json ? try engine.request(id) : nil
        context.output.success(Rendered(text: String(id.value), json: queued.map { Render.request($0).json } ?? .integer(id.value)))
    }

    private static func submitFile(_ path: String, _ invocation: Invocation, _ context: Context) throws {
        let sale = try invocation.requiredSaleID()
        let format = try BookCommand.requestFormat(invocation)
        // Read whole before the transaction begins, which it would otherwise hold while a
        // pipe is slow to write (InputChunks.whole); up to a line too long, or with each such
        // line cut short when they are skipped.
        let input = try context.input(path).whole(
            spoolingIn: TemporaryDirectory.path(in: context.environment), longestLine: RequestReader.maximumRecordBytes,
            pastIt: invocation.flag(skipInvalid) ? .isCut : .stopsTheCopy)
        let records = ReadAhead(RequestReader(format: format, nextChunk: input.next))
        defer { records.stop() }
        let progress = Progress(every: 100_000, label: "read", sink: context.output.notes)
        progress.follow(input)
        // Each skipped line is said as it is found, on stderr, or written into the JSON
        // report's array: kept as values for the report, a million bad lines took 336 MB
        // (443 MB with --json), where the rest of a submit takes a few (found by probing).
        var skippedJSON = UTF8Text()
        let skipping: ((Int, String) -> Void)? = !invocation.flag(skipInvalid) ? nil : context.output.json ? { line, reason in
            skippedJSON.append(skippedJSON.isEmpty ? "[{\"line\":" : ",{\"line\":")
            skippedJSON.append(line)
            skippedJSON.append(",\"reason\":")
            skippedJSON.appendQuoted(reason)
            skippedJSON.append("}")
        } : { line, reason in
            // Flushed: the sink holds 64 KiB otherwise, and the line would come at the end.
            context.output.notes.write("flashsale: line \(line) skipped: \(reason)\n")
            context.output.notes.flush()
        }
        let report = try context.engine().submit(to: sale, clock: context.now(), skipping: skipping) {
            let outcome = try records.next()
            if outcome != nil { progress.tick() }
            return outcome
        }
        progress.finish()
        skippedJSON.append(skippedJSON.isEmpty ? "[]" : "]")
        let ids = report.firstID.map { first in
            let last = report.lastID ?? first
            return first == last ? " (id \(first))" : " (ids \(first)-\(last))"
        } ?? ""
        context.output.success(Rendered(
            text: "\(report.enqueued) enqueued\(ids), \(report.repeated) repeated, \(report.skipped) skipped",
            json: .object([
                ("enqueued", .integer(report.enqueued)), ("repeated", .integer(report.repeated)),
                ("first_id", report.firstID.map { .integer($0.value) } ?? .null), ("last_id", report.lastID.map { .integer($0.value) } ?? .null),
                ("skipped", .serialized(skippedJSON)),
            ])))
    }
}
