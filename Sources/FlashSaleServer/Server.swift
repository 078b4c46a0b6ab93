import FlashSaleCLI
import FlashSaleCore
import FlashSaleEngine
import Glibc
import HTTPTypes
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// `flashsale serve` (http.md): the buyer listeners, the admin listener, the committer,
/// the readers and the event feed, run until SIGINT, SIGTERM or SIGHUP (those not ignored:
/// `StopSignals.heeded`); then the listeners stop accepting, every
/// request already read is answered, the last group commits, and the process exits 0.
package enum Server {
    /// How long idle keep-alive connections stay open (http.md).
    static let idleTimeout = TimeAmount.seconds(60)
    /// The same on the admin listener, whose few places (`AdminAPI.maximumConnections`)
    /// idle connections held for a minute, and a health checker was refused (review): as
    /// short as a request's own 10 s allow (`ConnectionDeadlines`). A scraper that keeps
    /// its connection between scrapes makes another.
    static let adminIdleTimeout = TimeAmount.seconds(10)
    /// Reader threads: reads are short, and the committer and the event loops need the cores.
    static let readerThreads = 2
    /// The admin listener's own reader: a health check or a scrape queued behind buyers'
    /// reads (a history of thousands of bookings is tens of milliseconds) would take a busy
    /// server for a dead one (found by probing: /healthz waited 1.9 s behind 50 of them).
    static let adminReaderThreads = 1
    /// Connections the kernel may queue before they are accepted: a sale opens with a burst.
    static let backlog = 4096

    /// `flashsale-serve`'s `serve`: the server, from start-up to exit. A start-up failure
    /// (a key that does not parse, a missing database, an address in use) is thrown, and
    /// the command line turns it into its exit code.
    package static func run(_ settings: ServeSettings) throws {
        let outcome = NIOLockedValueBox<Result<Void, any Error>?>(nil)
        let done = ConditionLock(value: false)
        Task {
            let result: Result<Void, any Error>
            do {
                try await serve(settings)
                result = .success(())
            } catch {
                result = .failure(error)
            }
            outcome.withLockedValue { $0 = result }
            done.lock()
            done.unlock(withValue: true)
        }
        done.lock(whenValue: true)
        done.unlock()
        try outcome.withLockedValue { $0 ?? .success(()) }.get()
    }

    /// Runs `step` of the start until no other process's lock outlasts the busy timeout:
    /// serve runs as long as a follower does and, as one, waits out a lock that was there
    /// first rather than exit 75 (found by probing), said once in the log, and its end. A
    /// stop signal meanwhile ends the process as before the server runs.
    private static func waitingOutLocks<T>(_ logger: Logger, _ step: () throws -> T) throws -> T {
        try CommitWatcher.waitingOutLocks(waiting: { logger.warning("\(CommitWatcher.waitingForLock)") },
                                          free: { logger.notice("\(CommitWatcher.lockFree)") }, step)
    }

    private static func serve(_ settings: ServeSettings) async throws {
        let log = LogOutput()
        log.start()
        defer { log.stop() }
        LoggingSystem.bootstrap { _ in JSONLogHandler(output: log) }
        let logger = Logger(label: "flashsale.serve")
        StoreNotices.send { logger.warning("\($0)") }

        // First: nothing started yet that a refusal would leave running (review).
        let openFiles = OpenFilesLimit.raise()
        let connections = OpenFilesLimit.connections(asked: settings.maxConnections, openFiles: openFiles)
        guard connections > 0 else {
            throw FlashSaleError.cantOpen("serve: the open files limit (\(openFiles)) leaves no descriptor for a buyer's connection "
                                          + "beside the \(OpenFilesLimit.reserve) serve keeps: raise it (ulimit -Hn, LimitNOFILE=)")
        }
        let authenticator = try await Authenticator(settings.authentication)
        if let warning = authenticator.warning { logger.warning("\(warning)") }
        let readers = Readers(threads: readerThreads, openStore: settings.openStore)
        let feed = EventFeed(readers: readers, sales: settings.sales)
        try waitingOutLocks(logger) { try feed.start(store: settings.openStore()) }
        let metrics = HTTPMetrics()
        let accessLog = AccessLog(output: log)
        let committerStore = try waitingOutLocks(logger) { try settings.openStore() }
        let committer = Committer(store: committerStore, clock: settings.clock, logger: logger) { decisions in
            feed.committed()
            metrics.committed(decisions: decisions)
        }
        committer.start()
        let buyers = BuyerAPI(authenticator: authenticator, clientAddress: ClientAddress(trustedProxies: settings.trustedProxies),
                              committer: committer, readers: readers, events: feed, sales: settings.sales, clock: settings.clock)
        let adminReaders = Readers(threads: adminReaderThreads, openStore: settings.openStore)
        let admin = AdminAPI(readers: adminReaders, buyersReaders: readers, metrics: metrics, clock: settings.clock, logger: logger)
        let limit = ConnectionLimit(maximum: connections)
        let adminLimit = ConnectionLimit(maximum: AdminAPI.maximumConnections)

        var services: [any Service] = []
        for address in settings.listen {
            services.append(Listener(address: address.description, service: buyerListener(
                buyers, at: .hostname(address.bindHost, port: address.port), limit: limit, metrics: metrics, accessLog: accessLog,
                logger: logger)))
        }
        if let socket = settings.socket.map(SocketFile.init) {
            services.append(Listener(address: socket.path, service: buyerListener(
                buyers, at: .unixDomainSocket(path: socket.boundPath), limit: limit, metrics: metrics, accessLog: accessLog,
                logger: logger
            ) { _ in socket.publish() }, prepare: socket.removeStale, finish: socket.remove))
        }
        // HTTP/1's rules and deadlines as on the buyers' listeners (a health checker may speak
        // HTTP/1.0; a trickled request held its connection for the idle timeout); its
        // refusals are not buyers' answers, so not counted with them.
        services.append(Listener(address: settings.admin.description, service: RulesChannel.listener(
            .init(address: .hostname(settings.admin.bindHost, port: settings.admin.port)),
            handlers: { peer in [adminLimit.handler(), MalformedRequests(recorder: nil, peer: peer)] },
            idleTimeout: adminIdleTimeout, logger: logger
        ) { request, _ in
            .now(await admin.answer(request).response)
        }))
        // Shut down first (services stop in reverse order): live streams end, so that the
        // listeners' graceful shutdown has no endless request to wait for.
        services.append(ShutdownStart(feed: feed, committer: committer))

        let moved = DatabaseMoved(feed: feed)
        // A listener that cannot listen stops the others as a signal does: cancelled,
        // Hummingbird logs an error of its own ("Waiting on child channel:
        // CancellationError()") for each, beside the one that says why.
        let group = ServiceGroup(configuration: .init(
            services: ([moved] + services).map { .init(service: $0, failureTerminationBehavior: .gracefullyShutdownGroup) },
            gracefulShutdownSignals: StopSignals.heeded.map { $0 == SIGINT ? .sigint : $0 == SIGTERM ? .sigterm : .sighup },
            logger: logger))
        moved.group.withLockedValue { $0 = group }
        var serving: Logger.Metadata = [
            "database": .string(settings.database),
            "listen": .array(settings.listen.map { .string($0.description) } + (settings.socket.map { [.string($0)] } ?? [])),
            "admin": .string(settings.admin.description),
        ]
        // What narrows or widens whom serve believes and serves, for the operator to see.
        if !settings.trustedProxies.isEmpty {
            serving["trusted_proxies"] = .array(settings.trustedProxies.map { .string($0.description) })
        }
        if let sales = settings.sales {
            serving["sales"] = .array(sales.map(\.text).sorted().map { .string($0) })
        }
        logger.info("serving", metadata: serving)
        // Left exported after the README's walk-through, it made a server whose holds never
        // expired and whose times were a week old, and nothing said why (new-user try).
        if let fixedNow = settings.fixedNow {
            logger.warning("""
                FLASHSALE_NOW fixes the clock: every decision is made at this time and no hold expires by the real clock; \
                unset it to serve a sale
                """, metadata: ["now": .string(fixedNow.description)])
        }
        await warnOfMissingSales(settings.sales, readers: readers, logger: logger)
        if connections < settings.maxConnections {
            logger.warning("""
                the open files limit holds fewer connections than --max-connections: serve holds this many at once and closes \
                any more as it accepts them; raise it (LimitNOFILE=, ulimit -Hn)
                """, metadata: [
                    "open_files": .stringConvertible(openFiles), "max_connections": .stringConvertible(settings.maxConnections),
                    "connections": .stringConvertible(connections),
                ])
        }
        defer {
            committer.stop()
            feed.stop()
        }
        do {
            try await group.run()
        } catch {
            // Their connections closed before the process exits, as below (`Readers.shutdown`).
            try? await readers.shutdown()
            try? await adminReaders.shutdown()
            let failure = error as? FlashSaleError ?? FlashSaleError.cantOpen("serve: \(error)")
            logger.error("stopped", metadata: ["error": .string(failure.message)])
            throw LoggedFailure(failure)
        }
        committer.stop()
        feed.stop()
        try await readers.shutdown()
        try await adminReaders.shutdown()
        if let how = moved.failure ?? feed.databaseEnded {
            // As the followers say it: what became of the log, and where the file went (found
            // by probing: "the database now there" of a file moved away and copied into).
            let failure = ExitStatus.error(for: how)
            logger.error("stopped", metadata: ["error": .string(failure.message)])
            throw LoggedFailure(failure)
        }
        logger.info("stopped")
    }

    /// Stops the server, as a stop signal does, once its database file has been removed or
    /// replaced under it, or its schema dropped (`EventFeed.databaseMoved`): it would go on
    /// answering every change 503 and every read from what it had, its health check 200,
    /// for ever. serve then exits 73, as `process --follow` does, for a supervisor to start
    /// it again on the database now there. It ends only at its own turn of the shutdown:
    /// a service that ends before is one that failed, and the group would cancel the
    /// others, cutting the requests they answer.
    private final class DatabaseMoved: Service, Sendable {
        private let feed: EventFeed
        private let moved = NIOLockedValueBox<StoreFailure?>(nil)
        /// The group it stops, once made.
        let group = NIOLockedValueBox<ServiceGroup?>(nil)

        init(feed: EventFeed) {
            self.feed = feed
        }

        /// How it went, once it has.
        var failure: StoreFailure? { moved.withLockedValue { $0 } }

        func run() async {
            for await failure in feed.databaseMoved.cancelOnGracefulShutdown() {
                moved.withLockedValue { $0 = failure }
                await group.withLockedValue { $0 }?.triggerGracefulShutdown()
                break
            }
            try? await gracefulShutdown()
        }
    }

    /// A listener, whose failure to listen names its address: NIO's error names none, and
    /// serve has several ("bind(descriptor:ptr:bytes:): Address already in use").
    private struct Listener: Service {
        let address: String
        let service: any Service
        /// What must hold before it listens, checked as it starts: a path that cannot be
        /// listened on is then said as an address in use is, in the JSON log (found by
        /// probing: said before the log began, in a plain line).
        var prepare: @Sendable () throws -> Void = {}
        /// What it leaves behind, undone once it has stopped listening.
        var finish: @Sendable () -> Void = {}

        func run() async throws {
            defer { finish() }
            do {
                try prepare()
                try await service.run()
            } catch let error as IOError {
                throw FlashSaleError.cantOpen("cannot listen on \(address): \(String(cString: strerror(error.errnoCode)).lowercased())")
            } catch let error as SocketAddressError.UnknownHost {
                throw FlashSaleError.cantOpen("cannot listen on \(address): \(error.errorDescription.lowercased())")
            }
        }
    }

    /// A `--sale` that names no sale is served as 404 until it is made, which a typo would
    /// be for ever: said once at the start (found by probing: nothing said it).
    /// A read that fails says nothing here: the requests will say why.
    private static func warnOfMissingSales(_ sales: Set<SaleID>?, readers: Readers, logger: Logger) async {
        guard let sales, let missing = try? await readers.read({ engine in
            try sales.filter { sale in
                do {
                    _ = try engine.sale(sale)
                    return false
                } catch SaleError.saleNotFound {
                    return true
                }
            }
        }) else { return }
        for sale in missing.sorted(by: { $0.text < $1.text }) {
            logger.warning("no such sale yet: its requests are 404 until it is created", metadata: ["sale": .string(sale.text)])
        }
    }

    /// One buyer listener; every answer is counted, timed and logged.
    private static func buyerListener(_ buyers: BuyerAPI, at address: BindAddress, limit: ConnectionLimit,
                                      metrics: HTTPMetrics, accessLog: AccessLog, logger: Logger,
                                      onRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> any Service {
        RulesChannel.listener(
            .init(address: address, backlog: backlog),
            handlers: { peer in [limit.handler(), MalformedRequests(recorder: (metrics, accessLog), peer: peer)] },
            idleTimeout: idleTimeout, logger: logger, onRunning: onRunning
        ) { request, connection in
            let started = ContinuousClock.now
            metrics.started()
            let context = ServeContext(connection: connection, headers: request.headers, clientAddress: buyers.clientAddress)
            let (route, reply) = await buyers.answer(request, context: context)
            let name = route?.rawValue ?? "none"
            let method = request.method.rawValue
            let record = { @Sendable (status: HTTPResponse.Status, problem: String?) in
                let elapsed = ContinuousClock.now - started
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                metrics.record(route: name, status: status.code, seconds: seconds)
                accessLog.record(method: method, route: name, status: status.code, seconds: seconds, from: .client(context.client),
                                 problem: problem)
            }
            return reply.map(now: { response, problem in
                record(response.status, problem)
                return response
            }, later: { answer, problem in
                record(answer.head.status, problem)
                return answer
            })
        }
    }
}

/// Tells the live event streams, which end, and the committer when shutdown starts.
private struct ShutdownStart: Service {
    let feed: EventFeed
    let committer: Committer

    func run() async throws {
        try? await gracefulShutdown()
        feed.endStreams()
        committer.shutdownStarted()
    }
}
