/// Writes sent to the server as one statement, each a data-modifying `WITH` query: one
/// round trip for a commit's holds, counters, attempt counts and events together, where a
/// statement each held the sale's row lock for a round trip each. PostgreSQL runs every
/// such query once and to completion whether or not the main query reads it; they share
/// one snapshot, so none may read what another writes, which none of these does (each
/// writes rows of its own table; the sale's counters one UPDATE for all).
struct WriteBatch {
    private(set) var values: [SQLValue] = []
    private var queries: [String] = []
    /// The rows of the queries from arrays.
    private(set) var rowCount = 0

    var isEmpty: Bool { queries.isEmpty }

    /// A placeholder for `value`, numbered after those already bound.
    mutating func bind(_ value: SQLValue) -> String {
        values.append(value)
        return "$\(values.count)"
    }

    /// Rows whose arrays are numbered after the parameters already bound (see `adopt`).
    func rows() -> ArrayRows {
        ArrayRows(leading: values)
    }

    /// Adds a query, which may name `rows` (made by `rows()` since the last `add`), as `name`
    /// for a later query to read.
    mutating func add(_ sql: String, rows: ArrayRows? = nil, as name: String? = nil) {
        if let rows {
            values = rows.values
            rowCount += rows.count
        }
        queries.append("\(name ?? "write\(queries.count)") AS (\(sql))")
    }

    /// The statement, its main query `SELECT` of `result` (alone when nothing was added).
    func statement(selecting result: String) -> String {
        (queries.isEmpty ? "" : "WITH " + queries.joined(separator: ",\n") + "\n") + "SELECT " + result
    }
}
