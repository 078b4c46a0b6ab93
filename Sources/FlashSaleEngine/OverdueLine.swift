import FlashSaleCore

/// The overdue holds of several sales as one line, the longest overdue first, each sale at
/// its own decision time (`Place`): what `sweep` takes a batch at a time, and `--limit`
/// counts along. Only keys are read, a page per sale at a time, so memory is a page per
/// sale whatever the number of holds.
struct OverdueLine {
    /// A sale with overdue holds, and the keys of its line read and not yet taken.
    struct Part {
        let sale: Sale
        /// The sale's decision time.
        let now: Instant
        fileprivate var keys: ArraySlice<HoldKey> = []
        fileprivate var lastRead: HoldKey?
        fileprivate var exhausted = false

        init(sale: Sale, now: Instant) {
            self.sale = sale
            self.now = now
        }
    }

    /// `count` holds from the front of a sale's own line.
    struct Share {
        let sale: Sale
        let now: Instant
        let count: Int64
    }

    /// Where a hold stands in the line: how long before its sale's time it expired (the
    /// longest overdue first), then the order holds were made. Within a sale, `HoldKey`'s
    /// order; across sales, not (found by probing: a paused sale's time stays ahead of the
    /// clock, and its holds, longer overdue by it, went after another's).
    private struct Place: Comparable {
        let expiredAhead: Int64
        let made: Int64

        init(_ key: HoldKey, of part: Part) {
            expiredAhead = key.expiresAt.milliseconds - part.now.milliseconds
            made = key.made
        }

        static func < (a: Place, b: Place) -> Bool {
            (a.expiredAhead, a.made) < (b.expiredAhead, b.made)
        }
    }

    static let page: Int64 = 1_024
    private(set) var parts: [Part]
    private let reading: any StoreReading

    init(parts: [Part], reading: any StoreReading) {
        self.parts = parts
        self.reading = reading
    }

    /// The next `count` holds of the line, as a share of each sale's own line (in sale id
    /// order, not line order); fewer where the line ends. A line of one sale is its own
    /// order and is not read: its share is `count`, which may be more than it holds.
    mutating func take(_ count: Int64) throws -> [Share] {
        guard parts.count > 1 else {
            return parts.map { Share(sale: $0.sale, now: $0.now, count: count) }
        }
        var taken = [Int64](repeating: 0, count: parts.count)
        var left = count
        while left > 0 {
            for index in parts.indices where parts[index].keys.isEmpty && !parts[index].exhausted {
                try readPage(of: index)
            }
            // A key not read yet comes after its sale's last read one, so every key read up
            // to the first of those last keys is ahead of everything unread.
            let bound = parts.filter { !$0.exhausted }.compactMap { part in part.keys.last.map { Place($0, of: part) } }.min()
            var ahead: [(place: Place, part: Int)] = []
            for (index, part) in parts.enumerated() {
                ahead += part.keys.lazy.map { Place($0, of: part) }.prefix { place in bound.map { place <= $0 } ?? true }
                    .map { ($0, index) }
            }
            guard !ahead.isEmpty else { break }
            ahead.sort { $0.place < $1.place }
            for (_, index) in ahead.prefix(Int(left)) {
                parts[index].keys.removeFirst()
                taken[index] += 1
            }
            left -= min(left, Int64(ahead.count))
        }
        return zip(parts, taken).filter { $0.1 > 0 }.map { Share(sale: $0.0.sale, now: $0.0.now, count: $0.1) }
    }

    private mutating func readPage(of index: Int) throws {
        var part = parts[index]
        let keys = try reading.overdueHoldKeys(in: part.sale.id, at: part.now, after: part.lastRead, limit: Self.page)
        part.keys = keys[...]
        part.lastRead = keys.last ?? part.lastRead
        part.exhausted = keys.count < Self.page
        parts[index] = part
    }
}
