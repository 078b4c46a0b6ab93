import NIOCore

/// Runs a task's jobs on a NIO event loop (SE-0417's task executor preference).
///
/// - postgres-nio's async-only calls, made by a thread that waits for them: on Swift's
///   global pool such a task could wait forever behind the very threads that wait for it,
///   when those are the pool's own (a test's, or any async caller's).
/// - serve's requests (`Responder`): each answered in a task on its connection's loop,
///   which reads it and writes its answer there without a hop to another thread.
package final class EventLoopTaskExecutor: TaskExecutor {
    private let loop: any EventLoop

    package init(_ loop: any EventLoop) {
        self.loop = loop
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}
