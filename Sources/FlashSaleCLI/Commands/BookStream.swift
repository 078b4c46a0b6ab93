import FlashSaleCore
import FlashSaleEngine

/// `book SALE --stream`: requests on standard input, one NDJSON decision per line on
/// standard output, in input order. Decisions are committed in groups (one fsync for up to
/// `groupSize`), and whenever the input pauses; each line is printed only after its group
/// committed.
enum BookStream {
    static let groupSize = 8192

    static func run(_ invocation: Invocation, _ context: Context) throws {
        for option in [BookCommand.ip, BookCommand.userAgent, BookCommand.key] where invocation.options.has(option.name) {
            throw FlashSaleError.usage("\(option.name) is per request: with --stream it comes from each input line")
        }
        if invocation.arguments["USER"] != nil {
            throw FlashSaleError.usage("book --stream reads its users from standard input; give no USER")
        }
        let saleID = try invocation.requiredSaleID()
        let format = try BookCommand.requestFormat(invocation)
        let engine = try context.engine()
        _ = try engine.sale(saleID)
        let stream = DecisionGroup(engine: engine)
        let input = try context.input("-")
        let output = context.output
        // The group's answers, one NDJSON line each, in one string: a string per line cost
        // more than the writing of it.
        var answers = ""
        var answered = 0

        // Durable first, printed second: a decision on stdout is a committed decision.
        func commitAndPrint() throws {
            try stream.commit()
            if !output.quiet { output.stdout.write(answers) }
            answers.removeAll(keepingCapacity: true)
            answered = 0
            output.stdout.flush()
            try context.checkOutput()
        }
        input.beforeWaiting = { if answered > 0 { try commitAndPrint() } }

        // From a file (`< requests.ndjson`), the share of it read, on a terminal.
        let progress = Progress(every: 100_000, label: "decided", sink: output.stderr)
        progress.follow(input)
        var reader = RequestReader(format: format, nextChunk: input.next)
        while let outcome = try reader.next() {
            try answer(outcome, stream: stream, sale: saleID, clock: context, into: &answers)
            answered += 1
            progress.tick()
            if answered >= groupSize { try commitAndPrint() }
        }
        try commitAndPrint()
        progress.finish()
    }

    /// One decision as an NDJSON line, written piece by piece: this runs once per input line.
    private static func answer(_ outcome: ReadOutcome, stream: DecisionGroup, sale: SaleID, clock: Context,
                               into text: inout String) throws {
        switch outcome {
        case .malformed(let line, let reason):
            text += "{\"line\":"
            text += String(line)
            text += ",\"ok\":false,\"error\":\"bad_input\",\"message\":"
            JSON.quote(reason, into: &text)
            text += "}\n"
        case .record(let record):
            text += "{\"line\":"
            text += String(record.line)
            text += ",\"user\":"
            JSON.quote(record.user, into: &text)
            let request = BookingRequest(sale: sale, user: UserID(trusted: record.user), ip: record.ip, userAgent: record.userAgent, key: record.key)
            switch try stream.book(request, clock: clock.now()) {
            case .held(let booking), .repeated(let booking):
                text += ",\"ok\":true,\"booking\":\""
                text += booking.id.text
                text += "\",\"expires_at\":\""
                text += booking.expiresAt.description
                text += "\"}\n"
            case .declined(let decline):
                text += ",\"ok\":false,\"error\":\""
                text += decline.reason.rawValue
                text += "\"}\n"
            case .refused(let refusal):
                let error = refusal.commandLineError
                text += ",\"ok\":false,\"error\":\""
                text += error.code
                text += "\",\"message\":"
                JSON.quote(error.message, into: &text)
                text += "}\n"
            }
        }
    }
}
