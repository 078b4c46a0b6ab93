import NIOCore

/// Rows in the text format of `COPY … FROM STDIN` (PostgreSQL's manual, COPY, "Text
/// Format"): a tab between columns, a newline after each row, NULL as `\N`, and a
/// backslash, tab, newline or carriage return in a value written as a backslash escape.
/// Every backslash of a value is escaped, so no value can end the data early (`\.`) or
/// read as an escape of its own.
struct CopyText {
    private(set) var buffer: ByteBuffer
    private var atRowStart = true

    init(capacity: Int) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }

    mutating func text(_ value: String?) {
        separate()
        guard var value else {
            buffer.writeStaticString("\\N")
            return
        }
        value.withUTF8 { bytes in
            var plainFrom = 0
            for index in bytes.indices {
                let escaped: UInt8
                switch bytes[index] {
                case UInt8(ascii: "\\"): escaped = UInt8(ascii: "\\")
                case UInt8(ascii: "\t"): escaped = UInt8(ascii: "t")
                case UInt8(ascii: "\n"): escaped = UInt8(ascii: "n")
                case UInt8(ascii: "\r"): escaped = UInt8(ascii: "r")
                default: continue
                }
                buffer.writeBytes(bytes[plainFrom..<index])
                buffer.writeInteger(UInt8(ascii: "\\"))
                buffer.writeInteger(escaped)
                plainFrom = index + 1
            }
            buffer.writeBytes(bytes[plainFrom...])
        }
    }

    mutating func int(_ value: Int64?) {
        separate()
        guard let value else {
            buffer.writeStaticString("\\N")
            return
        }
        buffer.writeString(String(value))
    }

    mutating func endRow() {
        buffer.writeInteger(UInt8(ascii: "\n"))
        atRowStart = true
    }

    private mutating func separate() {
        if !atRowStart { buffer.writeInteger(UInt8(ascii: "\t")) }
        atRowStart = false
    }
}
