import Glibc
import FlashSaleCore
import FlashSaleEngine
import FlashSaleNIO
import Logging
import NIOConcurrencyHelpers
import PostgresNIO

/// A value bound to a statement's parameter (`$1`, `$2`, …).
enum SQLValue {
    case int(Int64?)
    case text(String?)
    case bool(Bool)
    /// A text[] (for `= ANY($n)` and `unnest`).
    case texts([String])
    case ints([Int64])
    case bools([Bool])
}

/// One row of a result, its columns read by name: each name found once per answer, and by
/// its literal's address in the answer's later rows (`ColumnFinder`), not hashed twice on
/// every read of every row (`process` reads five columns of each queued request).
struct Row: StoredRow {
    private let cells: PostgresRandomAccessRow
    private let columns: Columns

    /// An answer's columns, shared by its rows and freed with the last of them.
    private final class Columns {
        let finder: ColumnFinder

        init(names: [String]) { finder = ColumnFinder(names: names) }
    }

    /// The rows of one answer, with one finder of its columns.
    static func all(of answer: some Collection<PostgresRow>) -> [Row] {
        guard let first = answer.first else { return [] }
        let columns = Columns(names: first.map(\.columnName))
        return answer.map { Row(cells: PostgresRandomAccessRow($0), columns: columns) }
    }

    private init(cells: PostgresRandomAccessRow, columns: Columns) {
        self.cells = cells
        self.columns = columns
    }

    func int64(_ column: StaticString) throws -> Int64 { try decode(column, Int64.self) }
    func optionalInt64(_ column: StaticString) throws -> Int64? { try decode(column, Int64?.self) }
    func text(_ column: StaticString) throws -> String { try decode(column, String.self) }
    func optionalText(_ column: StaticString) throws -> String? { try decode(column, String?.self) }
    func bool(_ column: StaticString) throws -> Bool { try decode(column, Bool.self) }

    private func decode<T: PostgresDecodable>(_ column: StaticString, _ type: T.Type) throws -> T {
        let index: Int
        do {
            index = try columns.finder.position(of: column)
        } catch {
            throw PostgresError(failure: nil, "\(error) in the result")
        }
        do {
            return try cells[index].decode(T.self)
        } catch {
            throw PostgresError(failure: nil, "column \(column) is not a \(T.self): \(String(reflecting: error))")
        }
    }
}

/// One connection to the server, on the process's PostgreSQL event loop: the store's
/// protocols are synchronous and their callers are threads of their own (the command line,
/// serve's committer and thread pool), never this loop, so each statement waits for its
/// answer.
final class PostgresSession {
    /// One thread for every session of the process, made with the first and never shut
    /// down, as NIO's own singletons: a group's shutdown hands its last callback to
    /// Dispatch, whose threads it starts, and a `book` spent a millisecond or two of its
    /// 19 on that on its way out.
    /// Made with the first session that finds the descriptors it needs free
    /// (`descriptorsNeeded`).
    private static let events = NIOLockedValueBox<MultiThreadedEventLoopGroup?>(nil)

    /// NIO's event loop takes three (epoll's, an eventfd and a timerfd), and traps when it
    /// cannot have them (found by probing: under `ulimit -n 5` every command crashed, exit
    /// 132); a connection takes one more.
    private static let descriptorsNeeded = 4

    let location: PostgresLocation
    private let connection: PostgresConnection
    private let logger = Logger(label: "flashsale.postgres") { _ in SwiftLogNoOpLogHandler() }
    /// Whether a statement found the connection gone: nothing more is sent on it.
    private var isLost = false
    /// Statements sent whose answers are still to be checked (`send`, `sendCopy`), in order.
    private var unanswered: [EventLoopFuture<Void>] = []
    /// The schema's version, asked for with the connection's first statements rather than
    /// before them (`askSchemaVersion`), and checked before any of their answers is used.
    private var versionAsked: EventLoopFuture<PostgresQueryResult>?
    /// Whether that answer was not this flashsale's version, or no version (no table): the
    /// store checks the schema as on opening (`PostgresSchema.migrate`) before its next
    /// transaction, and the transaction that asked is run again.
    var schemaNeedsCheck = false
    /// The schema's oid as this store's first transaction found it, carried to the
    /// connections made after a lost one (`askSchemaIdentity`).
    var schemaIdentity: Int64?
    private var identityAsked: EventLoopFuture<PostgresQueryResult>?
    /// The transaction under way as the server names it in `pg_stat_activity`, its process
    /// and start, answered with the identity asked ahead: what to look for when a COMMIT
    /// and the answer that named its transaction were both lost (found by probing: the
    /// transaction was left open, holding its sales' rows, and could not be found). nil
    /// until answered in this transaction (never in a store's first, which asks the version
    /// instead, before its BEGIN): another's process would be a stranger's (review).
    private(set) var transactionUnderWay: PostgresError.UnansweredTransaction?
    /// How long an answer is waited for while the server sends nothing (`activity`): the
    /// statement timeout, after which the server cancels the statement and says so, and
    /// `answerGrace` more. nil when there is no statement timeout. A server that keeps the
    /// connection but answers nothing (a stuck proxy, a hung disk) then counts as lost:
    /// keepalive cannot see it, and a follower waited on it for good, stop signals
    /// unheeded (found by probing).
    private var answerLimit: TimeAmount?
    private let activity = ServerActivity()
    /// Why the connection was given up (`giveUp`): what every statement on it fails with
    /// since, rather than the close that followed.
    private var silence: PostgresError?
    /// What a server may take past its statement timeout to say it canceled a statement.
    private static let answerGrace = Span.seconds(5)

    /// Whether statements can still be sent: not lost, and not closed by the server.
    var isUsable: Bool { !isLost && !connection.isClosed }

    /// Connects, with every setting the store relies on given at start-up (no round trip
    /// more, and above any the role or database sets): the schema as the search path, the
    /// busy timeout as the lock timeout (and, a second longer, the statement timeout), no
    /// JIT (which compiled the set-based statements for longer than they ran), commits
    /// synced before they are answered, and text in UTF-8. A role or database set to
    /// `synchronous_commit = off` lost in a crash a booking whose `book` had exited 0, and
    /// one whose `client_encoding` was SJIS stored users' names as other characters, or
    /// failed a valid one as a bug (found by probing).
    init(location: PostgresLocation, busyTimeout: Span) throws {
        self.location = location
        let outOfDescriptors = "no file descriptor is free to connect to PostgreSQL"
        let events = Self.events.withLockedValue { events in
            if events == nil, Self.descriptorsFree(Self.descriptorsNeeded) { events = MultiThreadedEventLoopGroup(numberOfThreads: 1) }
            return events
        }
        guard let events else {
            throw StoreFailure.io(detail: "\(outOfDescriptors) (it takes \(Self.descriptorsNeeded)); raise ulimit -n")
        }
        do {
            let loop = events.next()
            var configuration = try Self.configuration(of: location, watchedBy: activity, on: loop)
            // PostgreSQL's timeouts are int milliseconds (24.8 days at most) where a busy
            // timeout may be ten years: a longer one was refused at connection as "invalid
            // value for parameter", exit 73. 0 turns a timeout off: as long as waits can be.
            let longest = Int64(Int32.max)
            let lockTimeout = max(1, busyTimeout.milliseconds)
            let lockSetting = lockTimeout > longest - 1000 ? 0 : lockTimeout
            // A second later than the lock's: a statement's clock starts before its wait for
            // a lock does, so with the same timeout a wait behind another writer was always
            // canceled as a slow statement, and said so.
            let statementSetting = lockSetting == 0 ? 0 : lockTimeout + 1000
            answerLimit = statementSetting == 0 ? nil : .milliseconds(statementSetting + Self.answerGrace.milliseconds)
            configuration.options.additionalStartupParameters = [
                ("search_path", quotedIdentifier(location.schema)), ("lock_timeout", String(lockSetting)),
                ("statement_timeout", String(statementSetting)), ("jit", "off"), ("application_name", location.applicationName),
                ("synchronous_commit", "on"), ("client_encoding", "UTF8"),
            ]
            connection = try PostgresConnection.connect(on: loop, configuration: configuration, id: 1,
                                                        logger: logger).wait()
        } catch {
            // Not the server's fault, nor the URL's: said as SQLite says it, exit 74.
            if let io = error as? IOError, io.errnoCode == EMFILE || io.errnoCode == ENFILE {
                throw StoreFailure.io(detail: "\(outOfDescriptors) (\(ConnectionFailureWords.reason(error))); raise ulimit -n")
            }
            let detail = "cannot connect to PostgreSQL at \(location.server) (\(location.login)): "
                + ConnectionFailureWords.reason(error)
            // too_many_connections: for everyone (max_connections) or for the role.
            if (error as? PSQLError)?.serverInfo?[.sqlState] == "53300" { throw StoreFailure.noConnectionFree(detail: detail) }
            throw StoreFailure.unreachable(detail: detail)
        }
    }

    /// Closes without waiting: the close runs on the event loop, which keeps the connection
    /// until it is done. A one-shot command then exits as soon as it has answered, and the
    /// kernel ends the socket if the process ends first (postgres-nio sends no goodbye
    /// either way). Waiting for it took a `book` about 5 ms of its 20-25 here, most of it
    /// system time.
    deinit {
        let connection = connection
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// Whether `count` descriptors can be had, tried by making them (sockets: no file
    /// need be there).
    private static func descriptorsFree(_ count: Int) -> Bool {
        let opened = (0..<count).map { _ in socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        for descriptor in opened where descriptor >= 0 { close(descriptor) }
        return opened.allSatisfy { $0 >= 0 }
    }

    /// The connection's configuration, on a channel made here, whose reads `activity` sees.
    private static func configuration(of location: PostgresLocation, watchedBy activity: ServerActivity,
                                      on loop: any EventLoop) throws -> PostgresConnection.Configuration {
        switch location.endpoint {
        case .unixSocket(let directory, let port):
            let deadline = NIODeadline.now() + connectTimeout(location)
            let channel = try ClientBootstrap(group: loop).connectTimeout(connectTimeout(location))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(activity) }
                }
                .connect(unixDomainSocketPath: "\(directory)/.s.PGSQL.\(port)").wait()
            var configuration = PostgresConnection.Configuration(
                establishedChannel: channel, tls: .disable,
                username: location.user, password: location.password, database: location.database)
            configuration.options.connectTimeout = max(.milliseconds(1), deadline - .now())
            return configuration
        case .tcp(let host, let port):
            let tls = try tls(location.tls, trusting: location.rootCertificate)
            let isAddress = isAddress(host)
            let checksIdentity = location.tls == .verifyFull
            let (channel, deadline) = try connect(to: host, port: port, within: connectTimeout(location), on: loop) { pipeline in
                try pipeline.addHandler(activity)
                if checksIdentity { try pipeline.addHandler(ServerIdentityCheck(host: host, isAddress: isAddress)) }
            }
            var configuration = PostgresConnection.Configuration(
                establishedChannel: channel, tls: tls,
                username: location.user, password: location.password, database: location.database)
            // Logging in gets what connecting to the address left of its time, as libpq's
            // connect_timeout bounds both together.
            configuration.options.connectTimeout = max(.milliseconds(1), deadline - .now())
            // The host's name in the handshake (SNI), as libpq sends it in every mode (proxies
            // route by it), and what verify-full checks the certificate against. An address
            // cannot be sent there (RFC 6066): NIOSSL then checks the certificate against the
            // address it connected to, as libpq checks an address host.
            if !isAddress { configuration.options.tlsServerName = host }
            return configuration
        }
    }

    /// How long connecting to one address and logging in may take together (libpq's
    /// `connect_timeout`). No limit is NIO's longest: it has no "never".
    private static func connectTimeout(_ location: PostgresLocation) -> TimeAmount {
        .milliseconds((location.connectTimeout ?? .maximum).milliseconds)
    }

    /// The host's addresses tried in turn, as libpq tries them, looked up on this thread:
    /// NIO's look-up runs getaddrinfo on Dispatch's thread pool, which it starts, a few
    /// milliseconds of a one-shot command. The first address's failure if none answers;
    /// else the channel, and when the time of the address it reached runs out.
    private static func connect(to host: String, port: Int, within timeout: TimeAmount, on loop: any EventLoop,
                                handlers: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void)
        throws -> (any Channel, NIODeadline) {
        // A server that stops answering (a network cut, a failover that takes its address
        // away) is found gone within about 45 s, and the command ends as for a lost
        // connection (exit 74), rather than wait for it for ever when idle (a follower's
        // LISTEN), or for the kernel's quarter of an hour of retransmissions when sending.
        // Keepalive probes are answered by a server that is there, however long it works.
        func tcp(_ name: Int32) -> ChannelOptions.Types.SocketOption {
            .init(level: NIOBSDSocket.OptionLevel(rawValue: CInt(IPPROTO_TCP)), name: NIOBSDSocket.Option(rawValue: name))
        }
        let bootstrap = ClientBootstrap(group: loop).connectTimeout(timeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(tcp(TCP_KEEPIDLE), value: 15)
            .channelOption(tcp(TCP_KEEPINTVL), value: 5)
            .channelOption(tcp(TCP_KEEPCNT), value: 3)
            .channelOption(tcp(TCP_USER_TIMEOUT), value: 30_000)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try handlers(channel.pipeline.syncOperations) } }
        var firstFailure: (any Error)?
        for address in try addresses(of: host, port: port) {
            let deadline = NIODeadline.now() + timeout
            do {
                return (try bootstrap.connect(to: address).wait(), deadline)
            } catch {
                firstFailure = firstFailure ?? error
            }
        }
        throw firstFailure ?? PostgresError(failure: nil, "no address for host \(host)")
    }

    private static func addresses(of host: String, port: Int) throws -> [SocketAddress] {
        if isAddress(host) { return [try SocketAddress(ipAddress: host, port: port)] }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0 else {
            // psql's words.
            throw PostgresError(failure: nil, "could not translate host name \"\(Quoted(host, keeping: 120))\" to address: "
                                + String(cString: gai_strerror(status)).lowercased())
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry = list
        while let current = entry {
            switch current.pointee.ai_family {
            case AF_INET:
                current.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    addresses.append(SocketAddress($0.pointee, host: host))
                }
            case AF_INET6:
                current.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    addresses.append(SocketAddress($0.pointee, host: host))
                }
            default:
                break
            }
            entry = current.pointee.ai_next
        }
        return addresses
    }

    /// libpq's modes: `prefer` encrypts without checking the certificate; `require` too,
    /// unless a root certificate is given (or libpq's default file is there), which its
    /// chain is then checked against, as libpq does; `verify-ca` checks the chain against
    /// the root certificate's authorities (one is required), `verify-full` the chain and
    /// the host name, against them, or the system's with none or `system`.
    private static func tls(_ mode: PostgresLocation.TLSMode, trusting rootCertificate: String?) throws -> PostgresConnection.Configuration.TLS {
        var unchecked = TLSConfiguration.makeClientConfiguration()
        unchecked.certificateVerification = .none
        // Read only by the modes that check: libpq ignores the file otherwise.
        func checked() throws -> TLSConfiguration {
            var checked = TLSConfiguration.makeClientConfiguration()
            if let rootCertificate, rootCertificate != "system" {
                checked.trustRoots = .certificates(try authorities(in: rootCertificate))
            }
            // The chain only: verify-full's name is `ServerIdentityCheck`'s.
            checked.certificateVerification = .noHostnameVerification
            return checked
        }
        switch mode {
        case .disable:
            return .disable
        case .prefer:
            return .prefer(try NIOSSLContext(configuration: unchecked))
        case .require where rootCertificate == nil:
            return .require(try NIOSSLContext(configuration: unchecked))
        case .verifyCA where rootCertificate == nil:
            // As libpq: the system's authorities vouch for any public name, and verify-ca
            // checks none, so it would take anyone's certificate.
            throw PostgresError(failure: nil, "sslmode=verify-ca needs the authority that signs the server's certificate "
                                + "(sslrootcert, PGSSLROOTCERT or ~/.postgresql/root.crt); verify-full checks the name against the system's")
        case .require, .verifyCA, .verifyFull:
            return .require(try NIOSSLContext(configuration: try checked()))
        }
    }

    /// The root certificate file's authorities, read here so that a file that cannot be
    /// read, or holds no certificate, is said in words rather than in BoringSSL's codes.
    private static func authorities(in path: String) throws -> [NIOSSLCertificate] {
        func refusal(_ reason: String) -> PostgresError {
            PostgresError(failure: nil, "cannot read the root certificate file \(path) (sslrootcert): \(reason)")
        }
        guard access(path, R_OK) == 0 else { throw refusal(String(cString: strerror(errno)).lowercased()) }
        guard let certificates = try? NIOSSLCertificate.fromPEMFile(path), !certificates.isEmpty else {
            throw refusal("it holds no PEM certificate")
        }
        return certificates
    }

    private static func isAddress(_ host: String) -> Bool {
        var bytes = in6_addr()
        return inet_pton(AF_INET, host, &bytes) == 1 || inet_pton(AF_INET6, host, &bytes) == 1
    }

    // MARK: - Statements

    /// Runs one statement; the number of rows it changed.
    @discardableResult
    func execute(_ sql: String, _ values: [SQLValue] = []) throws -> Int64 {
        Int64(try run(sql, values).metadata.rows ?? 0)
    }

    func rows<T>(_ sql: String, _ values: [SQLValue] = [], _ decode: (Row) throws -> T) throws -> [T] {
        try Row.all(of: run(sql, values).rows).map(decode)
    }

    func firstRow<T>(_ sql: String, _ values: [SQLValue] = [], _ decode: (Row) throws -> T) throws -> T? {
        try Row.all(of: run(sql, values).rows.prefix(1)).first.map(decode)
    }

    /// The first column of the first row, a count.
    func count(_ sql: String, _ values: [SQLValue] = []) throws -> Int64 {
        try run(sql, values).rows.first.map { try $0.makeRandomAccess()[0].decode(Int64.self) } ?? 0
    }

    /// Runs `body` in the open transaction with no statement timeout to its end (`SET
    /// LOCAL`), and no limit on the answers waited for meanwhile: a copy or a recount of
    /// millions of rows runs longer than any lock wait should. A lock still waits only the
    /// busy timeout (lock_timeout).
    func withoutStatementTimeout<T>(_ body: () throws -> T) throws -> T {
        try execute("SET LOCAL statement_timeout = 0")
        let limit = answerLimit
        answerLimit = nil
        defer { answerLimit = limit }
        return try body()
    }

    /// Each row of a query inside the open transaction, fetched a page at a time through a
    /// cursor: a million rows take the memory of one page.
    func forEachRow(_ sql: String, _ values: [SQLValue], _ body: (Row) throws -> Void) throws {
        try execute("DECLARE flashsale_rows NO SCROLL CURSOR FOR \(sql)", values)
        while true {
            let page = try run("FETCH FORWARD 1000 FROM flashsale_rows", []).rows
            for row in Row.all(of: page) { try body(row) }
            if page.count < 1000 { break }
        }
        try execute("CLOSE flashsale_rows")
    }

    /// Up to `limit` rows of a query after its first `skipping`, planned for a fast start:
    /// through a cursor, which the planner plans for its first rows
    /// (`cursor_tuple_fraction`), as `LIMIT` alone is not. A table filled since it was last
    /// analyzed (a queue loaded a minute ago) looks nearly empty to the planner, which then
    /// reads and sorts every row of `WHERE … ORDER BY` to return the first few: 72 ms for
    /// the first 3,333 of W2's 220,000 queued requests, against 1 ms by the index in order.
    /// One wait for the cursor's three or four statements.
    func firstRows<T>(_ sql: String, _ values: [SQLValue], skipping skipped: Int64 = 0, limit: Int64,
                      _ decode: (Row) throws -> T) throws -> [T] {
        // FETCH FORWARD 0 would fetch the current row again.
        guard limit > 0 else { return [] }
        // A count is a 32-bit integer in SQL's grammar; ALL is every row there is.
        func count(_ rows: Int64) -> String { rows > Int64(Int32.max) ? "ALL" : "\(rows)" }
        var statements: [(sql: String, values: [SQLValue])] = [("DECLARE flashsale_first NO SCROLL CURSOR FOR \(sql)", values)]
        if skipped > 0 { statements.append(("MOVE FORWARD \(count(skipped)) IN flashsale_first", [])) }
        statements.append(("FETCH FORWARD \(count(limit)) FROM flashsale_first", []))
        statements.append(("CLOSE flashsale_first", []))
        return try rowsOfEach(statements)[statements.count - 2].map(decode)
    }

    /// Asks for the schema's version without waiting for the answer, which comes before
    /// those of the statements sent after it: a command does not wait a round trip, and a
    /// server parse of its own, for the answer it nearly always gets, this flashsale's own
    /// version (a millisecond of a `book`'s 16). Nothing is committed before it is checked:
    /// every wait checks it first, and so does `settleAskedAhead` before a COMMIT is sent.
    func askSchemaVersion() throws {
        versionAsked = try start(PostgresSchema.versionQuery, [])
    }

    /// Asks for the schema's oid with a transaction's first statements, as the version is
    /// asked (no round trip of its own). A schema dropped, or dropped and made again, under
    /// a command that goes on (`book --stream`, `serve`, `process`) took its commits where
    /// nobody looks, as a SQLite file removed while open would (found by probing): checked
    /// before any answer is used, another oid, or none, is `StoreFailure.moved`.
    /// The version asked ahead answers it for the first: a single `book` sends nothing
    /// more (0.35 ms of its 17 on PostgreSQL, in alternating runs).
    func askSchemaIdentity() throws {
        transactionUnderWay = nil
        guard versionAsked == nil else { return }
        identityAsked = try start(PostgresSchema.identityQuery, [.text(location.schema)])
    }

    /// Checks what was asked ahead and is still to come. A version that is not this
    /// flashsale's leaves the statements sent after it to fail or do nothing (their
    /// transaction is rolled back), and the caller runs its transaction again after the
    /// schema's check, as after a conflict (`Store.retryingConflicts`). A schema that is
    /// not the one first found ends the command.
    func settleAskedAhead(sent: [EventLoopFuture<Void>] = [], started: [EventLoopFuture<PostgresQueryResult>] = []) throws {
        func awaitTheRest() {
            for statement in sent { _ = try? answer(statement) }
            for statement in started { _ = try? answer(statement) }
        }
        if let asked = versionAsked {
            versionAsked = nil
            let version: Int64?
            var encoding: String?
            do {
                let row = try answer(asked).rows.first?.makeRandomAccess()
                let (stored, identity) = (try row?[0].decode(Int64.self), try row?[1].decode(Int64?.self))
                encoding = try row?[2].decode(String.self)
                if schemaIdentity == nil { schemaIdentity = identity ?? nil }
                version = stored
            } catch {
                // A lock held on the version's table past the busy timeout is the answer: the
                // check would wait as long again (found by probing: 75 after twice the timeout).
                let failure = PostgresError.from(error, server: location.server)
                if let failure = failure as? PostgresError, failure.failure == .busy, !failure.isTransient {
                    identityAsked = nil
                    awaitTheRest()
                    throw failure
                }
                version = nil
            }
            if let encoding {
                do {
                    try PostgresSchema.requireEncoding(encoding, of: location)
                } catch {
                    identityAsked = nil
                    awaitTheRest()
                    throw error
                }
            }
            if version != PostgresSchema.currentVersion {
                identityAsked = nil
                awaitTheRest()
                schemaNeedsCheck = true
                throw PostgresError(failure: .busy, isTransient: true,
                                    "schema \(location.schema) was not of this flashsale's version when asked; checked again, retry")
            }
        }
        guard let asked = identityAsked else { return }
        identityAsked = nil
        // Unanswered (a lost connection), it says nothing: the statements' own failures will.
        guard let identityAnswer = try? answer(asked) else { return }
        let row = identityAnswer.rows.first?.makeRandomAccess()
        let identity = (try? row?[0].decode(Int64?.self)) ?? nil
        if let backend = try? row?[1].decode(Int32.self), let started = try? row?[2].decode(Int64.self) {
            transactionUnderWay = PostgresError.UnansweredTransaction(id: nil, backend: backend, started: started)
        }
        guard let known = schemaIdentity else {
            // None yet (no schema by the name): the first there is becomes the one.
            schemaIdentity = identity
            return
        }
        guard identity != known else { return }
        awaitTheRest()
        throw StoreFailure.moved(detail: "schema \(location.schema) of \(location) was dropped or replaced while this command ran; "
                                 + "what it did before stays in the schema that was there")
    }

    /// Sends a statement without waiting for its answer, which comes with the next
    /// statement's (`run`), and fails that one if it failed: postgres-nio queues the next
    /// statement on the connection and sends it from its event loop as soon as this one is
    /// answered, so the caller's thread is woken once for both. For a BEGIN, and for a
    /// transaction's last writes before its COMMIT (whose answer says nothing of them: a
    /// failed transaction's COMMIT answers ROLLBACK).
    func send(_ sql: String, _ values: [SQLValue] = []) throws {
        unanswered.append(try start(sql, values).map { _ in })
    }

    /// `COPY table (columns) FROM STDIN` of `rows`, sent as `send` sends a statement: its
    /// answer is checked with the next statement's. Returns once the server is taking the
    /// rows, and with them the connection, so that what is sent after comes after them.
    /// Thousands of rows into a table with indexes: the server took 705 ms for W1's 220,000
    /// requests from COPY, against 929 ms for the same rows from arrays (`ArrayRows`).
    func sendCopy(into table: String, columns: [String], _ rows: CopyText) throws {
        // The wait below would never end on the loop that runs the copy.
        precondition(!connection.eventLoop.inEventLoop, "a COPY sent from the connection's own event loop")
        try failIfLost()
        let connection = connection, logger = logger, data = rows.buffer
        // postgres-nio's COPY is async only: run in a task on the connection's event loop,
        // whose start on the connection is waited for here (or its end, if it fails first).
        let taking = ConditionLock(value: false)
        let copied = connection.eventLoop.makePromise(of: Void.self)
        Task(executorPreference: EventLoopTaskExecutor(connection.eventLoop)) {
            do {
                try await connection.copyFrom(table: table, columns: columns, logger: logger) { writer in
                    taking.lock()
                    taking.unlock(withValue: true)
                    try await writer.write(data)
                }
                copied.succeed(())
            } catch {
                copied.fail(error)
            }
        }
        copied.futureResult.whenComplete { _ in
            taking.lock()
            taking.unlock(withValue: true)
        }
        if let answerLimit {
            guard taking.lock(whenValue: true, timeoutSeconds: Double(answerLimit.nanoseconds) / 1e9) else { throw giveUp() }
        } else {
            taking.lock(whenValue: true)
        }
        taking.unlock()
        unanswered.append(copied.futureResult)
    }

    /// Waits for the answers of the statements sent (`send`), and fails if one failed: a
    /// caller that sends statement after statement bounds what it has in flight.
    func awaitSent() throws {
        _ = try answers([])
    }

    /// The rows of each of `statements`, run one after another with one wait: each is sent
    /// before the one before it is answered (as `send`), so the server runs the next as soon
    /// as it has answered the last, and a statement sees what the ones before it did (a row
    /// lock taken), from a snapshot taken after them.
    func rowsOfEach(_ statements: [(sql: String, values: [SQLValue])]) throws -> [[Row]] {
        try answers(statements).map { Row.all(of: $0.rows) }
    }

    /// A query asked (`ask`): its answer, and the check of it among the statements sent.
    struct Asked {
        fileprivate let answer: EventLoopFuture<PostgresQueryResult>
        fileprivate let checked: EventLoopFuture<Void>
    }

    /// Sends a query as `send` sends a statement, but keeps its rows for the caller
    /// (`rows(answering:)`), so that more can be sent after it, to run while the caller
    /// works on them: a run's writes sent after the next run's reads are stored while the
    /// next run is decided. A wait before the rows are asked for checks its answer in turn.
    func ask(_ sql: String, _ values: [SQLValue]) throws -> Asked {
        let answer = try start(sql, values)
        let checked = answer.map { _ in }
        unanswered.append(checked)
        return Asked(answer: answer, checked: checked)
    }

    /// The rows `asked` answered, once it and what was sent before it are answered (and
    /// checked, unless a wait since checked them); what was sent after it is checked with
    /// the next wait.
    func rows(answering asked: Asked) throws -> [Row] {
        let through = unanswered.firstIndex { $0 === asked.checked }.map { $0 + 1 } ?? 0
        let earlier = Array(unanswered[..<through])
        unanswered.removeFirst(through)
        return try Row.all(of: wait(for: [asked.answer], after: earlier)[0].rows)
    }

    /// The transaction's id and server process, the last two columns of the first row
    /// `asked` answered, if it was answered (with the connection lost, every query still
    /// unanswered fails at once), else the server process alone, if known. For a
    /// transaction's last statement, after its COMMIT failed.
    func transaction(ifAnswered asked: Asked) -> PostgresError.UnansweredTransaction? {
        guard let row = (try? answer(asked.answer))?.rows.first?.makeRandomAccess(), row.count >= 2,
              let id = try? row[row.count - 2].decode(String.self),
              let backend = try? row[row.count - 1].decode(Int32.self)
        else { return transactionUnderWay }
        return PostgresError.UnansweredTransaction(id: id, backend: backend, started: transactionUnderWay?.started)
    }

    /// Whether the server answered `asked` with an error of its own (a statement refused,
    /// or the session ended under it by `pg_terminate_backend` or a shutdown): the
    /// transaction it was part of then never reached the COMMIT sent after it.
    func refused(_ asked: Asked) -> Bool {
        do {
            _ = try answer(asked.answer)
            return false
        } catch {
            return (error as? PSQLError)?.serverInfo?[.sqlState] != nil
        }
    }

    private func run(_ sql: String, _ values: [SQLValue]) throws -> PostgresQueryResult {
        try answers([(sql, values)])[0]
    }

    private func answers(_ statements: [(sql: String, values: [SQLValue])]) throws -> [PostgresQueryResult] {
        let started = try statements.map { try start($0.sql, $0.values) }
        let earlier = unanswered
        unanswered.removeAll()
        return try wait(for: started, after: earlier)
    }

    private func wait(for started: [EventLoopFuture<PostgresQueryResult>],
                      after earlier: [EventLoopFuture<Void>]) throws -> [PostgresQueryResult] {
        try settleAskedAhead(sent: earlier, started: started)
        do {
            for statement in earlier { _ = try answer(statement) }
            return try started.map { try answer($0) }
        } catch {
            let failure = silence ?? PostgresError.from(error, server: location.server)
            // A connection lost, or to a server that takes no writes (an old primary after a
            // failover): either way the next transaction connects anew, to whatever the host
            // names by then.
            switch (failure as? PostgresError)?.failure {
            case .connectionLost?, .unreachable?: isLost = true
            default: break
            }
            throw failure
        }
    }

    private func start(_ sql: String, _ values: [SQLValue]) throws -> EventLoopFuture<PostgresQueryResult> {
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .int(let int): binds.append(int)
            case .text(let text): binds.append(text)
            case .bool(let bool): binds.append(bool)
            case .texts(let texts): binds.append(TextArray(elements: texts))
            case .ints(let ints): binds.append(BigintArray(elements: ints))
            case .bools(let bools): binds.append(BooleanArray(elements: bools))
            }
        }
        try failIfLost()
        return connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
    }

    /// The answer `future` brings, waited for while the server sends something at least
    /// every `answerLimit`; past that without a byte, the connection is closed as lost.
    private func answer<Value: Sendable>(_ future: EventLoopFuture<Value>) throws -> Value {
        guard let limit = answerLimit else { return try future.wait() }
        let waitingSince = NIODeadline.now()
        while true {
            let quietSince = max(waitingSince, activity.lastHeard)
            let left = quietSince + limit - .now()
            guard left > .zero else { throw giveUp() }
            if let value = try future.wait(atMost: Double(left.nanoseconds) / 1e9) { return value }
        }
    }

    /// Closes a connection whose server has sent nothing for `answerLimit`: what waits on
    /// it fails at once, with this, and the next transaction connects anew.
    private func giveUp() -> PostgresError {
        isLost = true
        connection.close().whenComplete { _ in }
        let tenths = (answerLimit?.nanoseconds ?? 0) / 100_000_000
        let failure = PostgresError.lostConnection(
            to: location.server, "it sent nothing for \(tenths / 10)\(tenths % 10 == 0 ? "" : ".\(tenths % 10)") s, "
                + "\(Self.answerGrace.milliseconds / 1000) s past its statement timeout")
        silence = failure
        return failure
    }

    /// A statement sent on a connection already lost (a ROLLBACK after the server went
    /// away) may never be answered: it fails here instead.
    private func failIfLost() throws {
        guard !isLost, !connection.isClosed else {
            unanswered.removeAll()
            throw silence ?? PostgresError.lostConnection(to: location.server, "the connection had closed")
        }
    }

    /// Calls `handler` on the loop for each notification on `channel` (LISTEN).
    func listen(on channel: String, _ handler: @escaping @Sendable () -> Void) -> PostgresListenContext {
        connection.addListener(channel: channel) { _, _ in handler() }
    }
}

/// `name` as an SQL identifier, quoted: a schema may be any name.
func quotedIdentifier(_ name: String) -> String {
    "\"" + name.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
}

extension PostgresLocation {
    /// Where the server is, for messages: `host:port` or the socket's path, no password;
    /// shortened, as any value a message echoes: a socket's path has at most 107 bytes, and
    /// a host's name 253, where a URL may hold 100 KB.
    var server: String { Quoted(endpoint.description, keeping: 120).description }

    /// The user and the database, for messages: shortened past PostgreSQL's 63 bytes, which
    /// is all of a name the server keeps.
    var login: String { "user \(Quoted(user, keeping: 63)), database \(Quoted(database, keeping: 63))" }

    /// The schema and its database, for messages.
    var place: String { "schema \(schema) of database \(Quoted(database, keeping: 63)) at \(server)" }

    /// The channel a commit notifies its schema's followers on: `flashsale.SCHEMA`, or, when
    /// that is longer than a channel may be (63 bytes, as any identifier; a schema name may
    /// be 63 itself), the name's first 36 bytes and a hash of all of it. Two long names that
    /// share a channel only wake each other's followers, who then find nothing new.
    var changeChannel: String {
        let channel = "flashsale." + schema
        guard channel.utf8.count > 63 else { return channel }
        // FNV-1a: short, stable across processes and versions (Hasher is neither).
        let hash = schema.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        let digits = String(hash, radix: 16)
        // Schema names are ASCII (`checkedSchema`): 36 characters are 36 bytes.
        return "flashsale." + schema.prefix(36) + "." + String(repeating: "0", count: 16 - digits.count) + digits
    }
}
