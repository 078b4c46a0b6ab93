import FlashSaleCore
import FlashSaleEngine
import FlashSaleStore
import Glibc

/// `rehearse`: a whole sale day on a scratch database, through one of the real paths, and
/// what it showed. The crowd, the clock's moves and what is confirmed, cancelled or left
/// to expire are the same on every path, so the stock ends the same for one seed.
enum RehearseCommand {
    static let buyers = OptionSpec("--buyers", value: "N", "buyers in the crowd, bots included (default 100000)")
    static let inventory = OptionSpec("--inventory", value: "N", "items for sale (default 1000)")
    static let bots = OptionSpec("--bots", value: "SHARE", "the share of the buyers that are bots, 0 to 1 (default 0.05)")
    static let via = OptionSpec("--via", value: "stream|queue|http", "the path: stream (book --stream), queue (submit + process) or http (serve); default stream")
    static let duration = OptionSpec("--duration", value: "DURATION", "how long the buyers keep arriving, 1s to 24h (default 60s)")
    static let keep = OptionSpec("--keep", "keep the scratch database and print its path")
    static let seed = OptionSpec("--seed", value: "N", "the crowd's seed: the same seed, the same crowd (default 1)")

    static let sale = SaleID(trusted: "rehearsal")
    static let hold = Span.seconds(300)
    /// When the holds of the opening are settled: inside the hold, a minute before it ends.
    static let settleAfter = Span.seconds(240)
    /// Of the opening's holds: confirmed, then cancelled; the rest are left to expire.
    static let confirmShare = (6, 10)
    static let cancelShare = (1, 10)
    /// Returning buyers after the expiry: one in ten of the crowd, from those turned away.
    static let returnShare = 10

    enum Via: String {
        case stream, queue, http
    }

    static let spec = CommandSpec(
        "rehearse", options: [buyers, inventory, bots, via, duration, seed, keep],
        summary: "rehearse a sale day: a seeded crowd through book --stream, the queue or serve, and a report",
        details: """
            Creates sale 'rehearsal' (hold 5m, 1 per user) on a scratch database in $TMPDIR, removed at the end \
            unless --keep; with --db or $FLASHSALE_DB, in that database, refused (exit 4) if the sale exists. \
            The crowd comes in slices, each decided at its instant: the opening second, then up to nine parts \
            of --duration. 4m after a slice 60% of its holds are confirmed and 10% cancelled; 5m after it sweep \
            expires the rest; after the last sweep one buyer in ten of the crowd, taken from those who got \
            nothing, comes back for what returned. The clock moves by FLASHSALE_NOW, never by waiting. --via http runs flashsale-serve.
            """,
        globalOptionHelp: [
            GlobalOptions.database.name: "rehearse in this database (made if missing), not a scratch one; else $FLASHSALE_DB",
        ]
    ) { invocation, context in
        // Its database is its own (scratch, or --db created if missing), not the context's.
        try run(invocation, context)
    }

    struct Settings {
        let buyers: Int
        let inventory: Int64
        let botShare: Double
        let via: Via
        let duration: Span
        let seed: UInt64
        let keep: Bool
    }

    static func settings(_ invocation: Invocation) throws(FlashSaleError) -> Settings {
        let path = try invocation.options[via.name].map { text throws(FlashSaleError) in
            guard let path = Via(rawValue: text) else { throw .usage("\(via.name) '\(Quoted(text))' is not stream, queue or http") }
            return path
        } ?? .stream
        let span = try invocation.span(duration, limit: .seconds(86_400)) ?? .seconds(60)
        guard span >= .seconds(1), span <= .seconds(86_400) else {
            throw .usage("\(duration.name) must be from 1s to 24h, not '\(Quoted(invocation.options[duration.name] ?? ""))'")
        }
        return Settings(
            buyers: Int(try invocation.wholeNumber(buyers.name, in: 1...10_000_000) ?? 100_000),
            inventory: try invocation.wholeNumber(inventory.name, in: 1...1_000_000) ?? 1000,
            botShare: try share(invocation.options[bots.name]) ?? 0.05,
            via: path, duration: span,
            seed: UInt64(try invocation.wholeNumber(seed.name, in: 0...999_999_999_999_999_999) ?? 1),
            keep: invocation.flag(keep))
    }

    /// `0.05`, `1`, `.5`: plain decimal notation from 0 to 1.
    private static func share(_ text: String?) throws(FlashSaleError) -> Double? {
        guard let text else { return nil }
        let plain = !text.isEmpty && text.utf8.allSatisfy { $0 == UInt8(ascii: ".") || ($0 >= 0x30 && $0 <= 0x39) }
            && text.utf8.count { $0 == UInt8(ascii: ".") } <= 1
        guard plain, let value = Double(text), value >= 0, value <= 1 else {
            throw .usage("\(bots.name) must be a share from 0 to 1 (0.05), not '\(Quoted(text))'")
        }
        return value
    }

    private static func run(_ invocation: Invocation, _ context: Context) throws {
        let settings = try settings(invocation)
        // Found by probing: the scratch database was kept, and where was never said.
        if settings.keep, context.output.quiet, !context.databaseGiven {
            throw FlashSaleError.usage("\(keep.name) prints where the scratch database stays, which -q would not: drop one")
        }
        let opening = try context.now()
        // Each child is handed its step's time, up to the last sweep a hold after the crowd:
        // a clock too late for them failed half way, the sale made (found by probing).
        guard opening.adding(settings.duration).adding(hold) <= Instant.latestInput else {
            throw FlashSaleError.usage("FLASHSALE_NOW \(opening) leaves no room for the rehearsal's day (\(duration.name) and a "
                                       + "hold of \(hold)) before \(Instant.latestInput): give an earlier time")
        }
        if settings.via == .http, context.linked.httpExchange == nil {
            // The HTTP client is SwiftNIO's, linked into the server's binary only.
            try Linked.handOffToServer()
        }
        let started = MonotonicClock.nanoseconds()
        let children = try RehearsalChildren(executable: try Linked.ownExecutable(),
                                             scratchIn: TemporaryDirectory.path(in: context.environment))
        defer { children.removeScratch() }
        let database = context.givenDatabase ?? children.directory + "/rehearsal.db"
        children.removesDirectory = !settings.keep || context.databaseGiven
        children.reportsJSON = context.output.json
        do {
            let store: any Store = context.databaseGiven
                ? try context.store(createIfMissing: true)
                : try scratchStore(at: database, busyTimeout: context.busyTimeoutSpan)
            let engine = Engine(store: store)
            do {
                _ = try engine.createSale(SaleDefinition(id: sale, name: "rehearsal, seed \(settings.seed)", inventory: settings.inventory,
                                                         hold: hold, perUser: 1, startsAt: opening, endsAt: nil), clock: opening)
            } catch SaleError.saleExists {
                // Told where and what to do whether the sale was there before or another
                // rehearsal on the same --db made it first (found by probing: two at once, the
                // second was told only "already exists"). Named by $FLASHSALE_DB, "leave --db
                // out" could not help (found by a walk-through).
                throw FlashSaleError.conflict("sale \(sale) already exists in '\(context.database)': rehearse makes its own; "
                                              + (context.databaseFromEnvironment
                                                 ? "set FLASHSALE_DB to another database, or unset it for a scratch database"
                                                 : "give another --db, or leave --db out for a scratch database"))
            }
            // Where the sale stays once made, whatever happens after: the database given, or
            // the scratch one kept (a failure and an interruption name it).
            children.saleStaysIn = context.databaseGiven ? context.database : settings.keep ? database : nil
            children.database = database
            let databaseOptions = (context.serverSchema.map { ["--pg-schema", $0] } ?? [])
                + ["--busy-timeout", "\(context.busyTimeoutSpan.milliseconds)ms"]
            let setting = RehearsalSetting(children: children, databaseOptions: databaseOptions, sale: sale, engine: engine)
            let path: RehearsalPath = switch settings.via {
            case .stream: StreamPath(setting)
            case .queue: QueuePath(setting)
            case .http: HTTPPath(setting, exchange: context.linked.httpExchange ?? { _, _, _, _ in [] })
            }
            let crowd = Crowd(buyers: settings.buyers, botShare: settings.botShare, duration: settings.duration, seed: settings.seed)
            let output = context.output

            // The crowd over the duration, then the returning buyers: a live line for each on a terminal.
            let slices = crowd.slices(duration: settings.duration)
            let crowdLine = Progress(every: 1, label: "crowd: decided", sink: output.notes)
            crowdLine.total = Int64(crowd.requests.count)
            let day = SaleDay(
                setting: setting, path: path, opening: opening, hold: hold, settleAfter: settleAfter,
                confirmShare: confirmShare, cancelShare: cancelShare, returnShare: returnShare,
                sweep: { try sweep(setting, at: $0) },
                wave: { requests, now, name in
                    let stock = try engine.status(sale, clock: now).sale.counters.available
                    func told(on line: Progress) throws -> WaveTiming {
                        try wave(requests, at: now, name: name, stock: stock, inventory: settings.inventory, path: path, line: line)
                    }
                    guard name == SaleDay.returningWave else { return try told(on: crowdLine) }
                    crowdLine.finish()
                    let line = Progress(every: 1, label: "returning: decided", sink: output.notes)
                    line.total = Int64(requests.count)
                    defer { line.finish() }
                    return try told(on: line)
                })
            let outcome = try day.run(crowd, buyers: settings.buyers, slices: slices)
            try path.finish()

            // The report, from the database.
            let end = outcome.end
            let final = try engine.metrics(of: sale, clock: end).first
            let everyBooking = try engine.bookings(of: sale, status: nil, user: nil, clock: end)
            let stock = StockChange.timeline(holds: outcome.holds, bookings: everyBooking, in: crowd, opening: opening)
            let soldOut = StockChange.soldOut(stock, inventory: settings.inventory)
            // In a database given, the rehearsal's sale alone: the others are not its own.
            let verifiedSale = context.databaseGiven ? sale : nil
            let report = RehearsalReport(
                path: settings.via.rawValue, seed: settings.seed, buyers: settings.buyers, bots: crowd.bots,
                inventory: settings.inventory, requests: crowd.requests.count, crowd: outcome.timing, soldOutAfter: soldOut,
                holds: outcome.holds.count, confirmed: outcome.confirmed, cancelled: outcome.cancelled, expired: outcome.expired,
                returning: outcome.returning, resold: outcome.resold, left: final?.status.sale.counters.available ?? 0,
                turnedAway: crowd.users - Set(everyBooking.map(\.user.text)).count,
                // Items sold: a bot's hold cancelled or expired got it no item (found by
                // probing: every bot booking was counted, the returning wave's too).
                botRequests: crowd.requests.count { $0.isBot },
                botItems: everyBooking.count { $0.status == .booked && Crowd.isBot($0.user.text) },
                declined: AttemptTotals.declineCodes.compactMap { code in
                    (final?.attempts.declined[code]).flatMap { $0 > 0 ? (code.rawValue, $0) : nil }
                },
                suspects: Array(try store.suspects(of: sale, thresholds: .standard).prefix(3)), violations: try store.verify(verifiedSale, clock: end),
                verifiedSale: verifiedSale,
                database: children.saleStaysIn,
                seconds: Double(MonotonicClock.nanoseconds() - started) / 1e9)
            // Removed before the report is written, which SIGPIPE ends where its reader has
            // gone (`| true`), before any defer runs (found by probing: the directory stayed).
            children.removeScratch()
            children.reportBegins()
            if output.stdout.isTerminal, !output.json, !output.quiet {
                let until = soldOut.map { max(10, $0.milliseconds * 5 / 4) } ?? settings.duration.milliseconds
                output.stdout.write(SellOutCurve.draw(changes: stock, inventory: settings.inventory, until: until) + "\n\n")
            }
            guard report.violations.isEmpty || !output.json else {
                throw FlashSaleError.invariant("rehearse: verify found \(String.counted(report.violations.count, "violation")): "
                                               + report.violations.prefix(3).joined(separator: "; "))
            }
            output.success(report.rendered)
            try output.finish()
            if !report.violations.isEmpty {
                // The database is named once, by the catch below, where the sale stays.
                throw FlashSaleError.invariant("rehearse: verify found \(String.counted(report.violations.count, "violation"))")
            }
        } catch {
            // A failure the interruption caused (a child killed, a scratch file removed
            // under a command) is not this run's to report: the signal's thread exits 130.
            children.waitIfInterrupted()
            children.stopRunning()
            // A day is many commands, each committed: what they did stays (no command
            // removes a sale), and the operator must know where.
            guard let staysIn = children.saleStaysIn else { throw error }
            // What stays first: "nothing was written" is of the step that failed (found by
            // probing: said of a full disk, after the day's commits).
            throw ExitStatus.error(for: error, afterCommitting: "sale \(sale) stays in '\(staysIn.controlCharactersEscaped)' as far as "
                                       + "the rehearsal got")
        }
    }

    /// One wave through the path, told on `line` with the stock it leaves of the sale's
    /// `inventory` (not of the wave's `stock`: a wave after the sell-out would show "0 of 0").
    private static func wave(_ requests: ArraySlice<CrowdRequest>, at now: Instant, name: String, stock: Int64,
                             inventory: Int64, path: RehearsalPath, line: Progress) throws -> WaveTiming {
        var held = 0
        line.detail = { "\(stock - Int64(held)) of \(String.counted(inventory, "item")) left" }
        var shown = 0
        return try path.book(requests, at: now, wave: name) { decided, holds in
            held = max(held, holds)
            line.tick(Int64(decided - shown))
            shown = decided
        }
    }

    /// The scratch database, whose path is TMPDIR's: one too long for a new database is
    /// said to be (found by probing: the message named no path, nor anything given).
    private static func scratchStore(at path: String, busyTimeout: Span) throws -> any Store {
        do {
            return try SQLiteStore(path: path, busyTimeout: busyTimeout, createIfMissing: true)
        } catch FlashSaleError.usage(let message) {
            throw FlashSaleError.usage("the scratch database in TMPDIR: \(message); set TMPDIR to a shorter path")
        }
    }

    /// `sweep SALE` as a child at `now`, run again while it finds the database locked past
    /// its busy timeout (it keeps the batches it finished, as `process` does; found by
    /// probing: a busy --db ended the rehearsal 75 half way): how many holds it expired,
    /// as the sale's count tells, whatever each run printed.
    private static func sweep(_ setting: RehearsalSetting, at now: Instant) throws -> Int64 {
        let children = setting.children
        let before = try setting.engine.status(setting.sale, clock: now).sale.counters.expired
        let status = try children.againWhileBusy {
            let pid = try children.start(setting.databaseOptions + ["sweep", setting.sale.text], now: now, log: "sweep")
            return children.wait(pid) ?? 1
        }
        try children.check(status, log: "sweep")
        return try setting.engine.status(setting.sale, clock: now).sale.counters.expired - before
    }
}
