import CSQLite

/// The values of the SQL functions flashsale makes (`SuspectFunctions`, `UsersAdded`): an
/// argument read as text, a text result.
enum SQLFunctionValues {
    /// An argument as text; nil for NULL.
    static func text(of value: OpaquePointer?) -> String? {
        guard let value, let bytes = sqlite3_value_text(value) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(sqlite3_value_bytes(value))), as: UTF8.self)
    }

    static func result(_ text: String, of context: OpaquePointer?) {
        var text = text
        text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) {
                sqlite3_result_text(context, $0.baseAddress, Int32($0.count), csqlite_transient())
            }
        }
    }
}
