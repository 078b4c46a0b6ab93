/// Rows sent to one statement as arrays, a parameter per column, and turned back into rows
/// by `unnest … WITH ORDINALITY`: one round trip and one parse for thousands of rows, where
/// a multi-row VALUES list costs a parse of every row and stops at 65,535 parameters. An
/// array sent from here has no NULL elements, so an optional column goes as two: its values
/// (a placeholder where absent) and whether each is there. A single row (a single `book`'s
/// hold, its event) goes as one parameter a column instead, NULL where absent: a statement
/// a new connection's server must plan from scratch, and each `unnest`, with its order and
/// its optional columns' CASEs, was planned and run for one row.
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
        add(name, "text", column, array: SQLValue.texts, one: SQLValue.text)
    }

    mutating func int(_ name: String, _ column: [Int64]) {
        add(name, "int8", column, array: SQLValue.ints, one: SQLValue.int)
    }

    mutating func optionalText(_ name: String, _ column: [String?]) {
        addOptional(name, "text", column, placeholder: "", array: SQLValue.texts, one: SQLValue.text)
    }

    mutating func optionalInt(_ name: String, _ column: [Int64?]) {
        addOptional(name, "int8", column, placeholder: 0, array: SQLValue.ints, one: SQLValue.int)
    }

    /// `SELECT` of the columns in the order they were added, each named as added (then
    /// `extra`, expressions of the leading parameters and of `given.ord`, the row's number
    /// from 1), the rows in the arrays' order.
    func select(_ extra: String...) -> String {
        let selected = (columns + extra).joined(separator: ", ")
        if count == 1 { return "SELECT \(selected) FROM (VALUES (1::bigint)) AS given (ord)" }
        return "SELECT \(selected) FROM unnest(\(arrays.joined(separator: ", ")))"
            + " WITH ORDINALITY AS given (\(names.joined(separator: ", ")), ord) ORDER BY ord"
    }

    private mutating func add<Value>(_ name: String, _ type: String, _ column: [Value],
                                     array: ([Value]) -> SQLValue, one: (Value) -> SQLValue) {
        count = column.count
        named(name, count == 1 ? bind(one(column[0]), type) : add(name, type, array(column)))
    }

    /// An optional column: for a single row, one parameter (NULL where absent); else its
    /// values (`placeholder` where absent) and whether each is there.
    private mutating func addOptional<Value>(_ name: String, _ type: String, _ column: [Value?], placeholder: Value,
                                             array: ([Value]) -> SQLValue, one: (Value?) -> SQLValue) {
        count = column.count
        if count == 1 { return named(name, bind(one(column[0]), type)) }
        let value = add(name, type, array(column.map { $0 ?? placeholder }))
        let present = add("has_" + name, "bool", .bools(column.map { $0 != nil }))
        named(name, "CASE WHEN \(present) THEN \(value) END")
    }

    /// Each column keeps its name, for a query that reads the rows as a table.
    private mutating func named(_ name: String, _ expression: String) {
        columns.append("\(expression) AS \(name)")
    }

    /// The column of `given` that holds the array, named after it.
    private mutating func add(_ name: String, _ type: String, _ value: SQLValue) -> String {
        values.append(value)
        arrays.append("$\(values.count)::\(type)[]")
        names.append(name)
        return "given." + name
    }

    /// A single row's value, as a parameter of its own.
    private mutating func bind(_ value: SQLValue, _ type: String) -> String {
        values.append(value)
        return "$\(values.count)::\(type)"
    }
}
