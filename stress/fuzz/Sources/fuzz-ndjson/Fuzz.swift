import FuzzSupport
import FlashSaleCore

/// `submit --file` / `book --stream` reading NDJSON: the reader's properties (see
/// `checkRead`), and every record it accepts survives being written as JSON and read again.
@main enum FuzzNDJSON {
    static func main() { runFuzzer(fuzzNDJSON) }
}

func fuzzNDJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let input = ReaderInput(UnsafeBufferPointer(start: data, count: size)) else { return 0 }
    let (records, format) = checkRead(input, format: .ndjson)
    if format == .ndjson {
        checkRoundTrip(records, encoded: records.flatMap(jsonLine), format: .ndjson)
    }
    return 0
}

/// One NDJSON line holding the record's values, absent ones as null.
private func jsonLine(_ record: RequestRecord) -> [UInt8] {
    let members = [("user", record.user), ("ip", record.ip), ("user_agent", record.userAgent), ("key", record.key)]
    let body = members.map { name, value in "\"\(name)\":" + (value.map(jsonString) ?? "null") }.joined(separator: ",")
    return Array("{\(body)}\n".utf8)
}

private func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where scalar.value < 0x20: out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
