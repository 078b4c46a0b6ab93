import Glibc

/// Where scratch files go: `$TMPDIR`, as sort(1) and the C library take it, else /tmp.
/// Read from the process's environment, not the command's, which refuses a variable that
/// is not UTF-8: a path need not be (its bad bytes are read as U+FFFD, and such a
/// directory then fails to open, saying so).
enum TemporaryDirectory {
    static var path: String {
        getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }
}
