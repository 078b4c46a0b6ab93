import FlashSaleCore
import FlashSaleEngine

extension SQLiteStore: CopySource {
    /// One read transaction: in WAL mode, a snapshot that holds up no writer.
    public func copyRows(_ body: (CopiedTable, [CopiedValue]) throws -> Void) throws {
        try db.readTransaction {
            for table in CopiedTable.allCases {
                let columns = table.columns
                let (name, expressions, order) = Self.source(of: table)
                let select = columns.map { expressions[$0.name] ?? $0.name }.joined(separator: ", ")
                try db.forEachRow("SELECT \(select) FROM \(name) ORDER BY \(order)") { row in
                    try body(table, columns.indices.map { index in
                        let column = Int32(index)
                        switch columns[index].kind {
                        case .integer, .flag: return .integer(row.optionalInt64(column))
                        case .text:
                            let text = row.optionalText(column)
                            // Found by probing: copied as repaired (U+FFFD), the copy said
                            // verified, and answered otherwise (a user's bookings).
                            if let text, text.unicodeScalars.contains("\u{FFFD}"), !row.isUTF8(column) {
                                throw table.refusal(of: "bytes that are not UTF-8",
                                                    key: table.namingColumns.map { row.text(Int32($0)) }.joined(separator: " "),
                                                    column: expressions[columns[index].name] ?? columns[index].name, fix: "mend it in")
                            }
                            return .text(text)
                        }
                    })
                }
            }
        }
    }

    /// Where a copied table's rows are in this store's schema: the table, the expressions of
    /// the columns named otherwise here, and the order of its key.
    private static func source(of table: CopiedTable) -> (table: String, expressions: [String: String], order: String) {
        switch table {
        case .sales: ("sale", [:], "id")
        // A booking's rowid is the order it was made in (SQLiteTransaction+Sweep's holdOrder).
        case .bookings: ("booking", ["made": "rowid", "user_id": "user"], "rowid")
        case .requests: ("request", ["user_id": "user"], "id")
        case .events: ("event", ["user_id": "user"], "seq")
        case .blocks: ("block", [:], "id")
        case .attempts: ("attempt_counter", [:], "sale, kind, value, bucket")
        }
    }
}
