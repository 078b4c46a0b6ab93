import NIOCore
import PostgresNIO

/// The arrays of `ArrayRows`, bound through postgres-nio's own extension point for a type's
/// binary value (`PostgresNonThrowingEncodable`), each written in one pass into room made
/// for all of it. postgres-nio's `Array` encoding writes each element through three
/// ByteBuffer calls (a length placeholder, the value, the length set back) into a buffer
/// that grows as it goes: on W2's `book --stream` the arrays' encoding was about a fifth of
/// the client's CPU time, which the server waits for. The format is PostgreSQL's binary
/// array (`array_send`): dimensions, a has-nulls flag, the element type, the length and
/// lower bound of the one dimension, then each element's length and bytes. These arrays
/// never hold NULL (see `ArrayRows`).
protocol BinaryArray: PostgresNonThrowingEncodable {
    associatedtype Element
    static var elementType: PostgresDataType { get }
    var elements: [Element] { get }
    /// The bytes of `element`, without its length.
    static func byteCount(of element: Element) -> Int
    static func write(_ element: Element, into buffer: inout ByteBuffer)
}

extension BinaryArray {
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer,
                                                  context: PostgresEncodingContext<JSONEncoder>) {
        let header = 12 + (elements.isEmpty ? 0 : 8)
        buffer.reserveCapacity(minimumWritableBytes: elements.reduce(header) { $0 + 4 + Self.byteCount(of: $1) })
        buffer.writeInteger(elements.isEmpty ? 0 : 1, as: Int32.self)
        buffer.writeInteger(0, as: Int32.self)
        buffer.writeInteger(Self.elementType.rawValue)
        guard !elements.isEmpty else { return }
        buffer.writeInteger(Int32(elements.count))
        buffer.writeInteger(1, as: Int32.self)
        for element in elements {
            buffer.writeInteger(Int32(Self.byteCount(of: element)))
            Self.write(element, into: &buffer)
        }
    }
}

struct BigintArray: BinaryArray {
    static var psqlType: PostgresDataType { .int8Array }
    static var elementType: PostgresDataType { .int8 }
    let elements: [Int64]

    static func byteCount(of element: Int64) -> Int { 8 }
    static func write(_ element: Int64, into buffer: inout ByteBuffer) { buffer.writeInteger(element) }
}

struct TextArray: BinaryArray {
    static var psqlType: PostgresDataType { .textArray }
    static var elementType: PostgresDataType { .text }
    let elements: [String]

    static func byteCount(of element: String) -> Int { element.utf8.count }
    static func write(_ element: String, into buffer: inout ByteBuffer) { buffer.writeString(element) }
}

struct BooleanArray: BinaryArray {
    static var psqlType: PostgresDataType { .boolArray }
    static var elementType: PostgresDataType { .bool }
    let elements: [Bool]

    static func byteCount(of element: Bool) -> Int { 1 }
    static func write(_ element: Bool, into buffer: inout ByteBuffer) { buffer.writeInteger(element ? 1 : 0, as: UInt8.self) }
}
