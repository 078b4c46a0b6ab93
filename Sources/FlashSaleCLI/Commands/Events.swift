import FlashSaleCore
import FlashSaleEngine

package enum EventsCommand {
    static let sale = OptionSpec("--sale", value: "SALE", "only this sale's events")
    static let after = OptionSpec("--after", value: "SEQ", "only events with a seq above SEQ: the last one a consumer saw")
    static let follow = OptionSpec("--follow", "then wait for new events, until SIGINT, SIGTERM, SIGHUP or a closed stdout")
    static let limit = OptionSpec("--limit", value: "N", "stop after N events")

    /// Events read per query: enough that a long log streams quickly, few enough that a
    /// page costs little memory and the read transaction behind it ends at once.
    static let pageSize: Int64 = 1000
    /// How often `--follow` asks whether anything was committed, at the cost of one
    /// `PRAGMA data_version` (a look at shared memory): a new event is printed within
    /// about this long plus one query, and an idle follower costs no CPU to speak of.
    static let pollMilliseconds = 50

    static let spec = CommandSpec(
        "events", options: [sale, after, follow, limit],
        summary: "the event log as NDJSON, oldest first; --follow waits for new events",
        details: """
            One JSON object a line, whatever --json says: seq, at, sale, kind, and booking, user, request, \
            detail where they apply. seq grows in commit order and is never reused, so a consumer that \
            restarts with --after LAST_SEQ_SEEN gets every event exactly once. Blocks of every sale are \
            logged with sale "*", which --sale does not match. With --follow, events are printed within \
            about 100 ms of their commit; SIGINT, SIGTERM, SIGHUP or a reader that goes away (| head) end it, exit 0.
            """
    ) { invocation, context in
        let saleID = try invocation.saleOption(sale)
        var last = try invocation.wholeNumber(after.name, in: 0...Int64.max / 2) ?? 0
        let maximum = try invocation.wholeNumber(limit.name, in: 1...Int64.max / 2)
        let signals = invocation.flag(follow) ? StopSignals() : nil
        let watcher = CommitWatcher(signals: signals, intervalMilliseconds: pollMilliseconds, notes: context.output.notes,
                                    log: context.output.stderr)
        // nil: stopped while another process held the database.
        guard let start = try watcher.startingUp({ () throws -> (engine: Engine, reached: Event?) in
            let engine = try context.engine()
            // A seq past the log's end is none of its events (another database's, or this one
            // restored from an older backup): --follow would skip every event up to it, silent.
            if last > 0, case let latest = try engine.latestEventSeq(), last > latest {
                throw FlashSaleError.notFound("no event \(last) in this database, whose last is \(latest): --after takes a seq it printed")
            }
            return (engine, signals == nil || last == 0 ? nil : try engine.event(last))
        }) else { return }
        let engine = start.engine
        // Quiet, a follower still follows, printing nothing: `-q events --follow --limit 1`
        // waits for the next event (found by probing: it exited 0 at once).
        let quiet = context.output.quiet
        guard !quiet || signals != nil else {
            _ = try engine.events(after: last, sale: saleID, limit: 0)  // exit 3 for no such sale
            return
        }
        context.output.endWhenReaderLeaves()
        let out = context.output.stdout
        try watcher.watch(engine.store)
        var printed: Int64 = 0
        var lines = UTF8Text()
        // The event a follower has reached: the last it printed, or the one --after names.
        var reached = start.reached

        do {
            reading: while true {
                let room = maximum.map { min(pageSize, $0 - printed) } ?? pageSize
                guard let page = try watcher.persisting({ try engine.events(after: last, sale: saleID, limit: room) }) else { break }
                if !quiet {
                    for event in page {
                        append(event, to: &lines)
                    }
                    out.write(utf8: lines.bytes)
                    lines.removeAll()
                }
                printed += Int64(page.count)
                last = page.last?.seq ?? last
                if signals != nil, let event = page.last { reached = event }
                if maximum.map({ printed >= $0 }) ?? false { break }
                if Int64(page.count) == room {
                    // More may be there already: no waiting, but a stop still ends it between pages.
                    if out.writeError != nil || watcher.stopRequested() { break }
                    continue
                }
                out.flush()
                guard out.writeError == nil, try watcher.wait(alsoStop: { !quiet && out.readerClosed }) == .changed else { break }
                try ensureStill(reached, in: engine, watcher)
            }
        } catch {
            // Its seqs are the old file's (or schema's), or went back with the commits lost: a
            // follower that starts again on the one now there must not skip that many of its.
            let advice = "; a follower of the one now there starts without the --after of the old one"
            switch StoreFailure.of(error) {
            case .moved(let detail)?: throw StoreFailure.moved(detail: detail + advice)
            case .split(let detail)?: throw StoreFailure.split(detail: detail + advice)
            default: throw error
            }
        }
    }

    /// A commit that leaves the event a follower reached gone, or another under its seq, is
    /// the log gone back under it (`Engine.logStillHas`). Where the log went back to, the
    /// follower cannot know.
    private static func ensureStill(_ reached: Event?, in engine: Engine, _ watcher: CommitWatcher) throws {
        guard let reached, let still = try watcher.persisting({ try engine.logStillHas(reached) }), !still else { return }
        throw FlashSaleError.cantOpen("the event log changed under the follower: event \(reached.seq), the last it reached, "
                                      + "is gone or another (its database restored from an older backup?); "
                                      + "follow it anew with --after the last event of that backup")
    }

    /// One event as a JSON line; keys that do not apply to its kind are left out.
    package static func line(_ event: Event) -> String {
        var text = UTF8Text()
        append(event, to: &text)
        return String(decoding: text.bytes, as: UTF8.self)
    }

    /// The event's line, written as bytes: a `JSON` value of the event built and then
    /// serialized took three quarters of a whole log's listing (W1's 220,000 events).
    static func append(_ event: Event, to text: inout UTF8Text) {
        text.append("{\"seq\":")
        text.append(Int(event.seq))
        text.append(",\"at\":\"")
        text.append(event.at.description)
        text.append("\",\"sale\":")
        text.appendQuoted(event.sale)
        text.append(",\"kind\":\"")
        text.append(event.kind.rawValue)
        text.append("\"")
        if let booking = event.booking {
            text.append(",\"booking\":")
            text.appendQuoted(booking.text)
        }
        if let user = event.user {
            text.append(",\"user\":")
            text.appendQuoted(user.text)
        }
        if let request = event.request {
            text.append(",\"request\":")
            text.append(Int(request.value))
        }
        if let detail = event.detail {
            text.append(",\"detail\":")
            text.appendQuoted(detail)
        }
        text.append("}\n")
    }
}
