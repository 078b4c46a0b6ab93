/// Where a CSV record ends: at an LF outside quotes. The state survives between chunks, so a
/// record split anywhere, even between the two quotes of `""`, is framed as if it came whole.
struct CSVFraming {
    private enum State {
        case fieldStart, unquoted, quoted, quoteInQuoted
    }

    private var state = State.fieldStart
    /// LFs inside quotes so far: the record's extra physical lines.
    private(set) var newlines = 0

    /// The index of the LF that ends the record, scanning from `start`; nil if it has not come yet.
    /// A quote opens a quoted field only at the start of a field, as in RFC 4180; elsewhere it is
    /// an ordinary byte here and `CSVRecord` refuses it, so a stray quote cannot join lines.
    mutating func end(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start
        var lineEnd = -1
        while index < bytes.count {
            if state == .fieldStart || state == .unquoted {
                // Outside quotes only a quote changes how the line ends, and most lines have
                // none: look for the LF and the next quote eight bytes at a time.
                if lineEnd < index { lineEnd = InputByte.firstIndex(of: InputByte.lf, in: bytes, from: index) ?? bytes.count }
                let before = UnsafeBufferPointer(rebasing: bytes[..<lineEnd])
                guard let quote = InputByte.firstIndex(of: InputByte.quote, in: before, from: index) else {
                    if lineEnd < bytes.count { return lineEnd }
                    if lineEnd > index { state = bytes[lineEnd - 1] == InputByte.comma ? .fieldStart : .unquoted }
                    return nil
                }
                if quote > index { state = bytes[quote - 1] == InputByte.comma ? .fieldStart : .unquoted }
                index = quote
            } else if state == .quoted {
                // Inside quotes only a quote matters, and LFs are counted: most quoted fields
                // are user agents with a comma, a hundred bytes read eight at a time.
                let closing = InputByte.firstIndex(of: InputByte.quote, in: bytes, from: index) ?? bytes.count
                newlines += InputByte.count(of: InputByte.lf, in: UnsafeBufferPointer(rebasing: bytes[..<closing]), from: index)
                index = closing
                if index == bytes.count { return nil }
            }
            let byte = bytes[index]
            switch state {
            case .fieldStart:
                if byte == InputByte.quote {
                    state = .quoted
                } else if byte == InputByte.lf {
                    return index
                } else if byte != InputByte.comma {
                    state = .unquoted
                }
            case .unquoted:
                if byte == InputByte.comma {
                    state = .fieldStart
                } else if byte == InputByte.lf {
                    return index
                }
            case .quoted:
                state = .quoteInQuoted  // the quote found above
            case .quoteInQuoted:
                // Either the closing quote or the first of `""`: the next byte tells.
                if byte == InputByte.quote {
                    state = .quoted
                } else if byte == InputByte.comma {
                    state = .fieldStart
                } else if byte == InputByte.lf {
                    return index
                } else {
                    state = .unquoted
                }
            }
            index += 1
        }
        return nil
    }
}

/// What a column of the CSV header is to this reader.
enum CSVColumn: Equatable {
    case field(RequestField)
    /// Named, but not a request field: its values are ignored.
    case ignored
    /// A header cell without a name, as spreadsheets export after the last named column. Its
    /// values must be empty: one that is not has nowhere to go, and is not dropped unseen.
    case unnamed
}

/// One CSV record (RFC 4180), framed by `CSVFraming`, without its line ending; already known
/// to be valid UTF-8 without NUL.
enum CSVRecord {
    /// The header's columns, in order.
    static func header(_ record: UnsafeBufferPointer<UInt8>) throws(MalformedRecord) -> [CSVColumn] {
        var scanner = CSVFieldScanner(record)
        var columns: [CSVColumn] = []
        var names: Set<[UInt8]> = []
        while let field = try scanner.next() {
            var name = field.bytes(in: record)
            // Spaces around names are forgiven (`user, ip`): dropping a column over them would be silent.
            while let last = name.last, last == InputByte.space || last == InputByte.tab { name.removeLast() }
            let leading = name.prefix { $0 == InputByte.space || $0 == InputByte.tab }.count
            name.removeFirst(leading)
            if name.isEmpty {
                columns.append(.unnamed)
                continue
            }
            // Lines ended by CR alone (classic Mac files) are one line: its names, ignored as
            // unknown, left no user column to say so, or took the first records for columns
            // (found by probing: a file queued nothing and exited 0).
            guard !name.contains(InputByte.cr) else {
                throw MalformedRecord("the header has a carriage return inside a name: lines end with LF or CRLF, not CR alone")
            }
            guard names.insert(name).inserted else {
                throw MalformedRecord("the header names \"\(Quoted(String(decoding: name, as: UTF8.self)))\" twice")
            }
            if let field = name.withUnsafeBufferPointer({ RequestField(name: $0) }) {
                columns.append(.field(field))
                continue
            }
            if let meant = FieldNameSpelling.meant(by: name, among: RequestField.allCases.lazy.map(\.name)) {
                throw MalformedRecord("the header names \"\(Quoted(String(decoding: name, as: UTF8.self)))\": "
                                      + "column names are lowercase, with _ (\(meant))")
            }
            columns.append(.ignored)
        }
        guard columns.contains(.field(.user)) else { throw MalformedRecord("the header has no user column") }
        return columns
    }

    static func fields(_ record: UnsafeBufferPointer<UInt8>, columns: [CSVColumn]) throws(MalformedRecord) -> RequestFields {
        var scanner = CSVFieldScanner(record)
        var fields = RequestFields()
        var column = 0
        while let field = try scanner.next() {
            guard column < columns.count else {
                throw MalformedRecord("more fields than the header's \(columns.count)")
            }
            switch columns[column] {
            case .field(let known):
                fields[known] = field.text(in: record)
            case .ignored:
                break
            case .unnamed where !field.range.isEmpty:
                throw MalformedRecord("a value in column \(column + 1), which the header leaves without a name")
            case .unnamed:
                break
            }
            column += 1
        }
        return fields
    }
}

/// A field's bytes within its record; `escapedQuotes` when `""` pairs need folding to one quote.
struct CSVField {
    let range: Range<Int>
    let escapedQuotes: Bool

    func bytes(in record: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        guard escapedQuotes else { return Array(record[range]) }
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var index = range.lowerBound
        while index < range.upperBound {
            out.append(record[index])
            // Validated by the scanner: a quote here is always the first of a pair.
            index += record[index] == InputByte.quote ? 2 : 1
        }
        return out
    }

    func text(in record: UnsafeBufferPointer<UInt8>) -> String {
        guard escapedQuotes else { return String(decoding: UnsafeBufferPointer(rebasing: record[range]), as: UTF8.self) }
        return String(decoding: bytes(in: record), as: UTF8.self)
    }
}

/// The fields of one record in order. Byte positions in messages are 1-based within the record.
struct CSVFieldScanner {
    private let record: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var finished = false

    init(_ record: UnsafeBufferPointer<UInt8>) {
        self.record = record
    }

    mutating func next() throws(MalformedRecord) -> CSVField? {
        guard !finished else { return nil }
        let field = index < record.count && record[index] == InputByte.quote ? try quoted() : try unquoted()
        if index == record.count {
            finished = true
        } else {
            index += 1  // the comma
        }
        return field
    }

    private mutating func unquoted() throws(MalformedRecord) -> CSVField {
        let start = index
        let end = InputByte.firstIndex(of: InputByte.comma, in: record, from: index) ?? record.count
        if let quote = InputByte.firstIndex(of: InputByte.quote, in: UnsafeBufferPointer(rebasing: record[..<end]), from: index) {
            throw MalformedRecord("quote inside an unquoted field at byte \(quote + 1)")
        }
        index = end
        return CSVField(range: start..<index, escapedQuotes: false)
    }

    private mutating func quoted() throws(MalformedRecord) -> CSVField {
        let opening = index
        index += 1
        let start = index
        var escapedQuotes = false
        while true {
            guard let quote = InputByte.firstIndex(of: InputByte.quote, in: record, from: index) else {
                throw MalformedRecord("quoted field opened at byte \(opening + 1) is never closed")
            }
            index = quote
            guard index + 1 < record.count, record[index + 1] == InputByte.quote else { break }
            escapedQuotes = true
            index += 2
        }
        let field = CSVField(range: start..<index, escapedQuotes: escapedQuotes)
        index += 1
        guard index == record.count || record[index] == InputByte.comma else {
            throw MalformedRecord("text after a closing quote at byte \(index + 1)")
        }
        return field
    }
}
