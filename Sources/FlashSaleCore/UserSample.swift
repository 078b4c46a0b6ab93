/// Which users a group of attempts came from, kept as the 65 smallest 64-bit hashes of their
/// names (a bottom-k sketch). A counter cannot keep its users' names (a crowd seen once
/// each would be a row per attempt), but it can keep these: two samples add up by keeping
/// the smallest of both, in SQL as in memory, so `suspects` counts the users behind an
/// address from its declined attempts too, which leave no other row. Up to 64 users the
/// count is exact; past that it is estimated from how small the 65th hash is, as a count
/// of at least 65.
public struct UserSample: Equatable, Sendable {
    /// The users counted exactly; one hash more is kept, which says whether there are more.
    public static let exactUpTo = 64
    public static let kept = exactUpTo + 1

    /// The one hash while there is one: a crowd's address has one user, and an array of
    /// one for each would cost a stream an allocation an address.
    private var lone: Int64?
    /// Sorted, distinct, at most `kept`: the hashes once there are two or more.
    private var sorted: [Int64] = []

    public init() {}

    public var isEmpty: Bool { lone == nil && sorted.isEmpty }

    /// The hashes, smallest first.
    var hashes: [Int64] { lone.map { [$0] } ?? sorted }

    /// Users, counted or (past `exactUpTo`) estimated, and whether it is an estimate.
    public var count: (users: Int, isEstimate: Bool) {
        guard sorted.count == Self.kept, let largest = sorted.last else { return (lone == nil ? sorted.count : 1, false) }
        // The k-th smallest of n uniform hashes is near k/n of their range; (k - 1) over it
        // is the unbiased estimate. At most a billion: a stored sample that is no sample
        // (hashes crowded at the bottom) must not overflow.
        let fraction = (Double(UInt64(bitPattern: largest) ^ 1 << 63) + 1) / 0x1p64
        return (Int(min(1e9, max(Double(Self.kept), (Double(Self.kept - 1) / fraction).rounded()))), true)
    }

    public mutating func insert(_ user: String) {
        insert(hash: Self.hash(of: user))
    }

    mutating func insert(hash: Int64) {
        if sorted.isEmpty {
            guard let lone, lone != hash else {
                self.lone = hash
                return
            }
            self.lone = nil
            sorted = lone < hash ? [lone, hash] : [hash, lone]
            return
        }
        // Once full, most hashes are past the largest kept: a crowd of n users has only
        // `kept` of n below it.
        if sorted.count == Self.kept, let largest = sorted.last, hash >= largest { return }
        var low = 0, high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < hash { low = middle + 1 } else { high = middle }
        }
        guard low == sorted.count || sorted[low] != hash else { return }
        sorted.insert(hash, at: low)
        if sorted.count > Self.kept { sorted.removeLast() }
    }

    public mutating func formUnion(_ other: UserSample) {
        if let hash = other.lone { return insert(hash: hash) }
        for hash in other.sorted { insert(hash: hash) }
    }

    /// The name's UTF-8 bytes eight at a time (little-endian words, the last one padded
    /// with zeros), each folded in by SplitMix64's finalizer, which moves every bit, after
    /// the length: the same hash for the same name on every machine and in every process
    /// (Swift's `Hasher` is seeded anew in each), since counters written by many processes
    /// are read together. Every attempt with an address is hashed: a byte at a time
    /// (FNV-1a) cost a stream twice as much.
    static func hash(of user: String) -> Int64 {
        var user = user
        return user.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            var hash = mixed(0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count))
            var offset = 0
            while offset + 8 <= bytes.count {
                hash = mixed(hash ^ UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
                offset += 8
            }
            if offset < bytes.count {
                var last: UInt64 = 0
                withUnsafeMutableBytes(of: &last) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset...])) }
                hash = mixed(hash ^ UInt64(littleEndian: last))
            }
            return Int64(bitPattern: hash)
        }
    }

    /// SplitMix64's finalizer.
    private static func mixed(_ value: UInt64) -> UInt64 {
        var value = value
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}

/// As the `users` column of `attempt_counter` holds a sample: a JSON array of the hashes
/// (NULL for none), which the counter's upsert merges, on SQLite by `users_added` (this
/// type's `formUnion`), on PostgreSQL in SQL.
extension UserSample {
    public var json: String? {
        guard !isEmpty else { return nil }
        var text = "["
        for hash in hashes {
            if text.utf8.count > 1 { text += "," }
            text += String(hash)
        }
        return text + "]"
    }

    /// The sample of a stored array (either server's spelling: `[1,2]`, `[1, 2]`), read
    /// byte by byte: each upsert that adds users to a counter's reads one. A number that
    /// does not fit 64 bits, and what is not a number, in a column no flashsale wrote, is
    /// left out.
    public init(json: String?) {
        guard var json else { return }
        var hashes: [Int64] = []
        json.withUTF8 { bytes in
            var index = 0
            while index < bytes.count {
                let negative = bytes[index] == UInt8(ascii: "-")
                var digitsEnd = negative ? index + 1 : index
                while digitsEnd < bytes.count, isDigit(bytes[digitsEnd]) { digitsEnd += 1 }
                let digitsStart = negative ? index + 1 : index
                guard digitsEnd > digitsStart else {
                    index += 1
                    continue
                }
                if let magnitude = UInt64(ascii: bytes[digitsStart..<digitsEnd]),
                   magnitude <= (negative ? UInt64(1) << 63 : UInt64(Int64.max)) {
                    hashes.append(Int64(bitPattern: negative ? 0 &- magnitude : magnitude))
                }
                index = digitsEnd
            }
        }
        for hash in hashes { insert(hash: hash) }
    }
}
