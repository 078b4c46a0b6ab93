import FuzzSupport
import FlashSaleCore

/// `submit --file` / `book --stream` reading CSV: the reader's properties (see `checkRead`),
/// and every record it accepts survives being written as RFC 4180 CSV and read again.
@main enum FuzzCSV {
    static func main() { runFuzzer(fuzzCSV) }
}

func fuzzCSV(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let input = ReaderInput(UnsafeBufferPointer(start: data, count: size)) else { return 0 }
    let (records, format) = checkRead(input, format: .csv)
    if format == .csv {
        let rows = records.map { record in
            [record.user, record.ip, record.userAgent, record.key].map { csvField($0 ?? "") }.joined(separator: ",") + "\n"
        }
        checkRoundTrip(records, encoded: Array(("user,ip,user_agent,key\n" + rows.joined()).utf8), format: .csv)
    }
    return 0
}

/// Always quoted, quotes doubled: the form that holds any value, line breaks included.
/// Byte by byte: a quote followed by a combining mark is one Character, but still a quote.
private func csvField(_ value: String) -> String {
    var bytes: [UInt8] = [0x22]
    for byte in value.utf8 {
        bytes.append(byte)
        if byte == 0x22 { bytes.append(0x22) }
    }
    bytes.append(0x22)
    return String(decoding: bytes, as: UTF8.self)
}
