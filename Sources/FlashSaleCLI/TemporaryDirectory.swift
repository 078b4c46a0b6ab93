import FlashSaleCore

/// Where scratch files go: `$TMPDIR`, as sort(1) and the C library take it, else /tmp.
/// Read as every variable is (`Environment`): one that is not UTF-8 is a usage error
/// (found by probing: such a directory was said not to exist, exit 74).
enum TemporaryDirectory {
    static func path(in environment: Environment) throws(FlashSaleError) -> String {
        try environment.value("TMPDIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }
}
