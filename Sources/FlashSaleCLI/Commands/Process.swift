import FlashSaleCore
import FlashSaleEngine

enum ProcessCommand {
    static let batch = OptionSpec("--batch", value: "N", "decide up to N requests per transaction (default 10000)")
    static let follow = OptionSpec("--follow", "keep deciding as requests arrive, until SIGINT, SIGTERM or SIGHUP")
    static let limit = OptionSpec("--limit", value: "N", "decide at most N requests, then exit")

    static let defaultBatch: Int64 = 10_000
    /// How long `--follow` sleeps between looks when nothing changed: short enough that a new
    /// request waits little, long enough that an idle follower costs no CPU to speak of.
    static let idleMilliseconds = 100

    static let spec = CommandSpec(
        "process", arguments: "[SALE]", options: [batch, follow, limit],
        summary: "decide queued requests in FIFO order, a batch per transaction",
        details: """
            Each request is decided exactly once, even with several process runs at once. A scheduled or \
            paused sale's queue waits; in a waitlisted sale the head of the line waits for held items.
            """
    ) { invocation, context in
        let sale = try invocation.saleID()
        let batchSize = try invocation.wholeNumber(batch.name, in: 1...1_000_000) ?? defaultBatch
        let maximum = try invocation.wholeNumber(limit.name, in: 1...Int64.max / 2)
        let signals = invocation.flag(follow) ? StopSignals() : nil
        let watcher = CommitWatcher(signals: signals, intervalMilliseconds: idleMilliseconds, notes: context.output.notes,
                                    log: context.output.stderr)
        // nil: stopped while another process held the database.
        guard let engine = try watcher.startingUp({ () throws -> Engine in
            let engine = try context.engine()
            if let sale { _ = try engine.sale(sale) }  // exit 3 for no such sale
            return engine
        }) else {
            report(Engine.ProcessReport(), to: context.output)
            return
        }
        let progress = Progress(every: 100_000, label: "decided", sink: context.output.notes)
        if progress.enabled, !invocation.flag(follow) {
            // The queue's length now; a follower's work has no end to measure against.
            let queued = try sale.map { [try engine.status($0, clock: context.now())] } ?? engine.sales(clock: context.now())
            progress.total = min(queued.reduce(0) { $0 + $1.queued }, maximum ?? .max)
        }
        var total = Engine.ProcessReport()
        // When a sale with a queue next opens or ends, found with each drain: the idle wait
        // wakes for it too (a line formed before the start is decided as the sale opens).
        var stateChange: Instant?
        // A batch whose COMMIT went unanswered, counted once the server, back, says it stands.
        var unanswered: Engine.UnansweredBatch?
        try watcher.watch(engine.store)

        while true {
            do {
                // nil when a stop signal came while another process held the database.
                let drained: Void? = try watcher.persisting {
                    if let batch = unanswered {
                        switch try engine.stands(batch) {
                        case true?: count(batch.report, into: &total, progress: progress)
                        case false?: break
                        case nil:
                            context.output.stderr.write("flashsale: whether the batch of \(String.counted(batch.report.decided, "request")) "
                                                        + "whose commit went unanswered stands cannot be told; the totals leave it out\n")
                        }
                        unanswered = nil
                    }
                    // From the time before the drain: a sale that opened while it ran wakes
                    // the wait at once, where a later clock would skip to its end.
                    let before = try context.now()
                    do {
                        try drain(engine, sale: sale, batch: batchSize, limit: maximum, into: &total, clock: context,
                                  stop: watcher.stopRequested, progress: progress)
                    } catch let batch as Engine.UnansweredBatch {
                        unanswered = batch
                        throw batch
                    }
                    stateChange = try engine.nextQueueStateChange(in: sale, clock: before)
                }
                guard drained != nil, maximum.map({ total.decided < $0 }) ?? true else { break }
                // Idle: sleep until a stop signal, another process's commit, a held item's expiry,
                // or a sale with a queue opening or ending.
                guard try watcher.wait(alsoWake: {
                    try holdExpired(engine, total.waiting, clock: context) || stateChange.map { try context.now() >= $0 } == true
                }) == .changed else { break }
            } catch where total.decided > 0 {
                // A failure while idle too (the file removed under a follower, found by probing)
                throw ExitStatus.error(for: error, after: "the \(String.counted(total.decided, "request")) decided before "
                                           + "(\(total.accepted) accepted, \(total.rejected) rejected) "
                                           + (total.decided == 1 ? "stays decided" : "stay decided"))
            }
        }
        progress.finish()
        report(total, to: context.output)
    }

    /// What a run decided in all, and the sales whose line waits.
    private static func report(_ total: Engine.ProcessReport, to output: Output) {
        output.success(Rendered(
            text: "\(total.accepted) accepted, \(total.rejected) rejected" + (total.waiting.isEmpty ? "" : ", waiting: \(total.waiting.map(\.text).joined(separator: " "))"),
            json: .object([("accepted", .integer(total.accepted)), ("rejected", .integer(total.rejected)),
                           ("decided", .integer(total.decided)), ("waiting", .array(total.waiting.map { .string($0.text) }))])))
    }

    /// Batches until every queue is empty or waiting, `limit` requests are decided in all, or
    /// a stop signal. Each batch is added to `total` once it has committed, so a step that
    /// fails half-way (busy) and runs again counts every decision once.
    private static func drain(_ engine: Engine, sale: SaleID?, batch: Int64, limit: Int64?,
                              into total: inout Engine.ProcessReport, clock: Context,
                              stop: () -> Bool, progress: Progress) throws {
        var progressed = true
        while progressed, !stop() {
            progressed = false
            total.waiting = []
            for id in try sale.map({ [$0] }) ?? engine.salesWithQueue() {
                let room = limit.map { $0 - total.decided } ?? batch
                guard room > 0 else { return }
                let one = try engine.processBatch(of: id, batch: min(batch, room), clock: clock.now())
                count(one, into: &total, progress: progress)
                progressed = progressed || one.decided > 0
            }
        }
    }

    /// Adds a committed batch's decisions to the run's.
    private static func count(_ batch: Engine.ProcessReport, into total: inout Engine.ProcessReport, progress: Progress) {
        total.accepted += batch.accepted
        total.rejected += batch.rejected
        total.waiting += batch.waiting
        progress.tick(batch.decided)
    }

    /// Whether a waiting sale's earliest hold has expired since: its item may come back.
    private static func holdExpired(_ engine: Engine, _ waiting: [SaleID], clock: Context) throws -> Bool {
        let now = try clock.now()
        return try waiting.contains { try engine.hasOverdueHold($0, clock: now) }
    }
}
