import FlashSaleCore
import Glibc
import Synchronization

/// Reads a file (or standard input) in 64 KiB chunks for `RequestReader`.
final class InputChunks {
    private let descriptor: Int32
    private let name: String
    private let ownsDescriptor: Bool
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    /// The size of a regular file, for a progress display's share done; nil for a pipe.
    let size: Int64?
    /// Bytes handed out so far. Atomic: `submit --file` reads on a second thread while the
    /// progress display asks from the first.
    let bytesRead = Atomic<Int64>(0)
    /// Called before a read that would block: `book --stream` commits and prints there, so a
    /// producer that waits for answers is never kept waiting on a batch still open.
    var beforeWaiting: (() throws -> Void)?

    /// `-` is `standardInput` (the process's is descriptor 0, -1 when it was closed, as by
    /// `<&-`); anything else a file to open.
    init(path: String, standardInput: Int32) throws(FlashSaleError) {
        if path == "-" {
            guard standardInput >= 0 else { throw .usage("cannot read standard input: it is closed") }
            descriptor = standardInput
            name = "standard input"
            ownsDescriptor = false
        } else {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw .usage("cannot read \(Quoted(path)): \(String(cString: strerror(errno)))")
            }
            name = "\(Quoted(path))"
            ownsDescriptor = true
        }
        // A directory opens, and only its first read fails: it is the caller naming the wrong
        // thing, like a missing file (exit 2), not an I/O error of the input (74).
        var status = stat()
        let known = fstat(descriptor, &status) == 0
        if known, status.st_mode & S_IFMT == S_IFDIR {
            throw .usage("cannot read \(name): \(String(cString: strerror(EISDIR)))")
        }
        size = known && status.st_mode & S_IFMT == S_IFREG && status.st_size > 0 ? Int64(status.st_size) : nil
    }

    deinit {
        if ownsDescriptor { close(descriptor) }
    }

    /// The next bytes, or nil at the end of the input.
    func next() throws -> [UInt8]? {
        if let beforeWaiting, !isReadable() {
            try beforeWaiting()
        }
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                bytesRead.add(Int64(count), ordering: .relaxed)
                return Array(buffer[0..<count])
            }
            if count == 0 { return nil }
            if errno == EINTR { continue }
            throw FlashSaleError.io("cannot read \(name): \(String(cString: strerror(errno)))")
        }
    }

    private func isReadable() -> Bool {
        var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&request, 1, 0) > 0
    }
}
