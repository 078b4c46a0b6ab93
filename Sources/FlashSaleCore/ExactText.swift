/// Text compared and hashed byte for byte, as the contract compares users, keys and agents:
/// `String`'s own == would take two spellings of `é` for one user, or one key, where every
/// store compares bytes (a dictionary keyed by String made two users one on PostgreSQL's
/// read-ahead, past the per-user limit: found by probing).
public struct ExactText: Hashable, Sendable {
    public let text: String

    public init(_ text: String) {
        self.text = text
    }

    /// Eight bytes at a time: the generic `elementsEqual` of two UTF-8 views took 24
    /// instructions a byte, and every attempt counted compares its agent text.
    public static func == (a: ExactText, b: ExactText) -> Bool {
        let (a, b) = (a.text.utf8, b.text.utf8)
        guard a.count == b.count else { return false }
        let equal = a.withContiguousStorageIfAvailable { a in
            b.withContiguousStorageIfAvailable { b in bytesEqual(UnsafeRawBufferPointer(a), UnsafeRawBufferPointer(b)) }
        }
        return (equal ?? nil) ?? a.elementsEqual(b)
    }

    private static func bytesEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset + 8 <= a.count {
            guard a.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                == b.loadUnaligned(fromByteOffset: offset, as: UInt64.self) else { return false }
            offset += 8
        }
        while offset < a.count {
            guard a[offset] == b[offset] else { return false }
            offset += 1
        }
        return true
    }

    /// A text of up to 16 bytes (most users) as two words: `combine(bytes:)` costs three
    /// times that for so few.
    public func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { bytes in
            guard bytes.count <= 16 else {
                hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
                return
            }
            var words: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(bytes)) }
            hasher.combine(words.0)
            hasher.combine(words.1)
            hasher.combine(UInt8(bytes.count))
        }
    }
}
