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

    package static func integer(_ value: Int64) -> JSON { .number(String(value)) }
    package static func string(_ value: String?) -> JSON { value.map { .string($0) } ?? .null }
    package static func time(_ value: Instant?) -> JSON { value.map { .string($0.description) } ?? .null }

    /// Compact JSON on one line.
    package var serialized: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .string(let text): JSON.quote(text, into: &out)
        case .number(let text): out += text
        case .bool(let value): out += value ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (index, (key, value)) in fields.enumerated() {
                if index > 0 { out += "," }
                JSON.quote(key, into: &out)
                out += ":"
                value.write(to: &out)
            }
            out += "}"
        }
    }

    /// RFC 8259 string escaping: quote, backslash and control characters.
    package static func quote(_ text: String, into out: inout String) {
        out += "\""
        // Most values need no escaping: copy them whole.
        guard text.utf8.contains(where: { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 }) else {
            out += text
            out += "\""
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
