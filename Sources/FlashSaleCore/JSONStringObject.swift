/// A JSON object of a few string members, read exactly as `book --stream` reads a line:
/// the HTTP API's request bodies and a token's claims. Valid UTF-8 without NUL, strict
/// JSON (no trailing comma), no name twice, other members skipped but held to JSON too:
/// an object another parser would read differently is refused, not guessed at.
public enum JSONStringObject {
    /// The values of the members `names` names (at most eight), in that order: the text,
    /// or nil when null or absent. `badInput` saying why when the bytes are no such object.
    public static func strings(in bytes: UnsafeBufferPointer<UInt8>, named names: [String]) throws(FlashSaleError) -> [String?] {
        if let problem = TextCheck.problem(in: bytes) { throw .badInput(problem) }
        precondition(names.count <= 8, "a member needs a bit of its own")
        var values = [String?](repeating: nil, count: names.count)
        var cursor = JSONCursor(bytes)
        do {
            try cursor.object(names: names, members: { cursor, token in
                let decoded = cursor.decode(token)
                return names.firstIndex { $0.utf8.elementsEqual(decoded) }.map { NamedMember(position: $0, name: names[$0]) }
            }) { (cursor, member) throws(MalformedRecord) in
                values[member.position] = try cursor.optionalString(for: member)
            }
        } catch {
            throw .badInput(error.reason)
        }
        return values
    }

    /// Whether the bytes are such an object, whatever its members: `badInput` saying why not.
    public static func check(_ bytes: UnsafeBufferPointer<UInt8>) throws(FlashSaleError) {
        _ = try strings(in: bytes, named: [])
    }

    /// One of the names asked for, by its position among them.
    private struct NamedMember: JSONMember {
        let position: Int
        let name: String
        var bit: UInt8 { 1 << position }
    }
}
