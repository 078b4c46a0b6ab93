import FlashSaleCLI
import FlashSaleCore
import FlashSaleEngine
import FlashSaleStore
import HTTPTypes
import HummingbirdCore
import NIOConcurrencyHelpers
import NIOCore

/// `GET /booking-service/events` (the seed's "Redis Pub/Sub"): each user's own events as
/// server-sent events. One thread follows the event log for every stream (woken by this
/// process's commits, and by others' through the store's change watcher every few
/// milliseconds) and hands each event to the streams of its user. A stream starts after
/// `Last-Event-ID`, or after the last event in the database when it opens; it reads what
/// it missed from the log first, and what it reads there and what it is handed live meet
/// at the seq it registered at. The follower may be behind that start (another process's
/// commit not yet seen, or a client resuming from another server's stream), so a stream
/// is handed only events after it: each event comes once.
final class EventFeed: Sendable {
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
    /// How often the follower looks for other processes' commits.
    static let pollMilliseconds = 10
    /// An idle stream gets a comment this often, so proxies and clients keep it open.
    static let heartbeat = Duration.seconds(15)
    /// Events a stream may have waiting; a client that reads slower loses its stream
    /// (and resumes with `Last-Event-ID`) rather than the server holding its backlog.
    static let backlog = 10_000
    /// Log events read at a time, by the follower and by a stream sending what it missed.
    static let page: Int64 = 1_000
    /// Streams one user may have open: a new one past it ends the user's oldest (whose
    /// client has most likely gone without a word, behind a NAT or a sleeping laptop), so
    /// that one user's token cannot take every place of `--max-connections` (found by
    /// probing).
    static let streamsPerUser = 16

    private enum Item: Sendable {
        case event(Event)
        case heartbeat
    }

    private struct Subscriber: Sendable {
        let user: UserID
        /// The seq the stream starts after.
        let after: Int64
        let continuation: AsyncStream<Item>.Continuation
        /// Ends the stream, whatever it is sending: the history it missed too.
        let end: @Sendable () -> Void
    }

    private struct State: Sendable {
        /// The last seq handed out: a new stream's live part starts after it.
        var last: Int64 = 0
        /// The event at `last` (nil for an empty log): the log gone back shows as it gone,
        /// or another under its seq (`logWentBack`).
        var reached: Event?
        var subscribers: [Int: Subscriber] = [:]
        /// The streams of each user: an event is handed to its user's alone, in time that
        /// does not grow with the streams open (each event looked at every stream, under
        /// this lock, took 7 s for a burst of 20,000 events with 3,000 streams open).
        var streamsOf: [UserID: [Int]] = [:]
        var nextID = 0
        var stopped = false
        /// What ended the database followed (`databaseMoved`), once something has.
        var databaseEnded: StoreFailure?

        /// The new stream's id, and the stream of the same user it displaced, if any (to be
        /// ended outside the lock).
        mutating func add(_ subscriber: Subscriber) -> (id: Int, displaced: Subscriber?) {
            defer { nextID += 1 }
            var displaced: Subscriber?
            if let oldest = streamsOf[subscriber.user]?.first, streamsOf[subscriber.user]?.count ?? 0 >= EventFeed.streamsPerUser {
                displaced = subscribers[oldest]
                remove(oldest)
            }
            subscribers[nextID] = subscriber
            streamsOf[subscriber.user, default: []].append(nextID)
            return (nextID, displaced)
        }

        mutating func remove(_ id: Int) {
            guard let subscriber = subscribers.removeValue(forKey: id) else { return }
            streamsOf[subscriber.user]?.removeAll { $0 == id }
            if streamsOf[subscriber.user]?.isEmpty == true { streamsOf[subscriber.user] = nil }
        }
    }

    private let state = NIOLockedValueBox(State())
    private let wake = ConditionLock(value: false)
    /// Whether no follower thread runs: none started, or the one started has ended and its
    /// connection is closed.
    private let followerEnded = ConditionLock(value: true)
    private let readers: Readers
    private let sales: Set<SaleID>?
    /// Says once that the database file was removed or replaced under the server, or its
    /// -wal and -shm (the follower's watcher looks at their names every poll), and how;
    /// serve then stops.
    let databaseMoved: AsyncStream<StoreFailure>
    private let movedContinuation: AsyncStream<StoreFailure>.Continuation

    init(readers: Readers, sales: Set<SaleID>?) {
        self.readers = readers
        self.sales = sales
        (databaseMoved, movedContinuation) = AsyncStream.makeStream()
    }

    /// Starts following the log from its end, on a thread of its own.
    func start(store: any Store) throws {
        let log = try LogFollower(store: store)
        let end = try EventFeed.logEnd(log.engine)
        state.withLockedValue { state in (state.last, state.reached) = end }
        // Handed to the thread, which alone then holds the follower: its connection closes
        // when `follow` returns, before `stop` does.
        let handedOver = NIOLockedValueBox<LogFollower?>(log)
        followerEnded.lock()
        followerEnded.unlock(withValue: false)
        DedicatedThread.start { [self] in
            if let log = handedOver.withLockedValue({ box in defer { box = nil }; return box }) { follow(log) }
            followerEnded.lock()
            followerEnded.unlock(withValue: true)
        }
    }

    /// Follows the log until `stop`.
    private func follow(_ log: LogFollower) {
        var lastHeartbeat = ContinuousClock.now
        // A change seen and not delivered (its read failed: busy, a lost connection) is
        // owed until a delivery succeeds: the watcher tells of a change once, and the
        // streams waited for another (a stream whose log went back never ended; a CI run).
        var owed = false
        while !state.withLockedValue({ $0.stopped }) {
            // Woken, or the time is up (then the lock is not held).
            if wake.lock(whenValue: true, timeoutSeconds: Double(EventFeed.pollMilliseconds) / 1000) { wake.unlock(withValue: false) }
            do {
                if try log.watcher.hasChanged() { owed = true }
            } catch let failure as StoreFailure where failure.endsTheDatabaseFollowed {
                state.withLockedValue { $0.databaseEnded = failure }
                movedContinuation.yield(failure)
                movedContinuation.finish()
                return
            } catch {
                // A look that failed (busy, a lost connection): deliver what can be read.
                owed = true
            }
            // Not once stopping: a server gone quiet would hold the exit for a connection
            // attempt more (found by probing: 22 s after "stopped").
            if owed, !state.withLockedValue({ $0.stopped }) { owed = (try? deliver(log.engine)) == nil }
            if ContinuousClock.now - lastHeartbeat >= EventFeed.heartbeat {
                lastHeartbeat = ContinuousClock.now
                broadcast(.heartbeat)
            }
        }
    }

    /// What ended the database followed, if anything has: asked once the follower has
    /// ended (`stop`), since its last look may end after shutdown began (copying a
    /// removed log into the file, waiting for room on a full disk: found by probing,
    /// serve stopped by SIGTERM meanwhile exited 0 without a word of it).
    var databaseEnded: StoreFailure? { state.withLockedValue { $0.databaseEnded } }

    /// This process committed: look now rather than at the next poll.
    func committed() {
        // Without streams the follower's next poll is soon enough.
        guard !state.withLockedValue({ $0.subscribers.isEmpty }) else { return }
        wake.lock()
        wake.unlock(withValue: true)
    }

    /// Ends every stream (shutdown begins): their responses finish, and the listeners'
    /// graceful shutdown need not wait for them.
    func endStreams() {
        let subscribers = state.withLockedValue { state in
            state.stopped = true
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.continuation.finish() }
    }

    /// Ends the streams and the follower; returns once the follower's connection is closed.
    /// On SQLite the last connection of the last process to close folds the WAL into the
    /// database file and removes it: found by probing, the follower was still open when
    /// serve exited, and its last commits stayed in `-wal` after a clean stop.
    func stop() {
        endStreams()
        wake.lock()
        wake.unlock(withValue: true)
        followerEnded.lock(whenValue: true)
        followerEnded.unlock()
    }

    private static let streamHeaders: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-store"]
    /// A stream ends only when the server ends it (shutdown, its token's expiry, the
    /// user's newer streams, a backlog the client did not read): its connection ends with
    /// it, so that a place of `--max-connections` is not left to a client that kept it and
    /// asked again (found by review). A client reconnects for a new stream, as EventSource
    /// does by itself.
    private static let streamingHeaders: HTTPFields = {
        var fields = streamHeaders
        fields[.connection] = "close"
        return fields
    }()

    /// The answer to HEAD: a stream's headers, or its 400, and no stream, which would keep
    /// the connection for an answer whose body is never sent. A body of no stated length,
    /// as a stream's is (an empty one would say `Content-Length: 0`, which GET never says).
    func head(lastEventID: String?) async throws -> Response {
        _ = try await start(after: lastEventID)
        return Response(status: .ok, headers: EventFeed.streamHeaders, body: ResponseBody(contentLength: nil) { writer in try await writer.finish(nil) })
    }

    private static func eventID(_ text: String) throws -> Int64 {
        guard text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }), let seq = Int64(text) else {
            throw HTTPFailure.badInput("Last-Event-ID '\(Quoted(text))' is not an event id")
        }
        return seq
    }

    /// The response for one stream, which ends when `connectionClosed` completes (a client
    /// that left is noticed at once: `HTTP1Rules` closes a stream's connection when its
    /// client closes its side, not at the next event or heartbeat written), after
    /// `endingAfter` (its token's time left: a token that no longer holds follows nothing;
    /// the client resumes with a new one and `Last-Event-ID`), or when the user opens more
    /// than `streamsPerUser`.
    func stream(for user: UserID, lastEventID: String?, endingAfter: Duration?, on loop: any EventLoop,
                connectionClosed: EventLoopFuture<Void>) async throws -> Response {
        let after = try await start(after: lastEventID)
        let (items, continuation) = AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingOldest(EventFeed.backlog))
        let ended = NIOLockedValueBox(false)
        let end: @Sendable () -> Void = {
            ended.withLockedValue { $0 = true }
            continuation.finish()
        }
        let expiry = endingAfter.map { loop.scheduleTask(in: TimeAmount($0), end) }
        let (id, displaced, registeredAt) = state.withLockedValue { state in
            let (id, displaced) = state.add(Subscriber(user: user, after: after, continuation: continuation, end: end))
            return (id, displaced, state.last)
        }
        // Not under the lock: ending a stream runs its onTermination, which takes it.
        displaced?.end()
        let forget: @Sendable () -> Void = { [weak self] in
            self?.state.withLockedValue { $0.remove(id) }
            expiry?.cancel()
        }
        continuation.onTermination = { _ in forget() }
        // Ended before the handler was set (stopped, displaced, expired), which then never runs.
        if state.withLockedValue({ $0.stopped }) || ended.withLockedValue({ $0 }) {
            continuation.finish()
            forget()
        }
        connectionClosed.whenComplete { _ in end() }
        // The first page of what it missed is read before answering, so that a database
        // that fails is an error status rather than a stream cut short.
        let firstMissed = try await missedPage(of: user, after: after, through: registeredAt)
        return Response(status: .ok, headers: EventFeed.streamingHeaders, body: ResponseBody { [self] writer in
            // Sent at once, so a client knows it is following even before the first event.
            try await writer.write(ByteBuffer(string: ": following\n\n"))
            var missed = firstMissed
            while true {
                for event in missed.events { try await writer.write(ByteBuffer(string: EventFeed.message(event))) }
                // At shutdown the stream ends after this page: sending the rest of a long
                // history (a million events took 12 s here) would outlast SIGTERM's 10 s.
                // The client resumes from the last event it got.
                // A client gone (or its token expired) stops it too: a user with no events
                // in a long log is sent nothing while it is read, so no failed write would.
                guard let next = missed.next, !state.withLockedValue({ $0.stopped }), !ended.withLockedValue({ $0 }) else { break }
                missed = try await self.missedPage(of: user, after: next, through: registeredAt)
            }
            for await item in items {
                switch item {
                case .event(let event): try await writer.write(ByteBuffer(string: EventFeed.message(event)))
                case .heartbeat: try await writer.write(ByteBuffer(string: ": idle\n\n"))
                }
            }
            try await writer.finish(nil)
        })
    }

    /// The seq a stream starts after: `Last-Event-ID`'s, or the log's last. An id past the
    /// log's end is none of its events (another database's, or this one restored from an
    /// older backup): its stream would wait, silent, until the log passed it.
    private func start(after lastEventID: String?) async throws -> Int64 {
        let given = try lastEventID.map(EventFeed.eventID)
        let latest = try await readers.read { engine in try engine.latestEventSeq() }
        let after = given ?? latest
        guard after <= latest else {
            throw HTTPFailure.badInput("Last-Event-ID \(after) is past the last event of the log (\(latest))")
        }
        return after
    }

    /// One SSE message: the event's seq as its id, the `events` command's JSON as its data.
    static func message(_ event: Event) -> String {
        let json = EventsCommand.line(event)
        return "id: \(event.seq)\ndata: \(json.dropLast())\n\n"
    }

    /// One page of the log in `(after, through]`: the user's events in it, and where the
    /// next page starts, nil when none is left. A stream writes each page's before reading
    /// the next: one resuming from a million events back holds a page of them, not all.
    private func missedPage(of user: UserID, after: Int64, through last: Int64) async throws -> (events: [Event], next: Int64?) {
        guard after < last else { return ([], nil) }
        let page = try await readers.read { engine in try engine.events(after: after, sale: nil, limit: EventFeed.page) }
        guard let end = page.last?.seq else { return ([], nil) }
        return (page.filter { $0.seq <= last && isFor(user, $0) }, end < last ? end : nil)
    }

    private func isFor(_ user: UserID, _ event: Event) -> Bool {
        guard event.user == user else { return false }
        return sales.map { sales in (try? SaleID(event.sale)).map(sales.contains) ?? false } ?? true
    }

    /// Everything committed since the last look, to the streams of each event's user.
    private func deliver(_ engine: Engine) throws {
        // Nobody follows: no event to read, only where the log ends, for the next stream
        // to start after (checked again under the lock, in case one has just begun).
        if state.withLockedValue({ $0.subscribers.isEmpty }) {
            let end = try EventFeed.logEnd(engine)
            let followed = state.withLockedValue { state in
                if state.subscribers.isEmpty { (state.last, state.reached) = end }
                return !state.subscribers.isEmpty
            }
            guard followed else { return }
        }
        guard try !logWentBack(engine) else { return }
        while true {
            let after = state.withLockedValue { $0.last }
            let page = try engine.events(after: after, sale: nil, limit: EventFeed.page)
            guard let end = page.last?.seq else { return }
            let fallenBehind = state.withLockedValue { state in
                var fallenBehind: [Subscriber] = []
                for event in page {
                    guard let user = event.user, let streams = state.streamsOf[user] else { continue }
                    for id in streams {
                        guard let subscriber = state.subscribers[id], event.seq > subscriber.after, isFor(user, event) else { continue }
                        guard case .dropped = subscriber.continuation.yield(.event(event)) else { continue }
                        // Handed nothing more, so that its stream ends at the last event it
                        // holds, without a gap, and resumes from there.
                        state.remove(id)
                        fallenBehind.append(subscriber)
                    }
                }
                (state.last, state.reached) = (end, page.last)
                return fallenBehind
            }
            // Not under the lock: ending a stream runs its onTermination, which takes it.
            for subscriber in fallenBehind { subscriber.continuation.finish() }
        }
    }

    /// The event at `last` gone, or another under its seq, is the log gone back under the
    /// server (`Engine.logStillHas`). Then every stream ends (`endStreams`); a client
    /// resuming from past the log's end is refused with why (`stream`). Returns whether it
    /// went back.
    private func logWentBack(_ engine: Engine) throws -> Bool {
        guard let reached = state.withLockedValue({ $0.reached }) else { return false }
        return try engine.logStillHas(reached) ? false : endStreams(engine)
    }

    /// The log's last seq, and its event (nil for an empty log).
    private static func logEnd(_ engine: Engine) throws -> (Int64, Event?) {
        let latest = try engine.latestEventSeq()
        return (latest, latest > 0 ? try engine.event(latest) : nil)
    }

    /// Ends every stream, and follows on from the log's end; true, for `logWentBack`.
    private func endStreams(_ engine: Engine) throws -> Bool {
        let end = try EventFeed.logEnd(engine)
        let ended = state.withLockedValue { state in
            (state.last, state.reached) = end
            let subscribers = Array(state.subscribers.values)
            for id in Array(state.subscribers.keys) { state.remove(id) }
            return subscribers
        }
        // Not under the lock: ending a stream runs its onTermination, which takes it.
        for subscriber in ended { subscriber.continuation.finish() }
        return true
    }

    private func broadcast(_ item: Item) {
        for subscriber in state.withLockedValue({ Array($0.subscribers.values) }) { subscriber.continuation.yield(item) }
    }
}

/// The follower thread's own connection and its change watcher. Unchecked: only that
/// thread uses them, after `start` made them.
private final class LogFollower: @unchecked Sendable {
    let engine: Engine
    var watcher: any ChangeWatcher

    init(store: any Store) throws {
        engine = Engine(store: store)
        watcher = try store.changeWatcher()
    }
}
