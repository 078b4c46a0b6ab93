/// The stock over the opening, drawn with block characters as hyperfine and btm draw their
/// charts: a column per slice of time, eight steps per row.
enum SellOutCurve {
    static let blocks: [Character] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// `holds`: when each item was taken, in milliseconds after the opening, sorted. The
    /// chart runs from the opening to `until`.
    static func draw(holds: [Int64], inventory: Int64, until: Int64, width: Int = 60, height: Int = 8) -> String {
        guard inventory > 0, until > 0 else { return "" }
        var stock: [Int64] = []
        var taken = 0
        for column in 0..<width {
            let end = until * Int64(column + 1) / Int64(width)
            while taken < holds.count, holds[taken] <= end { taken += 1 }
            stock.append(inventory - Int64(taken))
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
