import FlashSaleCLI
import FlashSaleCore
import FlashSaleEngine
import FlashSaleStore
import Logging
import NIOCore
import NIOConcurrencyHelpers
import Synchronization

/// The one writer of a `serve` process: the changes every connection asks for, queued in
/// the order they arrived, decided on one thread by a `DecisionGroup`, and answered once
/// their group has committed. While a commit (a disk sync) runs, new requests queue; the
/// next group takes all of them. An idle server commits each request at once: no request
/// ever waits for others to arrive.
final class Committer: @unchecked Sendable {
    private enum Change: Sendable {
        case book(BookingRequest)
        case confirm(BookingID, sale: SaleID, user: UserID)
        case cancel(BookingID, sale: SaleID, user: UserID)
        case submit(BookingRequest)

        var sale: SaleID {
            switch self {
            case .book(let request), .submit(let request): request.sale
            case .confirm(_, let sale, _), .cancel(_, let sale, _): sale
            }
        }

        /// The sale a change other than a booking changes itself (`DecisionGroup.expect`
        /// locks it with the bookings' sales).
        var saleChangedDirectly: SaleID? {
            switch self {
            case .book: nil
            case .confirm(_, let sale, _), .cancel(_, let sale, _): sale
            case .submit(let request): request.sale
            }
        }
    }

    // Indirect: the promise of an outcome has room for it while its change waits.
    private indirect enum Outcome: Sendable {
        case booking(BookingOutcome)
        case changed(Booking)
        case submitted(Engine.SubmitOutcome)
    }

    private struct Pending {
        let change: Change
        let answer: EventLoopPromise<Outcome>
    }

    /// Guards `waiting` and `stopping`; its value is whether the thread has work (or must stop).
    private let lock = ConditionLock(value: false)
    private var waiting: [Pending] = []
    private var stopping = false
    /// Let go of when the thread ends, so that its connection closes before `stop` returns,
    /// not whenever the process exits: closing settles a moved file's WAL (`Connection`).
    private var engine: Engine?
    private let clock: @Sendable () -> Instant
    private let finished = ConditionLock(value: false)
    /// Told after each group commits, with the group's size: metrics and the event feed.
    private let onCommit: @Sendable (Int) -> Void
    private let logger: Logger
    /// Whether the attempts carried failed to be written last time they were due: said once
    /// a run of failures, not every second of it.
    private var telemetryFailing = false
    /// Whether the server has begun to stop (`shutdownStarted`).
    private let shuttingDown = Atomic(false)
    /// A wait for the database that ran out since the server began to stop (another
    /// process's lock past the busy timeout; on PostgreSQL, a server gone or gone quiet):
    /// every later group, and the last counts, fail with it at once, so that the exit is
    /// delayed by one such wait, not one for each group still to come and another for the
    /// counts (found by probing: four busy timeouts; and, with PostgreSQL stopped
    /// answering, 38 s of waits for its answer and for new connections). A group read
    /// before the signal that has not waited yet fails with it too: the database has
    /// kept the server waiting a whole wait, and the server is going.
    private var waitOutlastedTheStop: (any Error)?

    init(store: any Store, clock: @escaping @Sendable () -> Instant, logger: Logger, onCommit: @escaping @Sendable (Int) -> Void) {
        engine = Engine(store: store)
        self.clock = clock
        self.logger = logger
        self.onCommit = onCommit
    }

    func start() {
        DedicatedThread.start { [self] in
            if let engine { run(engine) }
            engine = nil
            finished.lock()
            finished.unlock(withValue: true)
        }
    }

    // A change's outcome comes on `loop` (its connection's) once its group has committed:
    // no task waits for it (see `Reply`).

    /// `book` with the next group: the decision, once its group is durable.
    func book(_ request: BookingRequest, on loop: any EventLoop) -> Deferred<Result<BookingOutcome, any Error>> {
        perform(.book(request), on: loop) { if case .booking(let outcome) = $0 { outcome } else { nil } }
    }

    func confirm(_ id: BookingID, in sale: SaleID, user: UserID, on loop: any EventLoop) -> Deferred<Result<Booking, any Error>> {
        perform(.confirm(id, sale: sale, user: user), on: loop) { if case .changed(let booking) = $0 { booking } else { nil } }
    }

    func cancel(_ id: BookingID, in sale: SaleID, user: UserID, on loop: any EventLoop) -> Deferred<Result<Booking, any Error>> {
        perform(.cancel(id, sale: sale, user: user), on: loop) { if case .changed(let booking) = $0 { booking } else { nil } }
    }

    func submit(_ request: BookingRequest, on loop: any EventLoop) -> Deferred<Result<Engine.SubmitOutcome, any Error>> {
        perform(.submit(request), on: loop) { if case .submitted(let outcome) = $0 { outcome } else { nil } }
    }

    /// Queues `change` for the next group: its outcome, as the `kind` of outcome it has,
    /// once that group is durable.
    private func perform<Value: Sendable>(_ change: Change, on loop: any EventLoop,
                                          as kind: @escaping @Sendable (Outcome) -> Value?) -> Deferred<Result<Value, any Error>> {
        let answer = loop.makePromise(of: Outcome.self)
        lock.lock()
        if stopping {
            answer.fail(StoreFailure.busy)
        } else {
            waiting.append(Pending(change: change, answer: answer))
        }
        lock.unlock(withValue: true)
        return Deferred(answer.futureResult) { outcome in
            outcome.flatMap { outcome in
                guard let value = kind(outcome) else {
                    return .failure(FlashSaleError.internalFailure("the committer answered a change with another change's outcome"))
                }
                return .success(value)
            }
        }
    }

    /// The server has begun to stop: it still decides what it has read (`stop` comes once
    /// all is answered), until a wait for the database runs out (`waitOutlastedTheStop`).
    func shutdownStarted() {
        shuttingDown.store(true, ordering: .relaxed)
    }

    /// Decides and answers what is queued, then lets the thread end; returns when it has.
    func stop() {
        lock.lock()
        stopping = true
        lock.unlock(withValue: true)
        finished.lock(whenValue: true)
        finished.unlock()
    }

    /// How long the attempts counted (`DecisionGroup.carriesTelemetry`) may wait for a
    /// commit: `suspects` and `metrics` see them at most this much later.
    static let telemetryDelay = Duration.seconds(1)

    private func run(_ engine: Engine) {
        let group = DecisionGroup(engine: engine)
        group.carriesTelemetry = true
        var telemetryDue = ContinuousClock.now + Committer.telemetryDelay
        var taken: [Pending] = []
        while true {
            if group.isCarryingTelemetry {
                let wait = ContinuousClock.now.duration(to: telemetryDue).components
                let seconds = Double(wait.seconds) + Double(wait.attoseconds) / 1e18
                guard lock.lock(whenValue: true, timeoutSeconds: max(0, seconds)) else {
                    // Idle: the counts go in a commit of their own (which costs no sync).
                    writeTelemetry(of: group, lastChance: false)
                    telemetryDue = ContinuousClock.now + Committer.telemetryDelay
                    continue
                }
            } else {
                lock.lock(whenValue: true)
            }
            swap(&taken, &waiting)
            let done = stopping && taken.isEmpty
            lock.unlock(withValue: stopping)
            if done {
                writeTelemetry(of: group, lastChance: true)
                return
            }
            let withTelemetry = ContinuousClock.now >= telemetryDue
            if withTelemetry { telemetryDue = ContinuousClock.now + Committer.telemetryDelay }
            decide(taken, in: group, withTelemetry: withTelemetry)
            taken.removeAll(keepingCapacity: true)
        }
    }

    private static let countsNotWrittenYet: Logger.Message = "attempt counts not written yet; trying again every second"

    /// The attempts carried, in a transaction of their own. When it fails (the database
    /// locked by another process past the busy timeout, a full disk), they are kept for the
    /// next try, a second later, unless this is the last chance, the server stopping: then
    /// they are lost to `suspects` and `metrics`, which the log says.
    private func writeTelemetry(of group: DecisionGroup, lastChance: Bool) {
        // Nothing carried is nothing lost (a second probe: the log said counts were lost).
        guard group.isCarryingTelemetry else { return }
        do {
            if let waitOutlastedTheStop { throw waitOutlastedTheStop }
            try group.writeTelemetry()
            telemetryFailing = false
        } catch {
            noteWaitOutlastingTheStop(error)
            let metadata: Logger.Metadata = ["error": .string(ExitStatus.error(for: error).message)]
            if lastChance {
                logger.error("attempt counts lost: not written before stopping", metadata: metadata)
            } else if !telemetryFailing {
                logger.warning(Self.countsNotWrittenYet, metadata: metadata)
            }
            telemetryFailing = true
        }
    }

    /// One group: every change decided in order, one commit, then every answer. A failure
    /// of the store (busy past the timeout, disk) loses the whole group: each is answered
    /// with it, and none took effect; but a group that only declined is answered, its
    /// counts not written (`DecisionGroup.commit`). A deadlock with another server's group
    /// is not such a failure: the group is decided again. Nor is one of a sale's own rows:
    /// the group is decided again without its counts, then a sale at a time (`salesApart`).
    private func decide(_ group: [Pending], in decisions: DecisionGroup, withTelemetry: Bool) {
        var outcomes: [Result<Outcome, any Error>] = []
        outcomes.reserveCapacity(group.count)
        let countsWritten: Bool
        do {
            if let waitOutlastedTheStop { throw waitOutlastedTheStop }
            let now = clock()
            countsWritten = try decisions.commit(withTelemetry: withTelemetry) {
                outcomes.removeAll(keepingCapacity: true)
                try decisions.expect(group.lazy.compactMap { if case .book(let request) = $0.change { request } else { nil } },
                                     alsoLocking: group.lazy.compactMap(\.change.saleChangedDirectly), clock: now)
                for pending in group {
                    do {
                        outcomes.append(.success(try decide(pending.change, in: decisions, at: now)))
                    } catch let refusal as SaleError {
                        outcomes.append(.failure(refusal))
                    }
                }
            }
        } catch {
            // Not a failure of the store's, which any group would meet (a wait, the disk, the
            // connection), but of one sale's rows broken by hand, its counts or its bookings
            // (found by probing: every sale's requests in the group failed). Decided again
            // without the counts, which then wait for the next second's write
            // (`writeTelemetry`), and then a sale at a time.
            if StoreFailure.of(error) == nil {
                let metadata: Logger.Metadata = ["error": .string(ExitStatus.error(for: error).message)]
                if withTelemetry {
                    if !telemetryFailing { logger.warning(Self.countsNotWrittenYet, metadata: metadata) }
                    telemetryFailing = true
                    decide(group, in: decisions, withTelemetry: false)
                    return
                }
                if let sales = Self.salesApart(group) {
                    logger.warning("a group failed; deciding it again a sale at a time", metadata: metadata)
                    for part in sales { decide(part, in: decisions, withTelemetry: false) }
                    return
                }
            }
            noteWaitOutlastingTheStop(error)
            // A request in a sale that is not there is not found, as without the lock: busy
            // says retry, which could never succeed (found by probing: 503, and 404 without).
            let missing = StoreFailure.of(error) == .busy ? engine?.missingAfterBusyWait(Set(group.map(\.change.sale))) ?? [] : []
            for pending in group {
                pending.answer.fail(missing.contains(pending.change.sale) ? SaleError.saleNotFound(pending.change.sale) : error)
            }
            // Not while stopping, when a stop re-throws the lost commit for every group after
            // it, and each would ask again (review): the server ends the transaction once a
            // minute idle (`PostgresTransaction.idleTimeout`).
            if case .commitUnanswered? = StoreFailure.of(error), !shuttingDown.load(ordering: .relaxed) {
                settle(unanswered: error, lastHold: Self.lastHold(in: outcomes))
            }
            return
        }
        if withTelemetry {
            // A group of declines whose counts the database could not take (a full disk) is
            // answered all the same; the counts carried wait for the next try, as after
            // `writeTelemetry`.
            if countsWritten {
                telemetryFailing = false
            } else {
                if !telemetryFailing { logger.warning(Self.countsNotWrittenYet) }
                telemetryFailing = true
            }
        }
        onCommit(group.count)
        for (pending, outcome) in zip(group, outcomes) { pending.answer.completeWith(outcome) }
    }

    /// A group whose COMMIT's answer was lost, answered so ("the change may have been
    /// made"), is asked about once the database answers: its transaction, left open on the
    /// server when the COMMIT never reached it, is ended there (`Store.committed`), where it
    /// held its sales' rows and every later group was busy, 503, until the server saw the
    /// connection gone, hours over a failed network (found by probing). The log says what
    /// became of it.
    private func settle(unanswered error: any Error, lastHold: Booking?) {
        guard let engine else { return }
        let witness: Engine.CommitWitness = lastHold.map { .hold($0.id, in: $0.sale) } ?? .none
        do {
            switch try engine.stands(unanswered: error, witness: witness) {
            case true?: logger.warning("the group whose commit's answer was lost stands: its changes were made")
            case false?: logger.warning("the group whose commit's answer was lost did not commit: none of its changes was made")
            case nil: logger.warning("whether the group whose commit's answer was lost stands cannot be told")
            }
        } catch {
            logger.warning("whether the group whose commit's answer was lost stands cannot be asked",
                           metadata: ["error": .string(ExitStatus.error(for: error).message)])
        }
    }

    /// A group of several sales split into one group a sale, each in arrival order:
    /// decided apart, only a broken sale's changes fail with it. Nil for a group of one sale.
    private static func salesApart(_ group: [Pending]) -> [[Pending]]? {
        var parts: [[Pending]] = []
        var partOf: [SaleID: Int] = [:]
        for pending in group {
            if let part = partOf[pending.change.sale] {
                parts[part].append(pending)
            } else {
                partOf[pending.change.sale] = parts.count
                parts.append([pending])
            }
        }
        return parts.count > 1 ? parts : nil
    }

    /// The last hold a group decided, had it committed.
    private static func lastHold(in outcomes: [Result<Outcome, any Error>]) -> Booking? {
        for case .success(.booking(.held(let booking))) in outcomes.reversed() { return booking }
        return nil
    }

    private func noteWaitOutlastingTheStop(_ error: any Error) {
        guard shuttingDown.load(ordering: .relaxed), StoreFailure.of(error)?.endedAWait == true else { return }
        waitOutlastedTheStop = error
    }

    private func decide(_ change: Change, in decisions: DecisionGroup, at now: Instant) throws -> Outcome {
        switch change {
        case .book(let request):
            .booking(try decisions.book(request, clock: now))
        case .confirm(let id, let sale, let user):
            .changed(try decisions.confirm(id, in: sale, user: user, clock: now))
        case .cancel(let id, let sale, let user):
            .changed(try decisions.cancel(id, in: sale, user: user, force: false, clock: now))
        case .submit(let request):
            .submitted(try decisions.submit(request, clock: now))
        }
    }
}
