import Glibc
import FlashSaleTestSupport

/// A pipe already full, for a process's stdout: its first write waits until the test
/// reads, so that the test can act (send a signal) while the process is writing.
final class FullPipe {
    /// For the process's stdout; closed by `processStarted`.
    private(set) var writeEnd: Int32
    private let readEnd: Int32
    private var filler = 0

    init() throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw Failed("pipe: \(String(cString: strerror(errno)))") }
        (readEnd, writeEnd) = (ends[0], ends[1])
        // Filled without blocking, then made blocking again for the process, which shares
        // the open file's flags.
        let flags = fcntl(writeEnd, F_GETFL)
        _ = fcntl(writeEnd, F_SETFL, flags | O_NONBLOCK)
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 4096)
        while case let count = write(writeEnd, chunk, chunk.count), count > 0 { filler += count }
        _ = fcntl(writeEnd, F_SETFL, flags)
    }

    deinit {
        close(readEnd)
        if writeEnd >= 0 { close(writeEnd) }
    }

    /// The test's copy of the write end closed, so that `drained` meets the end once the
    /// process has closed its own.
    func processStarted() {
        close(writeEnd)
        writeEnd = -1
    }

    /// Whether process `pid` waits to write into a pipe (this one, for a process whose
    /// stdout it is and that writes nowhere else).
    static func isWriting(_ pid: pid_t) -> Bool {
        var wait = [UInt8](repeating: 0, count: 64)
        let file = open("/proc/\(pid)/wchan", O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { return false }
        defer { close(file) }
        let count = read(file, &wait, wait.count)
        return count > 0 && String(decoding: wait[..<count], as: UTF8.self).hasSuffix("pipe_write")
    }

    /// Everything written after the filler, read to the end.
    func drained() -> String {
        var all: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while case let count = read(readEnd, &buffer, buffer.count), count > 0 { all += buffer[..<count] }
        return String(decoding: all.dropFirst(filler), as: UTF8.self)
    }
}
