import FlashSaleCore
import FlashSaleEngine

enum ExportCommand {
    static let format = OptionSpec("--format", value: "FORMAT", "csv (the default, RFC 4180) or ndjson (the default with --json)")
    static let status = OptionSpec("--status", value: "S", "only held, booked, cancelled or expired bookings")

    static let spec = CommandSpec(
        "export", arguments: "SALE", options: [format, status],
        summary: "every booking of a sale, oldest first, streamed as CSV or NDJSON",
        details: """
            One consistent snapshot, written as it is read, in constant memory. CSV: a header line, then \
            the booking fields (id,sale,user,status,created_at,expires_at,confirmed_at,cancelled_at,\
            expired_at,ip,user_agent,key), CRLF line ends, a field quoted when it holds a comma, quote or \
            control character (CR, LF, tab...; kept as they are), and an absent value as an empty field. \
            A field that starts with = + - @ tab or CR, which a spreadsheet would run as a formula, or with \
            ' itself, is quoted with a ' put before it \
            ("'=1+1"): drop the first ' of a field that starts with one to get the value back. NDJSON \
            (--format ndjson): the booking objects of 'booking --json', unchanged. An overdue hold is \
            exported as expired. --json makes NDJSON the default, as for events and --stream; --format csv \
            still gives CSV.
            """
    ) { invocation, context in
        let ndjson: Bool
        switch invocation.options[format.name] {
        // The contract: with --json, stdout holds NDJSON for export, as for events.
        case nil: ndjson = context.output.json
        case "csv": ndjson = false
        case "ndjson": ndjson = true
        case let other?: throw FlashSaleError.usage("--format must be csv or ndjson, not '\(Quoted(other))'")
        }
        let wanted = try invocation.bookingStatus(status)
        let saleID = try invocation.requiredSaleID()
        let engine = try context.engine()
        let now = try context.now()
        // Before the header, so that a wrong sale prints nothing but the error (exit 3).
        let sale = try engine.sale(saleID)
        guard !context.output.quiet else { return }
        let progress = Progress(every: 100_000, label: "exported", sink: context.output.notes, besideData: context.output.stdout)
        if wanted == nil {
            // Every booking is in one of the four statuses the counters count.
            let counters = sale.counters
            progress.total = counters.held + counters.booked + counters.cancelled + counters.expired
        }
        defer { progress.finish() }
        let out = context.output.stdout
        if !ndjson { out.write(CSVWriter.header) }
        try engine.forEachBooking(of: saleID, status: wanted, user: nil, clock: now) { booking in
            progress.tick()
            let fields = Render.bookingFields(booking)
            out.write(ndjson ? JSON.object(fields).serialized + "\n" : CSVWriter.row(fields.map { CSVWriter.cellText($0.1) }))
            // A full disk: reading on would be for nothing.
            try context.checkOutput()
        }
    }
}

/// RFC 4180 CSV, made safe to open in a spreadsheet.
enum CSVWriter {
    /// The names `Render.bookingFields` writes, taken from it so that the header and the
    /// NDJSON keys cannot drift apart.
    static let header: String = {
        let placeholder = Booking(
            id: BookingID(trusted: ""), sale: SaleID(trusted: ""), user: "", status: .held, createdAt: .earliest,
            expiresAt: .earliest, confirmedAt: nil, cancelledAt: nil, expiredAt: nil, ip: nil, userAgent: nil, key: nil)
        return Render.bookingFields(placeholder).map(\.0).joined(separator: ",") + "\r\n"
    }()

    static func row(_ cells: [String]) -> String {
        cells.map(field).joined(separator: ",") + "\r\n"
    }

    /// A JSON value as CSV text: strings and numbers bare, null as nothing.
    static func cellText(_ value: JSON) -> String {
        switch value {
        case .string(let text), .number(let text): text
        case .bool(let value): value ? "true" : "false"
        case .null: ""
        case .object, .array, .serialized: value.serialized
        }
    }

    /// One field: quoted when RFC 4180 requires it (a comma, quote, CR or LF; quotes
    /// doubled), or when it holds another control character, which a reader guessing the
    /// delimiter might take for one (a tab). A field that a spreadsheet would evaluate
    /// (OWASP's CSV injection list: = + - @ tab CR first) gets a `'` in front, inside
    /// quotes, so it is shown as text.
    /// So does a field that starts with `'` itself: then every field that starts with `'`
    /// has had one added, and dropping it gives the value back without ambiguity.
    static func field(_ text: String) -> String {
        guard let first = text.utf8.first else { return "" }
        let formula = isFormulaStart(first)
        guard formula || text.utf8.contains(where: needsQuotes) else { return text }
        var out = formula ? "\"'" : "\""
        for scalar in text.unicodeScalars {
            if scalar == "\"" { out += "\"\"" } else { out.unicodeScalars.append(scalar) }
        }
        out += "\""
        return out
    }

    // Switches, not sets: hashing each byte of a million rows was a tenth of an export.
    private static func isFormulaStart(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), UInt8(ascii: "\t"), UInt8(ascii: "\r"),
             UInt8(ascii: "'"): true
        default: false
        }
    }

    private static func needsQuotes(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: ","), UInt8(ascii: "\""), 0..<0x20, 0x7F: true
        default: false
        }
    }
}
