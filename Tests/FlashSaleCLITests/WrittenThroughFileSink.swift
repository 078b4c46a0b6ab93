import Foundation
import Glibc
@testable import FlashSaleCLI

/// What `body` wrote through a `FileSink` on a file of its own, flushed: the sink that
/// writes a descriptor, which keeps its own account of what it wrote last.
func writtenThroughFileSink(_ body: (FileSink) throws -> Void) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("file-sink-\(UUID().uuidString)").path
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    defer { unlink(path) }
    let sink = FileSink(descriptor: descriptor)
    try body(sink)
    sink.flush()
    close(descriptor)
    return try String(contentsOfFile: path, encoding: .utf8)
}
