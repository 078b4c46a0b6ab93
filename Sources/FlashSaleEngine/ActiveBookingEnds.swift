import FlashSaleCore

/// The bookings of some users (or addresses) of one sale that count against its per-user
/// (or per-IP) limit, each as the instant it stops counting: a hold's expiry, or never for
/// one booked. Read once, they are counted at any `now` from then on, as a stream's clock
/// moves between its decisions, without asking the store again.
///
/// Exact while the transaction that read them holds the sale's writes and adds its own
/// holds (`add`); any other change to the sale's bookings makes them stale, and its holder
/// forgets them.
public struct ActiveBookingEnds: Sendable {
    public let sale: SaleID
    /// When they were read (the last read, when read one owner at a time): a count before
    /// then would need the holds that had expired by it.
    public private(set) var readAt: Instant
    /// By their bytes (`ExactText`), as the tables compare users and addresses.
    private var owners: [ExactText: Ends]

    /// One owner's: a count is a binary search, where filtering every booking made a
    /// stream of one user's holds quadratic still.
    private struct Ends: Sendable {
        var booked: Int64 = 0
        /// In order.
        var holdExpiries: [Instant] = []

        init(_ ends: [Instant?]) {
            for end in ends {
                if let end { holdExpiries.append(end) } else { booked += 1 }
            }
            holdExpiries.sort()
        }

        /// `Rules.isExpired`: a hold stops counting from its expiry on.
        func count(at now: Instant) -> Int64 {
            booked + Int64(holdExpiries.count - holdExpiries.partitioningIndex { !Rules.isExpired(expiresAt: $0, at: now) })
        }

        mutating func add(holdExpiringAt expiry: Instant) {
            // A sale's holds are made in their expiries' order (its time never goes back,
            // `Sale.highWater`, and its hold time is fixed): appended. One out of order, which
            // only rows edited by hand could give, is put in its place all the same.
            if let last = holdExpiries.last, expiry < last {
                holdExpiries.insert(expiry, at: holdExpiries.partitioningIndex { $0 > expiry })
            } else {
                holdExpiries.append(expiry)
            }
        }
    }

    /// `ends`: each owner's bookings that count at `readAt`, as the instant each stops
    /// counting (nil: never).
    public init(sale: SaleID, readAt: Instant, ends: [ExactText: [Instant?]] = [:]) {
        self.sale = sale
        self.readAt = readAt
        owners = ends.mapValues(Ends.init)
    }

    /// The active bookings of `owner` (a user, or an address's per-IP key) at `now`, or nil
    /// when not known here.
    public func count(of owner: String, in sale: SaleID, at now: Instant) -> Int64? {
        guard sale == self.sale, now >= readAt else { return nil }
        return owners[ExactText(owner)]?.count(at: now)
    }

    /// Makes `owner`'s bookings known: those that count at `now`, from when on they are
    /// counted here.
    public mutating func learn(_ owner: String, ends: [Instant?], at now: Instant) {
        owners[ExactText(owner)] = Ends(ends)
        readAt = max(readAt, now)
    }

    /// A hold the transaction made, counted if its owner's bookings are known.
    public mutating func add(_ hold: Booking, owner: String) {
        guard hold.sale == sale else { return }
        owners[ExactText(owner)]?.add(holdExpiringAt: hold.expiresAt)
    }
}

private extension Array {
    /// The index of the first element for which `isAfter` holds, in an array where every
    /// element for which it holds comes after every one for which it does not.
    func partitioningIndex(where isAfter: (Element) -> Bool) -> Int {
        var (low, high) = (0, count)
        while low < high {
            let middle = (low + high) / 2
            if isAfter(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
