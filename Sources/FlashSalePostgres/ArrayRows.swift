/// Rows sent to one statement as arrays, a parameter per column, and turned back into rows
/// by `unnest … WITH ORDINALITY`: one round trip and one parse for thousands of rows, where
/// a multi-row VALUES list costs a parse of every row and stops at 65,535 parameters. An
/// array sent from here has no NULL elements, so an optional column goes as two: its values
/// (a placeholder where absent) and whether each is there.
struct ArrayRows {
    private(set) var values: [SQLValue]
    /// How many rows: the length of the columns.
    private(set) var count = 0
    private var arrays: [String] = []
    private var names: [String] = []
    private var columns: [String] = []

    /// `leading`: the statement's own parameters, `$1` on; the arrays take the ones after.
    init(leading: [SQLValue] = []) {
        values = leading
    }

    mutating func text(_ name: String, _ column: [String]) {
        count = column.count
        columns.append(add(name, "text", .texts(column)))
    }

    mutating func int(_ name: String, _ column: [Int64]) {
        count = column.count
        columns.append(add(name, "int8", .ints(column)))
    }

    mutating func optionalText(_ name: String, _ column: [String?]) {
        count = column.count
        let value = add(name, "text", .texts(column.map { $0 ?? "" }))
        let present = add("has_" + name, "bool", .bools(column.map { $0 != nil }))
        columns.append("CASE WHEN \(present) THEN \(value) END")
    }

    mutating func optionalInt(_ name: String, _ column: [Int64?]) {
        count = column.count
        let value = add(name, "int8", .ints(column.map { $0 ?? 0 }))
        let present = add("has_" + name, "bool", .bools(column.map { $0 != nil }))
        columns.append("CASE WHEN \(present) THEN \(value) END")
    }

    /// `SELECT` of the columns in the order they were added (then `extra`, expressions of
    /// the leading parameters), the rows in the arrays' order.
    func select(_ extra: String...) -> String {
        "SELECT \((columns + extra).joined(separator: ", ")) FROM unnest(\(arrays.joined(separator: ", ")))"
            + " WITH ORDINALITY AS given (\(names.joined(separator: ", ")), ord) ORDER BY ord"
    }

    /// The column of `given` that holds the array, named after it.
    private mutating func add(_ name: String, _ type: String, _ value: SQLValue) -> String {
        values.append(value)
        arrays.append("$\(values.count)::\(type)[]")
        names.append(name)
        return "given." + name
    }
}
