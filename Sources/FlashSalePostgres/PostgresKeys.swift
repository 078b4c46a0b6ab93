/// How a booking or a request is found by its key in a sale (schema version 9): by the key
/// alone, in a subquery the planner keeps whole (`OFFSET 0`), whose rows of other sales are
/// dropped after. Said as `sale = $1 AND key = $2`, the lookup could be read through any
/// index that begins with the sale, and was: with statistics from before the sale, the
/// planner put the sale's rows at one and read them all, once per key, through the primary
/// key (sale, id). By the key alone, only the index that begins with the key
/// (`booking_by_key`, `request_by_key`) serves it.
enum PostgresKeys {
    /// `columns` of `table`'s row with key `key` in sale `sale` (SQL expressions), if any.
    static func lookup(_ columns: String, in table: String, key: String, sale: String) -> String {
        "SELECT \(columns) FROM (SELECT * FROM \(table) WHERE key = \(key) OFFSET 0) AS keyed WHERE keyed.sale = \(sale)"
    }
}
