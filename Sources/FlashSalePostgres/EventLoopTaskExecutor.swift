import NIOCore

/// Runs a task's jobs on a NIO event loop (SE-0417's task executor preference), for
/// postgres-nio's async-only calls made by a thread that waits for them: on Swift's global
/// pool such a task could wait forever behind the very threads that wait for it, when those
/// are the pool's own (a test's, or any async caller's).
final class EventLoopTaskExecutor: TaskExecutor {
    private let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}
