import FlashSaleEngine
import FlashSaleStore
import NIOConcurrencyHelpers
import NIOPosix

/// Reads for the buyer and admin APIs, off the event loops (SQLite blocks) and off the
/// committer's thread (a read never waits for a group's commit): a few threads, each
/// taking a connection of its own from a small pool. In WAL mode readers and the writer
/// never wait for each other.
final class Readers: Sendable {
    private let threads: NIOThreadPool
    private let idle = NIOLockedValueBox<[Connection]>([])
    private let openStore: @Sendable () throws -> any Store

    init(threads count: Int, openStore: @escaping @Sendable () throws -> any Store) {
        threads = NIOThreadPool(numberOfThreads: count)
        threads.start()
        self.openStore = openStore
    }

    /// `body` on a reader thread, with an engine on a connection no one else is using.
    func read<T: Sendable>(_ body: @escaping @Sendable (Engine) throws -> T) async throws -> T {
        try await threads.runIfActive { [self] in
            let connection = try idle.withLockedValue { $0.popLast() } ?? Connection(engine: Engine(store: openStore()))
            defer { idle.withLockedValue { $0.append(connection) } }
            return try body(connection.engine)
        }
    }

    /// Once the threads have ended, closes the connections: closing settles a moved
    /// file's WAL (`Connection`), which must not wait for the process to exit.
    func shutdown() async throws {
        try await threads.shutdownGracefully()
        idle.withLockedValue { $0.removeAll() }
    }
}

/// An engine on a connection of its own. Unchecked: a connection is in the pool or in the
/// hands of exactly one reader thread, never both.
private struct Connection: @unchecked Sendable {
    let engine: Engine
}
