@testable import FlashSaleServer
import CSQLite
import FlashSaleCore
import FlashSaleEngine
@testable import FlashSaleStore
import HTTPTypes
import HummingbirdCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// The event feed in process, on a database the command line filled: a stream's body
/// written into memory, as the server would send it, at a moment the test chooses.
@Suite struct EventFeedTests {
    /// What ends a stream before its history is sent.
    enum StreamEnd: CaseIterable, Sendable {
        case shutdown, clientLeft
    }

    /// A stream resuming far back sends its history a page (1,000 log events) at a time.
    /// Once shutdown has begun it ends after the page under way: SIGTERM's 10 s are not
    /// spent sending the rest of a long history (a million events took 12 s), which the
    /// client gets by resuming from the last event it has. Once its client has left, too
    /// (found by probing: the log was read to its end for nobody, and for a user with no
    /// events in it nothing was written whose failure would have stopped it).
    @Test(arguments: StreamEnd.allCases)
    func aResumedStreamEndsAfterThePageUnderWay(when end: StreamEnd) async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 1)
        try served.burstOfEvents(for: "bot", count: 2_500)
        let history = try served.expectedEvents(of: "bot", after: 0)
        #expect(history.count == 2_500)

        let (feed, readers) = try startedFeed(on: served.database)
        let connection = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
        let response = try await feed.stream(for: UserID(trusted: "bot"), lastEventID: "0", endingAfter: nil, on: connection.futureResult.eventLoop,
                                            connectionClosed: connection.futureResult)
        switch end {
        case .shutdown: feed.stop()
        case .clientLeft:
            // Completed from here, the promise's callbacks run on its loop: the feed's, made
            // with the stream, have run once this one's has.
            connection.succeed(())
            try await connection.futureResult.get()
        }
        let body = CollectedBody()
        try await response.body.write(body.writer)
        switch end {
        case .shutdown: connection.succeed(())
        case .clientLeft: feed.stop()
        }
        try await readers.shutdown()

        let sent = StreamingAnswer.events(in: [(body.text, ContinuousClock.now)]).map(\.event)
        // The log's first page is the sale's creation and the bot's first 999 events.
        #expect(sent.count == 999, "the stream sent \(sent.count) of the \(history.count) events it missed")
        #expect(sent == Array(history.prefix(sent.count)), "what it sent is where the history starts, without a gap")
        #expect(body.finished)
    }

    /// A database restored in place from an older backup (through SQLite, as
    /// `sqlite3 live.db ".restore old.db"` does) has a log that ends before the events the
    /// feed handed out; handing out only events past them would skip the new ones numbered
    /// up to there. Every stream ends, whether or not the restored log was written to
    /// before the feed looked (here the backup is, before it is restored); a client
    /// resuming from the last event it got, now past the log's end, is refused (400),
    /// saying where the log now ends.
    @Test(arguments: [0, 3])
    func theStreamsEndWhenTheLogGoesBack(booksAfterTheBackup: Int) async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        let older = served.directory + "/older.db"
        try served.succeed(["backup", older])
        try served.succeed(["book", "s1", "alice"])
        let backup = try ServedDatabase(url: older)
        for buyer in 0..<booksAfterTheBackup { try backup.succeed(["book", "s1", "buyer\(buyer)"]) }
        let held = try #require(served.expectedEvents(of: "alice", after: 0).last)

        let (feed, readers) = try startedFeed(on: served.database)
        let connection = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
        let alice = UserID(trusted: "alice")
        let response = try await feed.stream(for: alice, lastEventID: "0", endingAfter: nil, on: connection.futureResult.eventLoop,
                                            connectionClosed: connection.futureResult)
        let body = CollectedBody()
        let writing = Task { try await response.body.write(body.writer) }
        #expect(await eventually(within: .seconds(10)) { body.text.contains("id: \(held.id)\n") }, "\(body.text)")

        let live = try Connection(path: served.database, busyTimeout: .seconds(5))
        let source = try Connection(path: older, busyTimeout: .seconds(5))
        let restore = try #require(sqlite3_backup_init(live.handle, "main", source.handle, "main"))
        #expect(sqlite3_backup_step(restore, -1) == SQLITE_DONE)
        #expect(sqlite3_backup_finish(restore) == SQLITE_OK)
        #expect(await eventually(within: .seconds(10)) { body.finished }, "the stream went on after the log went back")

        if booksAfterTheBackup == 0 {
            try await expectResumingIsRefused(feed, alice, after: held.id, connection)
        }
        feed.stop()
        connection.succeed(())
        _ = try? await writing.value
        try await readers.shutdown()
    }

    /// Resuming after `id`, past the log's end (1), is refused: GET, and HEAD, which says
    /// what GET would, so that a client that asks first is not told its id is fine.
    private func expectResumingIsRefused(_ feed: EventFeed, _ user: UserID, after id: String,
                                         _ connection: EventLoopPromise<Void>) async throws {
        let pastTheEnd: @Sendable (any Error) -> Bool = { error in
            guard let failure = error as? HTTPFailure else { return false }
            return failure.status == .badRequest && failure.message == "Last-Event-ID \(id) is past the last event of the log (1)"
        }
        await #expect(performing: {
            _ = try await feed.stream(for: user, lastEventID: id, endingAfter: nil, on: connection.futureResult.eventLoop,
                                       connectionClosed: connection.futureResult)
        }, throws: pastTheEnd)
        await #expect(performing: { _ = try await feed.head(lastEventID: id) }, throws: pastTheEnd)
    }

    /// A feed following `database`, with its readers (to shut down when done).
    private func startedFeed(on database: String) throws -> (EventFeed, Readers) {
        let open: @Sendable () throws -> any Store = { try SQLiteStore(path: database, busyTimeout: .seconds(5)) }
        let readers = Readers(threads: 1, openStore: open)
        let feed = EventFeed(readers: readers, sales: nil)
        try feed.start(store: open())
        return (feed, readers)
    }
}

/// What a response's body wrote, and whether it finished.
private final class CollectedBody: Sendable {
    private let state = NIOLockedValueBox((text: "", finished: false))

    var text: String { state.withLockedValue { $0.text } }
    var finished: Bool { state.withLockedValue { $0.finished } }

    var writer: Writer { Writer(body: self) }

    struct Writer: ResponseBodyWriter {
        let body: CollectedBody

        mutating func write(_ buffer: ByteBuffer) async throws {
            body.state.withLockedValue { $0.text += String(buffer: buffer) }
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
            body.state.withLockedValue { $0.finished = true }
        }
    }
}
