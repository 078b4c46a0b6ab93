import FlashSaleCore
import FlashSaleEngine

extension PostgresStore: CopyTarget {
    /// One transaction: a copy killed or cut off half way leaves the tables empty. The
    /// tables are locked against writers first (readers see them empty until the commit),
    /// so that two copies, or a copy and a command, never both find the schema empty.
    /// Rows go in multi-row INSERTs of a few thousand values: a million bookings take the
    /// memory of one statement. Checked while the tables are still locked: after the
    /// commit, a command waiting for the lock wrote before the check read, and the copy
    /// was said not to match its source (found by probing).
    public func takeCopy(_ rows: ((CopiedTable, [CopiedValue]) throws -> Void) throws -> Void,
                         check: (_ held: [CopiedTable: Int64], _ copy: any StoreReading) throws -> Void,
                         committing: () -> Void) throws {
        try session.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        do {
            try session.withoutStatementTimeout {
                try session.execute("LOCK TABLE \(CopiedTable.allCases.map(\.target).joined(separator: ", ")) IN EXCLUSIVE MODE")
                for table in CopiedTable.allCases
                    where try session.count("SELECT count(*) FROM (SELECT 1 FROM \(table.target) LIMIT 1) AS one") > 0 {
                    throw CopyRefusal.targetHoldsData(detail: "\(session.location.place) already holds \(table.rawValue)")
                }
                var batch = InsertBatch(session: session)
                try rows { table, values in try batch.add(values, to: table) }
                try batch.flush()
                try continueCounters()
                var held: [CopiedTable: Int64] = [:]
                for table in CopiedTable.allCases {
                    held[table] = try session.count("SELECT count(*) FROM \(table.target)")
                }
                try check(held, transaction)
                try session.execute("SELECT pg_notify($1, '')", [.text(session.location.changeChannel)])
                committing()
                try session.execute("COMMIT")
                committedChanges = true
            }
        } catch {
            _ = try? session.execute("ROLLBACK")
            throw error
        }
    }

    /// New requests, events, bookings and blocks are numbered after the copied ones.
    private func continueCounters() throws {
        try session.execute("UPDATE event_counter SET last = (SELECT coalesce(max(seq), 0) FROM event)")
        try session.execute("UPDATE request_counter SET last = (SELECT coalesce(max(id), 0) FROM request)")
        for (table, column) in [("booking", "made"), ("block", "id")] {
            try session.execute("""
                SELECT setval(pg_get_serial_sequence('\(table)', '\(column)'), max(\(column)))
                FROM \(table) HAVING count(*) > 0
                """)
        }
    }
}

/// The rows of one table waiting to be sent as one INSERT.
private struct InsertBatch {
    let session: PostgresSession
    private var table: CopiedTable?
    private var values: [SQLValue] = []
    private var rows = 0

    init(session: PostgresSession) {
        self.session = session
    }

    /// Well under PostgreSQL's 65,535 parameters of a statement, and large enough that a
    /// round trip per statement costs little beside the rows.
    private static let valuesPerStatement = 16_384

    mutating func add(_ row: [CopiedValue], to table: CopiedTable) throws {
        if table != self.table {
            try flush()
            self.table = table
        }
        let columns = table.columns
        guard row.count == columns.count else {
            throw PostgresError(failure: nil, "a copied \(table.rowName) has \(row.count) values, not \(columns.count)")
        }
        for (index, value) in row.enumerated() {
            switch value {
            case .integer(let integer): values.append(.int(integer))
            case .text(let text):
                // Found by probing: "invalid byte sequence for encoding", exit 1.
                if let text, text.utf8.contains(0) {
                    throw table.refusal(of: "a NUL character", key: Self.key(of: row, in: table), column: columns[index].name,
                                        fix: "remove it from")
                }
                values.append(.text(text))
            }
        }
        rows += 1
        if values.count + columns.count > Self.valuesPerStatement { try flush() }
    }

    /// The values of the row's naming columns (a sale's id, a booking's, a request's number),
    /// shown as `Quoted` shows a value (a NUL as `\u{0}`).
    private static func key(of row: [CopiedValue], in table: CopiedTable) -> String {
        table.namingColumns.map { column in
            switch row[column] {
            case .integer(let integer?): String(integer)
            case .text(let text?): text
            default: "?"
            }
        }.joined(separator: " ")
    }

    mutating func flush() throws {
        guard let table, rows > 0 else { return }
        let columns = table.columns
        var tuples: [String] = []
        tuples.reserveCapacity(rows)
        for row in 0..<rows {
            let placeholders = columns.indices.map { index in
                let parameter = "$\(row * columns.count + index + 1)"
                // A flag travels as 0 or 1; the schema's column is a boolean.
                return columns[index].kind == .flag ? "(\(parameter)::bigint <> 0)" : parameter
            }
            tuples.append("(" + placeholders.joined(separator: ", ") + ")")
        }
        try session.execute(
            """
            INSERT INTO \(table.target) (\(columns.map(\.name).joined(separator: ", ")))\(table.overridesIdentity ? " OVERRIDING SYSTEM VALUE" : "")
            VALUES \(tuples.joined(separator: ", "))
            """, values)
        values.removeAll(keepingCapacity: true)
        rows = 0
    }
}

extension CopiedTable {
    /// The table of this store that holds the copied table's rows, under the same column names.
    fileprivate var target: String {
        switch self {
        case .sales: "sale"
        case .bookings: "booking"
        case .requests: "request"
        case .events: "event"
        case .blocks: "block"
        case .attempts: "attempt_counter"
        }
    }

    /// Whether an id the store otherwise gives itself (an identity column) is copied.
    fileprivate var overridesIdentity: Bool { self == .bookings || self == .blocks }
}
