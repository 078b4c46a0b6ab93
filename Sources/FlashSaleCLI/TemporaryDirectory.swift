import Glibc

/// Where scratch files go: `$TMPDIR`, as sort(1) and the C library take it, else /tmp.
/// Read from the process's environment, not the command's: it is a path, bytes that need
/// not be UTF-8.
enum TemporaryDirectory {
    static var path: String {
        getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }
}
