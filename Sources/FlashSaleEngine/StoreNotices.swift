import Glibc
import Synchronization

/// What a store says while it waits where no caller can see it: deep in a change
/// watcher's look, for room on a full disk to copy a removed log into the database file
/// (found by probing: the wait said nothing until it ended, and the operator saw a server
/// that neither served nor stopped). One line on stderr (`flashsale: ...`), unless the
/// process sends them elsewhere (`serve`, to its log).
public enum StoreNotices {
    private static let handler = Mutex<(@Sendable (String) -> Void)?>(nil)

    /// Sends every later notice to `handle` rather than to stderr.
    public static func send(to handle: @escaping @Sendable (String) -> Void) {
        handler.withLock { $0 = handle }
    }

    package static func say(_ message: String) {
        if let handle = handler.withLock({ $0 }) {
            handle(message)
        } else {
            writeToStderr("flashsale: \(message)\n")
        }
    }

    /// Written with SIGPIPE held back from this thread: a notice is said while the process
    /// waits with something only it has (a removed log), and a reader of stderr gone away
    /// killed it there (found by probing: `process --follow` lost the log's commits).
    private static func writeToStderr(_ text: String) {
        var pipe = sigset_t(), previous = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipe, &previous)
        var line = text
        let written = line.withUTF8 { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        if written < 0, errno == EPIPE {
            // The write's SIGPIPE waits for this thread: taken here, or it would come as the
            // mask is restored.
            var now = timespec(tv_sec: 0, tv_nsec: 0)
            _ = sigtimedwait(&pipe, nil, &now)
        }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
    }
}
