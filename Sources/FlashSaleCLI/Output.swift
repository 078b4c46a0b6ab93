import Glibc
import FlashSaleCore

/// Somewhere text goes: a file descriptor, or a string in tests.
protocol TextSink: AnyObject {
    func write(_ text: String)
    /// Text already in UTF-8, as a stream's answers are built.
    func write(utf8 bytes: [UInt8])
    func flush()
    /// The `errno` of a write that failed (EPIPE: the reader went away; ENOSPC), else nil.
    var writeError: Int32? { get }
    /// Whether nobody reads any more (a pipe whose reader exited), known without writing,
    /// so that a follower with nothing to print notices too.
    var readerClosed: Bool { get }
    /// Whether a person watches it (a TTY), for output only a person needs.
    var isTerminal: Bool { get }
    /// Whether the last text written ended mid-line, as a JSON array printed an element at
    /// a time does until its end.
    var endsMidLine: Bool { get }
}

/// Sinks that cannot fail (strings in tests).
extension TextSink {
    func write(utf8 bytes: [UInt8]) {
        write(String(decoding: bytes, as: UTF8.self))
    }

    var writeError: Int32? { nil }
    var readerClosed: Bool { false }
    var isTerminal: Bool { false }
}

/// Where the notes of a quiet command go: nowhere.
final class DiscardingSink: TextSink {
    var endsMidLine: Bool { false }
    func write(_ text: String) {}
    func flush() {}
}

/// A buffered writer on a file descriptor. A failed write (a closed pipe, a full disk) is
/// not thrown but kept, as stdio's error flag is: `Output.checkWritten` turns it into the
/// command's error. After one, everything is dropped, so that output that resumes (space
/// freed on the disk) cannot have a hole in the middle.
final class FileSink: TextSink {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private(set) var writeError: Int32?
    private(set) var endsMidLine = false
    /// Whether the last text was a status line (`Progress`'s: a carriage return, the line,
    /// no newline), which the next other text erases before it is written: a message after
    /// it was glued to its end on the terminal (found by probing: "… 1s leftflashsale:
    /// line 100000 skipped"). The next tick draws it again below.
    private var statusShown = false

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit { flush() }

    func write(_ text: String) {
        guard writeError == nil else { return }
        let isStatus = text.utf8.first == UInt8(ascii: "\r")
        if statusShown, !isStatus { buffer.append(contentsOf: "\r\u{1B}[K".utf8) }
        buffer.append(contentsOf: text.utf8)
        if let last = text.utf8.last {
            endsMidLine = last != UInt8(ascii: "\n")
            statusShown = isStatus && endsMidLine
        }
        if buffer.count >= 1 << 16 { flush() }
    }

    func write(utf8 bytes: [UInt8]) {
        guard writeError == nil else { return }
        if buffer.isEmpty {
            buffer = bytes
        } else {
            buffer.append(contentsOf: bytes)
        }
        if let last = bytes.last { endsMidLine = last != UInt8(ascii: "\n") }
        if buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        var offset = 0
        while writeError == nil, offset < buffer.count {
            let written = buffer[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else {
                writeError = written < 0 ? errno : EIO
                break
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }

    var isTerminal: Bool { isatty(descriptor) == 1 }

    /// A pipe or socket reports POLLERR or POLLHUP to the writer once its reader is gone.
    var readerClosed: Bool {
        var entry = pollfd(fd: descriptor, events: 0, revents: 0)
        return poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0
    }
}

/// What a command shows on success: a human text and a JSON document, one of which is
/// printed depending on `--json`.
struct Rendered {
    let text: String
    let json: JSON
}

/// The one way commands speak: stdout for data, stderr for messages, `--json` and `-q`
/// honoured in one place.
final class Output {
    let json: Bool
    let quiet: Bool
    let stdout: TextSink
    let stderr: TextSink
    /// What a command says on stderr as it goes, none of it an error: its progress, a wait
    /// for another process's lock and its end, the input lines it skips. Nowhere with -q,
    /// which prints nothing on success (found by probing: the waits and skipped lines were
    /// printed).
    let notes: TextSink
    private var readerMayLeave = false
    /// Whether a reader that goes away kills the process with SIGPIPE, as it kills other
    /// Unix tools: SIGPIPE's action was the default when the process started. Where it was
    /// ignored (systemd services) the failed write is exit 74 instead.
    private let brokenPipeKills: Bool

    init(json: Bool, quiet: Bool, stdout: TextSink, stderr: TextSink, brokenPipeKills: Bool = false) {
        self.json = json
        self.quiet = quiet
        self.stdout = stdout
        self.stderr = stderr
        notes = quiet ? DiscardingSink() : stderr
        self.brokenPipeKills = brokenPipeKills
    }

    /// For a follower (`events | head`): a reader that goes away ends it with exit 0, not a
    /// kill by SIGPIPE (141) nor exit 74; the failed write (EPIPE) says it instead.
    func endWhenReaderLeaves() {
        signal(SIGPIPE, SIG_IGN)
        readerMayLeave = true
    }

    /// Throws once a write to stdout has failed (a full disk, a closed pipe or descriptor):
    /// exit 74, since a script must not take the output for whole. A stream calls it to stop
    /// at the first failed write, `finish` after the last. What the command did stays done
    /// (`Context.lastingWork`), which the message says when there is any.
    func checkWritten(lastingWork: LastingWork? = nil) throws(FlashSaleError) {
        guard let error = stdout.writeError, !(error == EPIPE && readerMayLeave) else { return }
        dieIfThePipeWouldHaveKilled(error)
        throw .io("cannot write the output: \(String(cString: strerror(error)))\(lastingWork.map { "; \($0)" } ?? "")")
    }

    /// flashsale-serve's SwiftNIO ignores SIGPIPE, which would otherwise kill it on a
    /// socket's write: the kill a write to a reader gone away would have been, so that a
    /// pipeline sees the same end (exit 141, nothing said) on a PostgreSQL database as on a
    /// file, for an answer and for an error object alike.
    private func dieIfThePipeWouldHaveKilled(_ error: Int32) {
        guard error == EPIPE, brokenPipeKills else { return }
        signal(SIGPIPE, SIG_DFL)
        raise(SIGPIPE)
    }

    /// The last flush, checked.
    func finish(lastingWork: LastingWork? = nil) throws(FlashSaleError) {
        stdout.flush()
        try checkWritten(lastingWork: lastingWork)
    }

    func success(_ rendered: Rendered) {
        guard !quiet else { return }
        if json {
            stdout.write(rendered.json.serialized + "\n")
        } else if !rendered.text.isEmpty {
            stdout.write(rendered.text.hasSuffix("\n") ? rendered.text : rendered.text + "\n")
        }
    }

    /// Help and the version go to stdout whatever the flags: they were asked for.
    func help(_ text: String) {
        stdout.write(text)
    }

    /// The error as `--json` prints it on stdout: `{"error":{"code":...,"message":...}}`.
    static func errorObject(_ error: FlashSaleError) -> String {
        JSON.object([("error", .object([("code", .string(error.code)), ("message", .string(error.message))]))]).serialized
    }

    /// One line on stderr, or the error object on stdout with `--json`; then on stderr too
    /// if stdout cannot take it, or nobody would see the error. The line is escaped here,
    /// once for every message: a path or a value in it must not reach a terminal raw.
    /// `alreadyLogged`: stderr is the command's own log, which has said it (`LoggedFailure`).
    /// After part of a document (a read failing half-way through `bookings`) the object
    /// goes on a line of its own, the document left unclosed so that it is not taken for
    /// whole: it was glued to the last element (found by probing).
    func failure(_ error: FlashSaleError, alreadyLogged: Bool = false) {
        if json {
            stdout.write((stdout.endsMidLine ? "\n" : "") + Self.errorObject(error) + "\n")
            stdout.flush()
            guard let error = stdout.writeError else { return }
            if !readerMayLeave { dieIfThePipeWouldHaveKilled(error) }
        }
        guard !alreadyLogged else { return }
        stderr.write("flashsale: \(error.message.controlCharactersEscaped)\n")
    }
}
