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
            var line = "flashsale: \(message)\n"
            line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
    }
}
