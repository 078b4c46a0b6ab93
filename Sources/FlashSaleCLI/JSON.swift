import FlashSaleCore

/// A JSON value with its object keys in the order given, so output is stable for diffs
/// and tests.
package indirect enum JSON {
    case string(String)
    /// A number already spelled as JSON (`12`, `0.25`).
    case number(String)
    case bool(Bool)
    case null
    case object([(String, JSON)])
    case array([JSON])
    /// A value written out as JSON text already, by a command that wrote it as it went (a
    /// long array whose elements as values would take many times the memory of its text).
    case serialized(UTF8Text)

    package static func integer(_ value: Int64) -> JSON { .number(String(value)) }
    package static func string(_ value: String?) -> JSON { value.map { .string($0) } ?? .null }
    package static func time(_ value: Instant?) -> JSON { value.map { .string($0.description) } ?? .null }

    /// Compact JSON on one line. Written as bytes (`UTF8Text`) and made a String once:
    /// appended to a String piece by piece, a booking's object took 340 instructions a
    /// piece, most of a hold's answer (callgrind).
    package var serialized: String {
        var out = UTF8Text(capacity: 512)
        write(to: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    private func write(to out: inout UTF8Text) {
        switch self {
        case .string(let text): out.appendQuoted(text)
        case .number(let text): out.append(text)
        case .bool(let value): out.append(value ? "true" : "false")
        case .null: out.append("null")
        case .serialized(let text): out.append(text)
        case .array(let items):
            out.append(ascii: "[")
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(ascii: ",") }
                item.write(to: &out)
            }
            out.append(ascii: "]")
        case .object(let fields):
            out.append(ascii: "{")
            for (index, (key, value)) in fields.enumerated() {
                if index > 0 { out.append(ascii: ",") }
                out.appendQuoted(key)
                out.append(ascii: ":")
                value.write(to: &out)
            }
            out.append(ascii: "}")
        }
    }
}

/// UTF-8 text built piece by piece into bytes: a stream's answers, JSON values, log lines.
/// Appending to a String (its capacity and encoding checks on every piece) cost more than
/// deciding a request.
package struct UTF8Text {
    package private(set) var bytes: [UInt8] = []

    package init() {}

    /// Room for `capacity` bytes at once: a booking's object grew its buffer six times.
    package init(capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    package var isEmpty: Bool { bytes.isEmpty }

    package mutating func append(_ text: UTF8Text) {
        bytes.append(contentsOf: text.bytes)
    }

    /// One ASCII character: the punctuation of JSON, a byte each, which through
    /// `append(_: String)` cost about ten times as much, a hundred times a booking.
    package mutating func append(ascii character: Unicode.Scalar) {
        bytes.append(UInt8(ascii: character))
    }

    package mutating func append(_ text: String) {
        if text.utf8.withContiguousStorageIfAvailable({ bytes.append(contentsOf: $0) }) == nil {
            bytes.append(contentsOf: text.utf8)
        }
    }

    /// A whole number in decimal, written on the stack and copied once (`String(number)`
    /// cost several times more).
    package mutating func append(_ number: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            var rest = number.magnitude
            var start = buffer.count
            repeat {
                start -= 1
                buffer[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            if number < 0 {
                start -= 1
                buffer[start] = UInt8(ascii: "-")
            }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[start...]).assumingMemoryBound(to: UInt8.self))
        }
    }

    /// A JSON string, escaped as RFC 8259 asks (quote, backslash and control characters),
    /// and copied whole when nothing in it needs escaping, as most values do: looked for in
    /// the text's buffer, since through `String.UTF8View`'s indices, byte by byte, the look
    /// took most of a booking's rendering (callgrind).
    package mutating func appendQuoted(_ text: String) {
        let needsEscaping: (UInt8) -> Bool = { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 }
        let plain = !(text.utf8.withContiguousStorageIfAvailable { $0.contains(where: needsEscaping) }
            ?? text.utf8.contains(where: needsEscaping))
        append(ascii: "\"")
        if plain {
            append(text)
        } else {
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": append("\\\"")
                case "\\": append("\\\\")
                case "\n": append("\\n")
                case "\r": append("\\r")
                case "\t": append("\\t")
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                default: UTF8.encode(scalar) { bytes.append($0) }
                }
            }
        }
        append(ascii: "\"")
    }

    package mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
    }
}
