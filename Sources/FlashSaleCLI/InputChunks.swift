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
    private let isRegularFile: Bool
    /// Bytes handed out so far. Atomic: `submit --file` reads on a second thread while the
    /// progress display asks from the first.
    let bytesRead = Atomic<Int64>(0)
    /// Called before a read that would block: `book --stream` commits and prints there, so a
    /// producer that waits for answers is never kept waiting on a batch still open.
    var beforeWaiting: (() throws -> Void)?

    /// `-` is `standardInput` (the process's is descriptor 0, -1 when it was closed, as by
    /// `<&-`); anything else a file to open.
    convenience init(path: String, standardInput: Int32) throws(FlashSaleError) {
        if path == "-" {
            guard standardInput >= 0 else { throw .usage("cannot read standard input: it is closed") }
            try self.init(descriptor: standardInput, name: "standard input", owned: false)
        } else if path.isEmpty {
            // Found by probing: "cannot read : No such file or directory".
            throw .usage("cannot read an empty path: give a file, or - for standard input")
        } else {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw .usage("cannot read \(Quoted(path)): \(String(cString: strerror(errno)))")
            }
            try self.init(descriptor: descriptor, name: "\(Quoted(path))", owned: true)
        }
    }

    private init(descriptor: Int32, name: String, owned: Bool) throws(FlashSaleError) {
        self.descriptor = descriptor
        self.name = name
        ownsDescriptor = owned
        // A directory opens, and only its first read fails: it is the caller naming the wrong
        // thing, like a missing file (exit 2), not an I/O error of the input (74).
        var status = stat()
        let known = fstat(descriptor, &status) == 0
        if known, status.st_mode & S_IFMT == S_IFDIR {
            if owned { close(descriptor) }
            throw .usage("cannot read \(name): \(String(cString: strerror(EISDIR)))")
        }
        isRegularFile = known && status.st_mode & S_IFMT == S_IFREG
        size = isRegularFile && status.st_size > 0 ? Int64(status.st_size) : nil
    }

    /// This input read to its end first, unless it is a regular file: a pipe, FIFO or
    /// terminal is copied into an unlinked file in `directory` (mode 0600; as much room as
    /// the input), and that is read instead. `submit --file` holds its write transaction while it reads, which keeps
    /// every other writer waiting: a producer writing slowly into `submit --file -` made
    /// each `book` meanwhile exit 75 and stopped `process` (found by probing).
    ///
    /// A line longer than `longestLine` ends the copy (`.stopsTheCopy`): the reader refuses
    /// it there, as it did before the copy, where an endless one (`/dev/zero`) was copied
    /// until the directory was full (found by probing). Or it is copied cut short
    /// (`.isCut`), still too long, for a reader that skips it and goes on: copied whole, an
    /// endless one filled the directory all the same. A line's bytes are its record's and
    /// up to four more, which the reader does not count: the CR of a CRLF, and a byte order
    /// mark before the first line. (Cut at the record's own limit, a line of exactly that
    /// many bytes whose LF had not come yet was taken for the input's last, whole, and the
    /// lines after it were dropped: found by review.)
    func whole(spoolingIn directory: String, longestLine: Int, pastIt longLine: LongLine) throws -> InputChunks {
        guard !isRegularFile else { return self }
        var template = Array((directory + "/flashsale-input-XXXXXX").utf8CString)
        let spool = mkstemp(&template)
        guard spool >= 0 else { throw FlashSaleError.io(spoolFailure(directory, errno)) }
        // Unnamed at once: buyers' data must not stay behind, whatever ends the process.
        guard unlink(template) == 0 else {
            let failure = spoolFailure(directory, errno)
            close(spool)
            throw FlashSaleError.io(failure)
        }
        _ = fcntl(spool, F_SETFD, FD_CLOEXEC)
        do {
            let copy = FileSink(descriptor: spool)
            // Past this many bytes, a line is too long whatever it holds.
            let tooLong = longestLine + 5
            var lineSoFar = 0
            var cutter = LineCutter(keep: tooLong)
            while copy.writeError == nil, let bytes = try next() {
                if longLine == .isCut {
                    copy.write(utf8: cutter.cut(bytes))
                    continue
                }
                copy.write(utf8: bytes)
                if let lastNewline = bytes.lastIndex(of: UInt8(ascii: "\n")) {
                    lineSoFar = bytes.count - lastNewline - 1
                } else {
                    lineSoFar += bytes.count
                }
                if lineSoFar >= tooLong { break }
            }
            copy.write(utf8: cutter.finish())
            copy.flush()
            if let code = copy.writeError { throw FlashSaleError.io(spoolFailure(directory, code)) }
            guard lseek(spool, 0, SEEK_SET) == 0 else { throw FlashSaleError.io(spoolFailure(directory, errno)) }
        } catch {
            close(spool)
            throw error
        }
        return try InputChunks(descriptor: spool, name: name, owned: true)
    }

    /// What a line past `longestLine` does to the copy.
    enum LongLine {
        case stopsTheCopy
        case isCut
    }

    /// Cuts every line of an input past `keep` bytes there, keeping its LF, and a `"` at
    /// the cut when the bytes dropped held an odd number of them: a CSV line cut inside a
    /// quoted field would leave it open, and the lines after it would be read into it as
    /// the same record (found by review).
    private struct LineCutter {
        let keep: Int
        /// The bytes of the line under way so far, kept or not.
        private var soFar = 0
        /// Whether the bytes dropped from it hold an odd number of quotes.
        private var oddQuotesDropped = false
        private static let newline = UInt8(ascii: "\n")
        private static let quote = UInt8(ascii: "\"")

        init(keep: Int) {
            self.keep = keep
        }

        /// The chunk as kept: itself when no line is cut, as nearly every chunk is.
        mutating func cut(_ bytes: [UInt8]) -> [UInt8] {
            var kept: [UInt8]?
            var keptThrough = 0
            var start = 0
            while start < bytes.count {
                let newline = bytes[start...].firstIndex(of: Self.newline)
                let end = newline ?? bytes.count
                if soFar + (end - start) > keep {
                    let cutAt = start + max(0, keep - soFar)
                    kept = (kept ?? []) + bytes[keptThrough..<cutAt]
                    for byte in bytes[cutAt..<end] where byte == Self.quote { oddQuotesDropped.toggle() }
                    keptThrough = end
                }
                if let newline {
                    // A line with bytes dropped went through the cut above, in this chunk too.
                    if oddQuotesDropped { kept?.append(Self.quote) }
                    oddQuotesDropped = false
                    soFar = 0
                    start = newline + 1
                } else {
                    soFar += end - start
                    start = end
                }
            }
            guard let kept else { return bytes }
            return kept + bytes[keptThrough...]
        }

        /// What the input's last line, without an LF, still needs.
        func finish() -> [UInt8] {
            oddQuotesDropped ? [Self.quote] : []
        }
    }

    private func spoolFailure(_ directory: String, _ code: Int32) -> String {
        "cannot keep \(name) in \(Quoted(directory, keeping: 4096)) while it is read: \(String(cString: strerror(code)))"
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
