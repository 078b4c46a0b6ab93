import FlashSaleCore

/// How domain values look: the contract's JSON objects, and short aligned text.
package enum Render {
    static func sale(_ status: SaleStatus) -> Rendered {
        let fields = saleFields(status)
        return Rendered(text: block(fields), json: .object(fields))
    }

    static func sales(_ statuses: [SaleStatus]) -> Rendered {
        let columns = ["id", "state", "total", "available", "held", "booked", "overdue", "queued", "name"]
        let rows = statuses.map { status in
            let fields = Dictionary(saleFields(status), uniquingKeysWith: { first, _ in first })
            return columns.map { textValue(fields[$0] ?? .null) }
        }
        return Rendered(text: table(columns, rows), json: .array(statuses.map { .object(saleFields($0)) }))
    }

    static func booking(_ booking: Booking) -> Rendered {
        let fields = bookingFields(booking)
        return Rendered(text: block(fields), json: .object(fields))
    }

    /// `book` prints the id alone (scripts capture it); `--json` the whole booking.
    static func bookingID(_ booking: Booking) -> Rendered {
        Rendered(text: booking.id.text, json: .object(bookingFields(booking)))
    }

    /// `confirm` and `cancel`: the id and the status it is in now.
    static func bookingStatus(_ booking: Booking) -> Rendered {
        Rendered(text: "\(booking.id) \(booking.status.rawValue)", json: .object(bookingFields(booking)))
    }

    static func request(_ request: QueuedRequest) -> Rendered {
        let fields = requestFields(request)
        return Rendered(text: block(fields), json: .object(fields))
    }

    /// `bookings`'s table, printed a page at a time (`BookingPages`).
    static let bookingColumns = ["id", "user", "status", "created_at", "expires_at"]

    static func bookingCells(_ booking: Booking) -> [String] {
        [booking.id.text, booking.user.text, booking.status.rawValue, booking.createdAt.description, booking.expiresAt.description]
    }

    // MARK: - Fields, in the contract's order

    static func saleFields(_ status: SaleStatus) -> [(String, JSON)] {
        let sale = status.sale
        let c = sale.counters
        return [
            ("id", .string(sale.id.text)), ("name", .string(sale.name)), ("state", .string(status.state.rawValue)),
            ("total", .integer(c.total)), ("available", .integer(c.available)), ("held", .integer(c.held)),
            ("booked", .integer(c.booked)), ("cancelled", .integer(c.cancelled)), ("expired", .integer(c.expired)),
            ("overdue", .integer(status.overdue)), ("queued", .integer(status.queued)),
            ("hold_seconds", .number(sale.hold.secondsText)), ("per_user", .integer(sale.perUser)),
            ("per_ip", sale.perIP.map(JSON.integer) ?? .null), ("waitlist", .bool(sale.waitlist)),
            ("starts_at", .time(sale.startsAt)), ("ends_at", .time(sale.endsAt)), ("created_at", .time(sale.createdAt)),
        ]
    }

    package static func bookingFields(_ booking: Booking) -> [(String, JSON)] {
        [
            ("id", .string(booking.id.text)), ("sale", .string(booking.sale.text)), ("user", .string(booking.user.text)),
            ("status", .string(booking.status.rawValue)), ("created_at", .time(booking.createdAt)),
            ("expires_at", .time(booking.expiresAt)), ("confirmed_at", .time(booking.confirmedAt)),
            ("cancelled_at", .time(booking.cancelledAt)), ("expired_at", .time(booking.expiredAt)),
            ("ip", .string(booking.ip)), ("user_agent", .string(booking.userAgent)), ("key", .string(booking.key)),
        ]
    }

    package static func requestFields(_ request: QueuedRequest) -> [(String, JSON)] {
        [
            ("id", .integer(request.id.value)), ("sale", .string(request.sale.text)), ("user", .string(request.user.text)),
            ("status", .string(request.status.rawValue)), ("reason", .string(request.reason)),
            ("booking", .string(request.booking?.text)), ("submitted_at", .time(request.submittedAt)),
            ("decided_at", .time(request.decidedAt)), ("position", request.position.map(JSON.integer) ?? .null),
        ]
    }

    static func blocks(_ blocks: [Block]) -> Rendered {
        Rendered(text: blockTable(blocks), json: .array(blocks.map(blockObject)))
    }

    /// One block (`block`'s answer): in text the table's row, in JSON an object, as one
    /// booking is (it was an array of one, found by probing).
    static func block(_ block: Block) -> Rendered {
        Rendered(text: blockTable([block]), json: blockObject(block))
    }

    private static func blockTable(_ blocks: [Block]) -> String {
        let columns = ["kind", "value", "match", "sale", "reason", "created_at"]
        return table(columns, blocks.map { block in
            [block.kind.rawValue, block.value, block.contains ? "contains" : "whole", block.sale?.text ?? "*",
             block.reason ?? "-", block.createdAt.description]
        })
    }

    private static func blockObject(_ block: Block) -> JSON {
        .object([("kind", .string(block.kind.rawValue)), ("value", .string(block.value)), ("contains", .bool(block.contains)),
                 ("sale", .string(block.sale?.text)), ("reason", .string(block.reason)), ("created_at", .time(block.createdAt))])
    }

    // MARK: - Text

    // The values of text output go through `block` or `table`, which escape their control
    // characters as error messages do: a user name cannot forge a row or drive the
    // operator's terminal. (The paths init and backup echo are escaped the same way; JSON
    // escapes them itself; export's CSV is data, quoted instead.)

    /// A JSON value as a table cell: strings bare, null as `-`.
    private static func textValue(_ value: JSON) -> String {
        switch value {
        case .string(let text): text
        case .number(let text): text
        case .null: "-"
        default: value.serialized
        }
    }

    /// `name  value` lines, the values aligned.
    private static func block(_ fields: [(String, JSON)]) -> String {
        let width = (fields.map(\.0.displayWidth).max() ?? 0) + 2
        return fields.map { name, value in name.padding(to: width) + textValue(value).controlCharactersEscaped }.joined(separator: "\n")
    }

    /// Columns separated by two spaces, each as wide as its widest cell; the last unpadded.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows.map { $0.map(\.controlCharactersEscaped) }
        let widths = header.indices.map { column in all.map { $0[column].displayWidth }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(to: widths[column] + 2)
            }.joined()
        }.joined(separator: "\n")
    }
}

extension String {
    /// The text followed by spaces to `width` terminal columns (`displayWidth`).
    func padding(to width: Int) -> String {
        let shown = displayWidth
        return shown >= width ? self : self + String(repeating: " ", count: width - shown)
    }

    /// The columns the text takes on a terminal, as psql pads its tables: one for each
    /// character, two for a wide one (found by probing: a Japanese user's row pushed the
    /// columns after it to the right, counted as half its width).
    var displayWidth: Int {
        // Most values are ASCII: a column a byte.
        guard utf8.contains(where: { $0 >= 0x80 }) else { return utf8.count }
        return reduce(0) { width, character in width + character.columns }
    }
}

extension Character {
    /// The terminal columns it takes: two for an emoji presented as one or a character of
    /// East Asian width W or F (the ranges of Markus Kuhn's `wcwidth`, which terminals
    /// follow), none for an invisible format character (a zero-width space), else one.
    var columns: Int {
        guard let first = unicodeScalars.first else { return 0 }
        if first.properties.isEmojiPresentation || unicodeScalars.contains("\u{FE0F}") && first.properties.isEmoji { return 2 }
        if Character.wideRanges.contains(where: { $0.contains(first.value) }) { return 2 }
        return first.properties.generalCategory == .format ? 0 : 1
    }

    private static let wideRanges: [ClosedRange<UInt32>] = [
        0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF,
        0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x20000...0x2FFFD,
        0x30000...0x3FFFD,
    ]
}
