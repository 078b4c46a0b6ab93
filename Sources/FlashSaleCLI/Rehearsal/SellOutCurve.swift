import FlashSaleCore

/// The stock over the opening, drawn with block characters as hyperfine and btm draw their
/// charts: a column per slice of time, eight steps per row.
enum SellOutCurve {
    static let blocks: [Character] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// `changes`: the stock's changes in order (`StockChange`). The chart runs from the
    /// opening to `until`; a column shows the stock at its slice's end.
    static func draw(changes: [StockChange], inventory: Int64, until: Int64, width: Int = 60, height: Int = 8) -> String {
        guard inventory > 0, until > 0 else { return "" }
        var stock: [Int64] = []
        var level = inventory
        var applied = 0
        for column in 0..<width {
            let end = until * Int64(column + 1) / Int64(width)
            while applied < changes.count, changes[applied].at <= end {
                level += changes[applied].items
                applied += 1
            }
            stock.append(level)
        }
        let label = String(inventory)
        let pad = String(repeating: " ", count: label.count)
        var lines: [String] = []
        for row in (0..<height).reversed() {
            var line = ""
            for level in stock {
                // Eighths of this row's band that the stock fills.
                let eighths = (level * Int64(height) * 8 - Int64(row) * inventory * 8) / inventory
                line.append(blocks[Int(min(8, max(0, eighths)))])
            }
            let axis = row == height - 1 ? label : row == 0 ? String(repeating: " ", count: label.count - 1) + "0" : pad
            lines.append("\(axis) ┤\(line)")
        }
        let seconds = seconds(until)
        lines.append("\(pad) └" + String(repeating: "─", count: width))
        lines.append("\(pad)  0 s" + String(repeating: " ", count: max(1, width - 4 - seconds.count)) + seconds)
        return "stock over the opening\n" + lines.joined(separator: "\n")
    }

    private static func seconds(_ milliseconds: Int64) -> String {
        milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds / 1000).\(String(milliseconds % 1000 + 1000).dropFirst()) s"
    }
}

/// An item taken (-1) or back in stock (+1), in milliseconds after the opening.
struct StockChange: Equatable {
    let at: Int64
    let items: Int64

    /// The stock's changes over a rehearsal, in order: an item taken at the arrival of the
    /// request each hold answered, and back when its hold was cancelled or expired. An item
    /// back at the instant another is taken counts first: stock that ran out for no time
    /// did not run out.
    static func timeline(holds: [Booking], bookings: [Booking], in crowd: Crowd, opening: Instant) -> [StockChange] {
        // The holders' arrivals only: every buyer's would take as much memory again as the crowd.
        var arrivals = Dictionary(holds.map { ($0.user.text, [Int64]()) }, uniquingKeysWith: { first, _ in first })
        for request in crowd.requests { arrivals[request.user]?.append(request.arrival) }
        var changes = holds.map { hold in
            let decided = hold.createdAt.milliseconds - opening.milliseconds
            return StockChange(at: arrivals[hold.user.text]?.first { $0 >= decided } ?? decided, items: -1)
        }
        for booking in bookings {
            if let back = booking.cancelledAt ?? booking.expiredAt {
                changes.append(StockChange(at: back.milliseconds - opening.milliseconds, items: 1))
            }
        }
        return changes.sorted { ($0.at, -$0.items) < ($1.at, -$1.items) }
    }

    /// When the stock first ran out; nil if it never did.
    static func soldOut(_ changes: [StockChange], inventory: Int64) -> Span? {
        var stock = inventory
        for change in changes {
            stock += change.items
            if stock == 0, change.items < 0 { return Span(milliseconds: change.at) }
        }
        return nil
    }
}
