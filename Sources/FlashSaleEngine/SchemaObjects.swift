/// The objects of a store's schema, each named by its kind (`table block`, `index
/// block_unique`, `column block.reason`, `sequence block_id_seq`): what `verify` and `init`
/// look for.
public enum SchemaObjects {
    /// What `expected` has that `found` lacks, in order; the columns of a missing table left
    /// out, which its own absence says.
    public static func missing(_ expected: Set<String>, from found: Set<String>) -> [String] {
        let lacking = expected.subtracting(found)
        return lacking.filter { object in
            guard object.hasPrefix("column "), let dot = object.firstIndex(of: ".") else { return true }
            return !lacking.contains("table " + object["column ".endIndex..<dot])
        }.sorted()
    }
}
