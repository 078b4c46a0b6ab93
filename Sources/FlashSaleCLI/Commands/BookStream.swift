import Glibc
import FlashSaleCore
import FlashSaleEngine
import FlashSaleStore

/// `book SALE --stream`: requests on standard input, one NDJSON decision per line on
/// standard output, in input order. Requests are decided and committed in groups (one fsync
/// for up to `groupSize`), and whenever the input pauses; each line is printed only after
/// its group committed. A group is read whole before it is decided, so that it can be decided
/// again after a deadlock with another writer (`DecisionGroup.commit(deciding:)`), and so
/// that its sale stays locked only while it is decided, not while the input trickles in.
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
        let engine = try waitingOutLocks(log: context.output.notes) {
            let engine = try context.engine()
            _ = try engine.sale(saleID)
            return engine
        }
        let stream = DecisionGroup(engine: engine)
        // A file's -wal and -shm removed under a stream split the database in two, as under
        // a follower: looked at before each group, as a follower looks (found by probing:
        // the stream's close took another command's booking). A server has no such files.
        var split = engine.store is SQLiteStore ? try engine.store.changeWatcher() : nil
        let input = try context.input("-")
        let output = context.output
        var group: [ReadOutcome] = []
        group.reserveCapacity(groupSize)
        // The group's answers, one NDJSON line each, in one text: a string per line cost
        // more than the writing of it.
        var answers = UTF8Text()

        // Lines answered (each group's once it committed).
        var answered = 0
        // Whether a group of requests has committed: the server took this stream's writes.
        // Not one of malformed lines alone, which reached no server (found by review).
        var serverTookAGroup = false
        // The group's commit whose answer was lost with the connection (PostgreSQL):
        // whether it stands is asked once the server is back.
        var unanswered: (any Error)?
        // The last hold the group made: whether it is in the database tells whether the group
        // committed (one transaction).
        var lastHold: BookingID?
        // The group decided and committed, waiting out another's lock and, once the server
        // took a group, a server gone (a restart, a failover) as a follower does: found by
        // probing, the stream exited 73 between two groups, its producer's next lines
        // unread. Before that, a server that takes no writes is more often a standby named
        // by mistake: exit 73 at once, as at the start. A commit the loss cut stands, and
        // its answers are printed; or it does not, and the group is decided again; or that
        // cannot be told, and the stream fails (74), as it did.
        func commitGroup() throws {
            func attempt() throws {
                if let cause = unanswered {
                    let stands = try engine.stands(unanswered: cause, witness: lastHold.map { .hold($0, in: saleID) } ?? .none)
                    unanswered = nil
                    switch stands {
                    case true?: return
                    case nil: throw UntoldCommit(cause: cause)
                    case false?: break
                    }
                }
                do {
                    try waitingOutLocks(log: output.notes) {
                        try stream.commit {
                            answers.removeAll()
                            lastHold = nil
                            try stream.expect(group.lazy.compactMap { if case .record(let record) = $0 { record.request(in: saleID) } else { nil } },
                                              clock: context.now())
                            for outcome in group {
                                if let hold = try answer(outcome, stream: stream, sale: saleID, clock: context, into: &answers) {
                                    lastHold = hold
                                }
                            }
                        }
                    }
                } catch {
                    if case .commitUnanswered? = StoreFailure.of(error) { unanswered = error }
                    throw error
                }
            }
            do {
                try serverTookAGroup ? CommitWatcher.waitingOutServer(log: output.stderr, attempt) : attempt()
            } catch let untold as UntoldCommit {
                throw untold.cause
            }
            if group.contains(where: { if case .record = $0 { true } else { false } }) { serverTookAGroup = true }
        }

        // Durable first, printed second: a decision on stdout is a committed decision.
        func commitAndPrint() throws {
            do {
                _ = try split?.hasChanged()
                try commitGroup()
            } catch where answered > 0 {
                throw ExitStatus.error(for: error, after: "the \(String.counted(answered, "line")) answered before "
                                           + (answered == 1 ? "stays decided" : "stay decided"))
            }
            answered += group.count
            if !output.quiet { output.stdout.write(utf8: answers.bytes) }
            answers.removeAll()
            group.removeAll(keepingCapacity: true)
            output.stdout.flush()
            try context.checkOutput()
        }
        input.beforeWaiting = { if !group.isEmpty { try commitAndPrint() } }

        // From a file (`< requests.ndjson`), the share of it read, on a terminal.
        let progress = Progress(every: 100_000, label: "decided", sink: output.notes, besideData: output.stdout)
        progress.follow(input)
        var reader = RequestReader(format: format, nextChunk: input.next)
        while let outcome = try reader.next() {
            group.append(outcome)
            progress.tick()
            if group.count >= groupSize { try commitAndPrint() }
        }
        try commitAndPrint()
        progress.finish()
    }

    /// Runs `step` (the start, or a group decided whole in one transaction, so run again
    /// from the start) until no other process's lock outlasts the busy timeout: the stream
    /// of a web tier or a producer runs as long as a follower does, and, as one, waits out a
    /// lock instead of exiting 75 with the rest of its input unread, or all of it when the
    /// lock was there first (found by probing); the wait is said once, and its end.
    @discardableResult
    private static func waitingOutLocks<T>(log: TextSink, _ step: () throws -> T) throws -> T {
        try CommitWatcher.waitingOutLocks(waiting: { CommitWatcher.say(CommitWatcher.waitingForLock, to: log) },
                                          free: { CommitWatcher.say(CommitWatcher.lockFree, to: log) }, step)
    }

    /// One decision as an NDJSON line, written piece by piece: this runs once per input line.
    /// The hold it made, if it made one.
    private static func answer(_ outcome: ReadOutcome, stream: DecisionGroup, sale: SaleID, clock: Context,
                               into text: inout UTF8Text) throws -> BookingID? {
        switch outcome {
        case .malformed(let line, let reason), .malformedHeader(let line, let reason):
            text.append("{\"line\":")
            text.append(line)
            text.append(",\"ok\":false,\"error\":\"bad_input\",\"message\":")
            text.appendQuoted(reason)
            text.append("}\n")
        case .record(let record):
            text.append("{\"line\":")
            text.append(record.line)
            text.append(",\"user\":")
            text.appendQuoted(record.user)
            let decided = try stream.book(record.request(in: sale), clock: clock.now())
            switch decided {
            case .held(let booking), .repeated(let booking):
                text.append(",\"ok\":true,\"booking\":\"")
                text.append(booking.id.text)
                text.append("\",\"expires_at\":\"")
                text.append(booking.expiresAt.description)
                text.append("\"}\n")
                if case .held = decided { return booking.id }
            case .declined(let decline):
                text.append(",\"ok\":false,\"error\":\"")
                text.append(decline.reason.rawValue)
                text.append("\"}\n")
            case .refused(let refusal):
                let error = refusal.commandLineError
                text.append(",\"ok\":false,\"error\":\"")
                text.append(error.code)
                text.append("\",\"message\":")
                text.appendQuoted(error.message)
                text.append("}\n")
            }
        }
        return nil
    }
}

/// A group's COMMIT that went unanswered, and whose fate the server, back, cannot tell:
/// the stream fails with `cause`, rather than wait for a server that is there.
private struct UntoldCommit: Error {
    let cause: any Error
}

extension RequestRecord {
    /// The booking request this line makes.
    fileprivate func request(in sale: SaleID) -> BookingRequest {
        BookingRequest(sale: sale, user: UserID(trusted: user), ip: ip, userAgent: userAgent, key: key)
    }
}
