import NIOPosix

/// A thread for one long loop (the committer, the event follower, the log writer): a
/// thread pool of one, so that a blocking loop never holds an event loop or a reader.
enum DedicatedThread {
    /// Runs `body` on a new thread; the thread ends when `body` returns.
    static func start(_ body: @escaping @Sendable () -> Void) {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        pool.submit { _ in
            body()
            // A pool shut down from its own thread would wait for itself.
            Task { try? await pool.shutdownGracefully() }
        }
    }
}
