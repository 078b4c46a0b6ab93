/// The two input formats of `submit --file` and `book --stream`.
public enum RequestFormat: String, Sendable {
    case ndjson, csv
}

/// One request read from the input, its values already checked by `TextField`.
public struct RequestRecord: Equatable, Sendable {
    /// The physical line (1-based) where the record starts; a quoted CSV field may carry
    /// a record over several lines.
    public let line: Int
    public let user: String
    public let ip: String?
    public let userAgent: String?
    public let key: String?

    public init(line: Int, user: String, ip: String? = nil, userAgent: String? = nil, key: String? = nil) {
        self.line = line
        self.user = user
        self.ip = ip
        self.userAgent = userAgent
        self.key = key
    }
}

public enum ReadOutcome: Equatable, Sendable {
    case record(RequestRecord)
    /// `line` is where the record starts; `reason` is one short phrase for the operator.
    case malformed(line: Int, reason: String)
    /// A CSV header that cannot be read. Each record after it is `malformed` too (nothing
    /// can be read without columns), so a reader that skips malformed records must stop
    /// here instead, or it would skip the whole input and call that done.
    case malformedHeader(line: Int, reason: String)
}

/// Reads requests from a byte stream, one outcome per non-blank record, in input order.
///
/// Memory stays bounded whatever the input: the reader holds at most one record
/// (`maximumRecordBytes`) plus one chunk. A longer record is reported as malformed and the
/// rest of it is dropped as it arrives, never buffered: to the end of its line, or for CSV
/// to the end of its record, so that lines inside a quoted field never become records
/// (an unterminated quote takes the rest of the input, as in any CSV reader).
///
/// `nextChunk` is called only when no complete record is buffered, so a caller that commits
/// when its input pauses has been handed every record that input contained. It returns nil at
/// the end of input; an empty array is allowed and means "nothing yet": the reader asks again.
/// After it has returned nil once it is not called again. Errors it throws propagate from
/// `next()`, and a later `next()` asks it again.
///
/// Choices the contract leaves open:
/// - A UTF-8 byte order mark at the very start is dropped (spreadsheets write one).
/// - Lines end at LF; a CR before it belongs to the line ending. A lone CR is an ordinary byte.
/// - CSV header names are matched exactly after trimming spaces and tabs around them;
///   unknown columns are ignored. A header cell without a name is a column whose values
///   must be empty. A header without a `user` column, or naming a column
///   twice, is reported malformed, and so is every record after it (with the header's line
///   in the reason): `book --stream` promises an answer for every line, and nothing can be
///   read without columns.
/// - Duplicate keys are refused in the top-level NDJSON object only; nested values of
///   unknown keys are checked for valid JSON and otherwise ignored.
public struct RequestReader {
    /// The longest record accepted, in bytes, not counting its line ending.
    public static let maximumRecordBytes = 65_536

    /// The format in use: as given, or sniffed from the first non-blank byte.
    public private(set) var format: RequestFormat?

    private let nextChunk: () throws -> [UInt8]?
    private var buffer: [UInt8] = []
    /// The first byte not yet consumed; the bytes before it are dropped at the next append.
    private var head = 0
    /// How far the current record has been searched for its end, so bytes are looked at once.
    private var scanned = 0
    /// The physical line of the byte at `head`.
    private var line = 1
    private var inputEnded = false
    private var startChecked = false
    /// Dropping the rest of a record too long to read (`overflow`), up to its end.
    private var discardingLongRecord = false
    private var framing = CSVFraming()
    private var header = CSVHeader.pending

    private enum CSVHeader {
        case pending
        case columns([CSVColumn])
        case unusable(line: Int)
    }

    /// What the bytes already buffered yield.
    private enum Step {
        case outcome(ReadOutcome)
        case needInput
    }

    public init(format: RequestFormat?, nextChunk: @escaping () throws -> [UInt8]?) {
        self.format = format
        self.nextChunk = nextChunk
    }

    /// The next record or malformed record, in input order; nil at the end of input.
    public mutating func next() throws -> ReadOutcome? {
        while true {
            if case .outcome(let outcome) = step() { return outcome }
            if inputEnded { return nil }
            guard let chunk = try nextChunk() else {
                inputEnded = true
                continue
            }
            append(chunk)
        }
    }

    private mutating func append(_ chunk: [UInt8]) {
        guard !chunk.isEmpty else { return }
        // Only a partial record (under the limit) is left after the head, so this moves little.
        if head == buffer.count {
            buffer.removeAll(keepingCapacity: true)
        } else if head > 0 {
            buffer.removeSubrange(0..<head)
        }
        scanned -= head
        head = 0
        buffer.append(contentsOf: chunk)
    }

    private mutating func step() -> Step {
        while true {
            if !startChecked, !skipByteOrderMark() { return .needInput }
            if discardingLongRecord {
                guard let end = format == .csv ? recordEnd(.csv) : firstNewline(from: head) else {
                    head = buffer.count
                    scanned = head
                    return .needInput
                }
                line += framing.newlines + 1
                head = end + 1
                scanned = head
                framing = CSVFraming()
                discardingLongRecord = false
            }
            guard let format = self.format ?? sniffFormat() else {
                if buffer.count - head > RequestReader.maximumRecordBytes + 1 { return .outcome(overflow()) }
                return .needInput
            }

            let end: Int
            if let newline = recordEnd(format) {
                end = newline
            } else if buffer.count - head > RequestReader.maximumRecordBytes + 1 {
                // One byte of slack: the last one may be the CR of a CRLF whose LF is yet to come.
                return .outcome(overflow())
            } else if inputEnded, head < buffer.count {
                end = buffer.count
            } else {
                return .needInput
            }

            var contentEnd = end
            if contentEnd > head, buffer[contentEnd - 1] == InputByte.cr { contentEnd -= 1 }
            let start = head
            let startLine = line
            line += framing.newlines + (end < buffer.count ? 1 : 0)
            head = min(end + 1, buffer.count)
            scanned = head
            framing = CSVFraming()
            // Skipped whole, as `overflow` skips one still arriving.
            guard contentEnd - start <= RequestReader.maximumRecordBytes else {
                return .outcome(tooLong(at: startLine))
            }
            if let outcome = read(start..<contentEnd, line: startLine, format: format) {
                return .outcome(outcome)
            }
        }
    }

    /// The outcome of one framed record (without its line ending, within the size limit), or
    /// nil for a blank line or a CSV header.
    private mutating func read(_ range: Range<Int>, line: Int, format: RequestFormat) -> ReadOutcome? {
        let end = range.upperBound
        let columns: [CSVColumn]
        switch (format, header) {
        case (.ndjson, _):
            columns = []
        case (.csv, .columns(let known)):
            columns = known
        case (.csv, .unusable(let headerLine)):
            let blank = buffer.withUnsafeBufferPointer { RequestReader.isBlank(UnsafeBufferPointer(rebasing: $0[range.lowerBound..<end])) }
            return blank ? nil : .malformed(line: line, reason: "the CSV header on line \(headerLine) is malformed")
        case (.csv, .pending):
            let result: Result<[CSVColumn], MalformedRecord>? = buffer.withUnsafeBufferPointer { all in
                let bytes = UnsafeBufferPointer(rebasing: all[range.lowerBound..<end])
                if RequestReader.isBlank(bytes) { return nil }
                if let problem = TextCheck.problem(in: bytes) { return .failure(MalformedRecord(problem)) }
                return Result { () throws(MalformedRecord) in try CSVRecord.header(bytes) }
            }
            switch result {
            case nil:
                return nil
            case .success(let known):
                header = .columns(known)
                return nil
            case .failure(let failure):
                header = .unusable(line: line)
                return .malformedHeader(line: line, reason: failure.reason)
            }
        }
        return buffer.withUnsafeBufferPointer { all -> ReadOutcome? in
            let bytes = UnsafeBufferPointer(rebasing: all[range.lowerBound..<end])
            if RequestReader.isBlank(bytes) { return nil }
            if let problem = TextCheck.problem(in: bytes) { return .malformed(line: line, reason: problem) }
            do throws(MalformedRecord) {
                let fields = format == .ndjson
                    ? try NDJSONRecord.fields(bytes)
                    : try CSVRecord.fields(bytes, columns: columns)
                return fields.outcome(line: line)
            } catch {
                return .malformed(line: line, reason: error.reason)
            }
        }
    }

    /// What the buffer has reserved: the memory bound that tests hold the reader to.
    var bufferCapacity: Int { buffer.capacity }

    static let tooLong = "line is longer than \(maximumRecordBytes) bytes"

    /// Reports the record at the head, whose end has not arrived within the limit, as too
    /// long, and drops it, the rest as it arrives (`discardingLongRecord`): the buffer has been
    /// searched for the record's end up to `scanned`, and for CSV `framing` is where that
    /// search stands (inside quotes or not), so it goes on from there. Reading resumes after
    /// the record's end, as it does after a record too long that arrived whole: how the input
    /// was chunked changes no outcome.
    private mutating func overflow() -> ReadOutcome {
        let outcome = tooLong(at: line)
        head = buffer.count
        scanned = head
        discardingLongRecord = true
        return outcome
    }

    /// A record too long at `line`: a CSV header, when the header is still to come, which
    /// leaves the columns unknown (found by probing: skipped as a line, the next line was
    /// taken for the header, and the first record after it dropped unseen).
    private mutating func tooLong(at line: Int) -> ReadOutcome {
        guard format == .csv, case .pending = header else {
            return .malformed(line: line, reason: RequestReader.tooLong)
        }
        header = .unusable(line: line)
        return .malformedHeader(line: line, reason: RequestReader.tooLong)
    }

    /// The index of the LF that ends the record at the head, if it has arrived.
    private mutating func recordEnd(_ format: RequestFormat) -> Int? {
        let from = scanned
        scanned = buffer.count
        switch format {
        case .ndjson:
            return firstNewline(from: from)
        case .csv:
            var framing = self.framing
            let end = buffer.withUnsafeBufferPointer { framing.end(in: $0, from: from) }
            self.framing = framing
            return end
        }
    }

    private func firstNewline(from start: Int) -> Int? {
        buffer.withUnsafeBufferPointer { InputByte.firstIndex(of: InputByte.lf, in: $0, from: start) }
    }

    /// Consumes leading blank lines and decides the format from the first other byte;
    /// nil while only blanks have arrived.
    private mutating func sniffFormat() -> RequestFormat? {
        var index = max(head, scanned)
        while index < buffer.count {
            switch buffer[index] {
            case InputByte.lf:
                head = index + 1
                line += 1
            case InputByte.space, InputByte.tab, InputByte.cr:
                break
            default:
                format = buffer[index] == InputByte.leftBrace ? .ndjson : .csv
                scanned = head
                return format
            }
            index += 1
        }
        scanned = index
        return nil
    }

    /// Drops a UTF-8 byte order mark at the start of input; false until enough bytes arrived to tell.
    private mutating func skipByteOrderMark() -> Bool {
        let mark: [UInt8] = [0xEF, 0xBB, 0xBF]
        for (offset, expected) in mark.enumerated() {
            guard head + offset < buffer.count else {
                startChecked = inputEnded
                return inputEnded
            }
            if buffer[head + offset] != expected {
                startChecked = true
                return true
            }
        }
        head += 3
        scanned = head
        startChecked = true
        return true
    }

    /// Blank lines hold only spaces, tabs and CRs; they count for line numbers but yield nothing.
    private static func isBlank(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.allSatisfy { $0 == InputByte.space || $0 == InputByte.tab || $0 == InputByte.cr }
    }
}
