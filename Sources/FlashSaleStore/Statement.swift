import CSQLite
import FlashSaleEngine
import Glibc

/// A value bound to a statement parameter.
public enum SQLValue: Sendable, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    case integer(Int64)
    case text(String)
    case null

    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(stringLiteral value: String) { self = .text(value) }

    public static func text(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }
    public static func integer(_ value: Int64?) -> SQLValue { value.map { .integer($0) } ?? .null }
}

/// A prepared statement. It owns its `sqlite3_stmt` and finalizes it in `deinit`.
/// Parameters are bound by name (`:sale`), texts with their exact byte length, never
/// spliced into SQL.
public final class Statement {
    let handle: OpaquePointer
    let sql: String
    private let connection: OpaquePointer
    /// Parameter names by index (index 0 unused), looked up once at prepare time.
    private let parameterNames: [String]
    /// The result's columns, found by the decoders' name literals.
    private let columns: ColumnFinder

    /// Prepared as SQLite's long-lived kind (`SQLITE_PREPARE_PERSISTENT`): every statement
    /// is cached for its connection's life (`Connection.statement`).
    init(connection: OpaquePointer, sql: String) throws(SQLiteError) {
        var handle: OpaquePointer?
        let code = sqlite3_prepare_v3(connection, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &handle, nil)
        guard code == SQLITE_OK, let handle else {
            throw SQLiteError(code: code, connection: connection, sql: sql)
        }
        self.handle = handle
        self.connection = connection
        self.sql = sql
        parameterNames = [""] + (1...max(1, sqlite3_bind_parameter_count(handle))).map { index in
            sqlite3_bind_parameter_name(handle, index).map { String(cString: $0) } ?? ""
        }
        // NULL only when SQLite is out of memory: then no decoder finds that column.
        columns = ColumnFinder(names: (0..<sqlite3_column_count(handle)).map { index in
            sqlite3_column_name(handle, index).map { String(cString: $0) } ?? ""
        })
    }

    deinit {
        sqlite3_finalize(handle)
    }

    /// The position of the result column called `name` (`ColumnFinder`).
    func column(_ name: StaticString) throws(SQLiteError) -> Int32 {
        do {
            return Int32(try columns.position(of: name))
        } catch {
            throw SQLiteError(code: SQLITE_RANGE, connection: nil, sql: sql + " (\(error))")
        }
    }

    /// The position of a named parameter, for statements bound by position in a loop.
    func index(of name: String) throws(SQLiteError) -> Int32 {
        guard let index = parameterNames.firstIndex(of: name), index > 0 else {
            throw SQLiteError(code: SQLITE_RANGE, connection: nil, sql: sql + " (no parameter \(name))")
        }
        return Int32(index)
    }

    /// Resets the statement and binds every named parameter it has; a name the SQL lacks is a bug.
    func bind(_ parameters: KeyValuePairs<String, SQLValue>) throws(SQLiteError) {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        for (name, value) in parameters {
            try bind(value, at: index(of: name))
        }
    }

    func bind(_ value: SQLValue, at index: Int32) throws(SQLiteError) {
        let code: Int32
        switch value {
        case .integer(let number):
            code = sqlite3_bind_int64(handle, index, number)
        case .null:
            code = sqlite3_bind_null(handle, index)
        case .text(let text):
            var text = text
            code = text.withUTF8 { bytes in
                // An empty buffer may have no address; SQLite would take that for NULL.
                sqlite3_bind_text(handle, index, bytes.baseAddress ?? ("" as StaticString).utf8Start, Int32(bytes.count), csqlite_transient())
            }
        }
        guard code == SQLITE_OK else { throw SQLiteError(code: code, connection: connection, sql: sql) }
    }

    /// Binds `count` bytes at `start` without copying them (SQLITE_STATIC): they must stay
    /// valid until the statement is reset and its bindings cleared.
    func bindInPlace(_ start: UnsafePointer<UInt8>, count: Int, at index: Int32) throws(SQLiteError) {
        let code = start.withMemoryRebound(to: CChar.self, capacity: count) {
            sqlite3_bind_text(handle, index, $0, Int32(count), nil)
        }
        guard code == SQLITE_OK else { throw SQLiteError(code: code, connection: connection, sql: sql) }
    }

    /// Advances to the next row; false when there is none.
    func step() throws(SQLiteError) -> Bool {
        errno = 0 // so that a failure's errno is its own (see SQLiteError.systemErrno)
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            let error = SQLiteError(code: code, connection: connection, sql: sql)
            sqlite3_reset(handle)
            throw error
        }
    }

    func reset() {
        sqlite3_reset(handle)
    }
}


/// The current row of a statement, valid while the statement stands on it. A decoder reads
/// it by column name (`row.int64("total")`), so that a SELECT whose columns move, or lack
/// one, cannot be misread; by position only a query of one value, or of columns unknown
/// beforehand (a dump).
public struct Row: StoredRow {
    /// Strong: one reference count per row, where `unowned(unsafe)` cost one per column read.
    let statement: Statement
    private var handle: OpaquePointer { statement.handle }

    public func int64(_ name: StaticString) throws(SQLiteError) -> Int64 {
        int64(try statement.column(name))
    }

    public func optionalInt64(_ name: StaticString) throws(SQLiteError) -> Int64? {
        optionalInt64(try statement.column(name))
    }

    public func text(_ name: StaticString) throws(SQLiteError) -> String {
        text(try statement.column(name))
    }

    public func optionalText(_ name: StaticString) throws(SQLiteError) -> String? {
        optionalText(try statement.column(name))
    }

    /// SQLite has no boolean: the schema stores 0 and 1.
    public func bool(_ name: StaticString) throws(SQLiteError) -> Bool {
        int64(try statement.column(name)) != 0
    }

    public func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(handle, column)
    }

    public func optionalInt64(_ column: Int32) -> Int64? {
        sqlite3_column_type(handle, column) == SQLITE_NULL ? nil : sqlite3_column_int64(handle, column)
    }

    public func text(_ column: Int32) -> String {
        optionalText(column) ?? ""
    }

    public func optionalText(_ column: Int32) -> String? {
        guard let bytes = sqlite3_column_text(handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    /// Whether the column's text is UTF-8 (or NULL): SQLite keeps whatever bytes it was
    /// given, which `optionalText` repairs, each bad one as U+FFFD.
    public func isUTF8(_ column: Int32) -> Bool {
        guard let bytes = sqlite3_column_text(handle, column) else { return true }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(validating: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self) != nil
    }
}

/// A statement run once per row of a bulk operation: prepared once, its parameters
/// resolved to positions once, then bound by position, so a million executions pay for
/// no statement lookup, no name lookup and no parameter dictionary. Its texts are bound in
/// place (SQLITE_STATIC), each from its own string's storage, instead of SQLite copying
/// each into a block of its own.
struct RowStatement {
    private let statement: Statement
    private let positions: [Int32]

    /// `parameters` names the statement's parameters in the order `run` receives values.
    init(_ connection: Connection, _ sql: String, parameters: [String]) throws {
        let statement = try connection.statement(sql)
        self.statement = statement
        positions = try parameters.map { name throws(SQLiteError) in try statement.index(of: name) }
    }

    /// Runs the statement with `values` in the order of `parameters`; returns the first
    /// column of its first row as an integer, if it returns a row.
    @discardableResult
    func run(_ values: SQLValue...) throws -> Int64? {
        try run(values)
    }

    @discardableResult
    func run(_ values: [SQLValue]) throws -> Int64? {
        statement.reset()
        return try bind(values, from: 0)
    }

    /// Binds `values` from `index` on, each text inside a closure that holds its storage,
    /// and steps inside the innermost: the bound texts are valid for the whole step, and
    /// nothing is copied or allocated. Reset and unbound there too, before any returns.
    private func bind(_ values: [SQLValue], from index: Int) throws -> Int64? {
        guard index < values.count else {
            defer {
                statement.reset()
                sqlite3_clear_bindings(statement.handle)
            }
            guard try statement.step() else { return nil }
            return Row(statement: statement).optionalInt64(0)
        }
        guard case .text(var text) = values[index] else {
            try statement.bind(values[index], at: positions[index])
            return try bind(values, from: index + 1)
        }
        return try text.withUTF8 { utf8 in
            // An empty text needs an address all the same: SQLite takes none for NULL.
            try statement.bindInPlace(utf8.baseAddress ?? ("" as StaticString).utf8Start, count: utf8.count,
                                      at: positions[index])
            return try bind(values, from: index + 1)
        }
    }
}
