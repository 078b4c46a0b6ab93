import FlashSaleCore
import FlashSaleEngine
import Synchronization

enum SweepCommand {
    static let dryRun = OptionSpec("--dry-run", "count what would expire, change nothing")
    static let limit = OptionSpec("--limit", value: "N", "expire at most N holds, the longest overdue first")

    static let spec = CommandSpec(
        "sweep", arguments: "[SALE]", options: [dryRun, limit],
        summary: "expire holds past their expiry, items back to stock; prints how many",
        details: "Safe from cron every minute, beside everything else; cron's PATH is /usr/bin:/bin, so name the binary by its full path: "
            + "* * * * * /usr/local/bin/flashsale --db /ABSOLUTE/PATH -q sweep"
    ) { invocation, context in
        let sale = try invocation.saleID()
        let maximum = try invocation.wholeNumber(limit.name, in: 1...Int64.max / 2)
        let dry = invocation.flag(dryRun)
        // A stop signal waits for the batch under way, and for the look after it: the sweep
        // then stops and says how many its batches expired (found by probing: it ended
        // silent), or ends as it would have when the look finds nothing left (it said to
        // run sweep again for the rest). Waiting for another process's lock, it stops at
        // once (found by probing: it waited out the busy timeout and ended 75). Made before
        // the store is opened (see `StopSignals`), which may wait for a lock too.
        let progress = Progress(every: 10_000, label: "expired", sink: context.output.notes)
        let sweeping = Mutex(Sweeping())
        if !dry {
            let json = context.output.json
            let overProgress = progress.enabled
            StopSignals().stopAtFirstChance {
                sweeping.withLock { sweeping in
                    if sweeping.mayStopAtOnce {
                        StopSignals.exitStopped(saying: "sweep interrupted; " + staysExpired(sweeping.expired),
                                                overProgress: overProgress, json: json)
                    }
                }
            }
        }
        let engine = try context.engine()
        let now = try context.now()
        if progress.enabled, !dry {
            // The overdue count each sale keeps, not a dry run: that would read every hold.
            let sales = try sale.map { [try engine.status($0, clock: now)] } ?? engine.sales(clock: now)
            progress.total = min(sales.reduce(0) { $0 + $1.overdue }, maximum ?? .max)
        }
        let outcome = Result {
            try engine.sweep(sale, limit: maximum, dryRun: dry, clock: now,
                             phase: { phase in sweeping.withLock { $0.mayStopAtOnce = phase == .waitingForTheLock } }) { expired in
                progress.tick(expired)
                sweeping.withLock { $0.expired += expired }
            }
        }
        // Done: a signal now is too late to stop anything, and would add a second answer
        // to this one (found by probing: exit 130 after the result was printed).
        sweeping.withLock { $0.mayStopAtOnce = false }
        let report: Engine.SweepReport
        do {
            report = try outcome.get()
        } catch let stopped as Engine.SweepInterrupted {
            progress.finish()
            throw interruption(stopped)
        }
        progress.finish()
        let sales = JSON.object(report.expired.map { ($0.sale.text, .integer($0.count)) })
        context.output.success(Rendered(
            text: String(report.total),
            json: .object([("expired", .integer(report.total)), ("dry_run", .bool(dry)), ("sales", sales)])))
    }

    /// A sweep stopped after some batches committed fails as its cause does (busy: 75),
    /// and says what the batches before did: those holds stay expired, and running sweep
    /// again (cron's next minute) expires the rest.
    static func interruption(_ stopped: Engine.SweepInterrupted) -> FlashSaleError {
        ExitStatus.error(for: stopped.cause, after: staysExpired(stopped.done.total))
    }

    private static func staysExpired(_ done: Int64) -> String {
        guard done > 0 else { return "no overdue hold was expired: run sweep again" }
        return "\(String.counted(done, "overdue hold")) \(done == 1 ? "was" : "were") expired before that and "
            + "\(done == 1 ? "stays" : "stay") expired: run sweep again for the rest"
    }

    /// What a stop signal finds: a sweep that may stop at once (opening the store, or
    /// waiting for the write lock: nothing under way), or one whose batch or look it lets
    /// finish; and how many the batches committed expired.
    private struct Sweeping {
        var mayStopAtOnce = true
        var expired: Int64 = 0
    }
}
