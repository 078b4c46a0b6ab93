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
        let columns = ["kind", "value", "match", "sale", "reason", "created_at"]
        let rows = blocks.map { block in
            [block.kind.rawValue, block.value, block.contains ? "contains" : "whole", block.sale?.text ?? "*",
             block.reason ?? "-", block.createdAt.description]
        }
        return Rendered(text: table(columns, rows), json: .array(blocks.map { block in
            .object([("kind", .string(block.kind.rawValue)), ("value", .string(block.value)), ("contains", .bool(block.contains)),
                     ("sale", .string(block.sale?.text)), ("reason", .string(block.reason)), ("created_at", .time(block.createdAt))])
        }))
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
        let width = (fields.map(\.0.count).max() ?? 0) + 2
        return fields.map { name, value in name.padding(to: width) + textValue(value).controlCharactersEscaped }.joined(separator: "\n")
    }

    /// Columns separated by two spaces, each as wide as its widest cell; the last unpadded.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows.map { $0.map(\.controlCharactersEscaped) }
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(to: widths[column] + 2)
            }.joined()
        }.joined(separator: "\n")
    }
}

extension String {
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
