/// Finds a result's columns for the name literals a decoder reads them with
/// (`row.int64("total")`, `StoredRow`): by the literal's text the first time it asks, then
/// by its address, a string compare (or a hash) saved on every read of every later row.
/// One per set of result columns: a SQLite prepared statement's (for all its runs), a
/// PostgreSQL answer's or page's, shared by its rows, on one thread. Not copyable: its one
/// owner frees it.
public struct ColumnFinder: ~Copyable {
    private let names: [String]
    /// One allocation, of plain words: for each column, the address of the name literal
    /// that last found it (0: none yet), then the column found last (a decoder mostly reads
    /// in the SELECT's order, so the next column it asks for is looked for first right
    /// after it). A buffer, not properties, so that a lookup pays no exclusivity check.
    private let words: UnsafeMutableBufferPointer<UInt>

    public init(names: [String]) {
        self.names = names
        words = .allocate(capacity: names.count + 1)
        words.initialize(repeating: 0)
        words[names.count] = UInt(bitPattern: -1)
    }

    deinit {
        words.deallocate()
    }

    /// The position of the column called `name`. A name the result lacks, or has twice, is
    /// a bug in the SQL or its decoder: throw rather than read another column.
    public func position(of name: StaticString) throws(MissingColumn) -> Int {
        let count = names.count
        if name.hasPointerRepresentation {
            let key = UInt(bitPattern: name.utf8Start)
            var index = Int(bitPattern: words[count])
            for _ in 0..<count {
                index = index + 1 < count ? index + 1 : 0
                if words[index] == key {
                    words[count] = UInt(bitPattern: index)
                    return index
                }
            }
        }
        return try resolve(name)
    }

    private func resolve(_ name: StaticString) throws(MissingColumn) -> Int {
        let text = name.description
        guard let found = names.firstIndex(of: text), names.lastIndex(of: text) == found else {
            throw MissingColumn(description: names.contains(text) ? "column \(text) more than once" : "no column \(text)")
        }
        if name.hasPointerRepresentation {
            words[found] = UInt(bitPattern: name.utf8Start)
        }
        words[names.count] = UInt(bitPattern: found)
        return found
    }
}

/// A decoder asked for a column its result lacks, or has twice; each store says so in an
/// error of its own.
public struct MissingColumn: Error, CustomStringConvertible {
    public let description: String
}
