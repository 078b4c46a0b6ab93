import Foundation
import Testing
import FlashSaleCore
@testable import FlashSaleCLI

/// A line break, a terminal escape sequence (SGR red) and a C1 CSI: what a hostile user
/// name would use to forge rows or drive the operator's terminal.
private let hostile = "ev\nil\u{1B}[31m\u{9B}2J\t."
/// How text output shows it: each control character as its Swift escape.
private let shown = #"ev\nil\u{1B}[31m\u{009B}2J\t."#

/// Whether `text` holds a control character other than the line feeds between lines.
private func hasRawControls(_ text: String) -> Bool {
    text.unicodeScalars.contains { $0 != "\n" && $0.properties.generalCategory == .control }
}

@Suite struct TextOutputEscapingTests {
    /// JSON output escapes what RFC 8259 asks, in keys and values, and passes the rest
    /// through as UTF-8, whether a text needs escaping or not.
    @Test func jsonEscapesQuotesBackslashesAndControlsAndKeepsTheRest() {
        let value = JSON.object([("a\"b", .string("q\"b\\s\nn\rr\tt\u{01}é😀")), ("plain", .string("é😀")), ("n", .null)])
        #expect(value.serialized == #"{"a\"b":"q\"b\\s\nn\rr\tt\u0001é😀","plain":"é😀","n":null}"#)
    }

    /// A sale named, and booked by a user named, with control characters; the user also
    /// queued a request.
    private func hostileSale() throws -> (Sandbox, String) {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5", "--name", hostile])
        let id = try box.run(["book", "s1", "--", hostile]).line
        try box.run(["create-sale", "s2", "--inventory", "5"])
        try box.run(["submit", "s2", "--", hostile])
        return (box, id)
    }

    @Test func bookingsShowsAHostileUserAsOneEscapedRow() throws {
        let (box, _) = try hostileSale()
        let result = try box.run(["bookings", "s1"])
        #expect(!hasRawControls(result.stdout))
        let lines = result.line.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.last?.contains(" \(shown) ") == true)
    }

    @Test func bookingShowsAHostileUserOnItsLine() throws {
        let (box, id) = try hostileSale()
        let result = try box.run(["booking", "s1", id])
        #expect(!hasRawControls(result.stdout))
        #expect(result.line.split(separator: "\n").contains { $0.hasPrefix("user") && $0.hasSuffix(shown) })
        #expect(result.line.split(separator: "\n").count == 12)
    }

    @Test func statusAndSalesShowAHostileNameEscaped() throws {
        let (box, _) = try hostileSale()
        let status = try box.run(["status", "s1"])
        #expect(!hasRawControls(status.stdout))
        #expect(status.line.split(separator: "\n").contains { $0.hasPrefix("name") && $0.hasSuffix(shown) })
        let sales = try box.run(["sales"])
        #expect(!hasRawControls(sales.stdout))
        #expect(sales.line.split(separator: "\n").count == 3)
    }

    @Test func requestShowsAHostileUserEscaped() throws {
        let (box, _) = try hostileSale()
        let result = try box.run(["request", "1"])
        #expect(!hasRawControls(result.stdout))
        #expect(result.line.split(separator: "\n").contains { $0.hasPrefix("user") && $0.hasSuffix(shown) })
    }

    @Test func blocksShowAHostileValueAndReasonAsOneEscapedRow() throws {
        let box = try Sandbox()
        try box.run(["init"])
        let added = try box.run(["block", "user", "--reason", hostile, "--", hostile])
        #expect(added.status == 0)
        #expect(!hasRawControls(added.stdout))
        let result = try box.run(["blocks"])
        #expect(!hasRawControls(result.stdout))
        let lines = result.line.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.last?.hasPrefix("user  \(shown)  whole  *     \(shown)  ") == true)
    }

    /// Ten declined requests make the user a suspect: one row, and under it the block
    /// command, whose `$'...'` quoting holds no control character either.
    @Test func suspectsShowAHostileUserAsOneEscapedRow() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "0"])
        let line = try #require(String(data: try JSONSerialization.data(withJSONObject: ["user": hostile]), encoding: .utf8))
        let file = try box.file("r.ndjson", String(repeating: line + "\n", count: 10))
        #expect(try box.run(["submit", "s1", "--file", file]).status == 0)
        try box.run(["process"])
        let result = try box.run(["suspects", "s1"])
        #expect(!hasRawControls(result.stdout))
        let lines = result.line.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[1].contains(shown))
    }

    /// CSV is data, not escaped: a control character is kept, in a quoted field, which no
    /// reader or spreadsheet can take for a delimiter.
    /// Found by probing: a right-to-left override in a value reordered the rest of its row
    /// on the operator's screen ("Trojan Source"); it is escaped as a control character is.
    @Test func bidirectionalControlsAreEscaped() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"])
        try box.run(["book", "s1", "mal\u{202E}lory\u{2066}x"])
        let listed = try box.run(["bookings", "s1"]).stdout
        #expect(listed.contains("mal\\u{202E}lory\\u{2066}x"), "\(listed)")
        #expect(!listed.unicodeScalars.contains { $0.properties.isBidiControl }, "\(listed)")
    }

    /// Found by probing: U+2028 and U+2029 split a row for readers that honour them, and
    /// zero-width characters made `u1` and `u1` + U+200B look like one user; they are
    /// escaped, where the joiners and a flag's tag characters are kept.
    @Test func separatorsAndInvisibleFormatCharactersAreEscaped() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "12", "--per-user", "9"])
        for user in ["u1\u{2028}", "u1\u{2029}", "u1\u{200B}", "u1\u{FEFF}", "u1\u{AD}", "u1\u{E0001}", "👨‍👩‍👧", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "می\u{200C}خواهم",
                     "ab\u{E0068}\u{E0069}c", "u1\u{3164}", "❤\u{FE0F}"] {
            #expect(try box.run(["book", "s1", user]).status == 0)
        }
        let listed = try box.run(["bookings", "s1"]).stdout
        for escaped in ["u1\\u{2028}", "u1\\u{2029}", "u1\\u{200B}", "u1\\u{FEFF}", "u1\\u{00AD}", "u1\\u{000E0001}", "👨‍👩‍👧", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "می\u{200C}خواهم",
                        "ab\\u{000E0068}\\u{000E0069}c", "u1\\u{3164}", "❤\u{FE0F}"] {
            #expect(listed.contains(escaped), "\(escaped) in \(listed)")
        }
        #expect(listed.split(whereSeparator: \.isNewline).count == 13, "\(listed)")
    }

    /// Found by probing: columns were padded by characters, so that a row with a wide
    /// user (two terminal columns a character) pushed the columns after it to the right.
    @Test func columnsArePaddedToTheWidthTheirCellsTakeOnATerminal() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5", "--per-user", "2"])
        for user in ["日本語ユーザー", "abc", "👨‍👩‍👧", "e\u{301}"] { try box.run(["book", "s1", user]) }
        let rows = try box.run(["bookings", "s1"]).stdout.split(separator: "\n").dropFirst()
        // The status column starts at the same terminal column on every row.
        let starts = Set(rows.map { row in
            String(row[..<(row.range(of: "held")?.lowerBound ?? row.endIndex)]).displayWidth
        })
        #expect(starts.count == 1, "\(rows)")
        #expect("日本語ユーザー".displayWidth == 14 && "👨‍👩‍👧".displayWidth == 2 && "e\u{301}".displayWidth == 1 && "abc".displayWidth == 3)
        #expect("x\u{200B}y".displayWidth == 2, "a zero-width space takes no column")
    }

    @Test func csvQuotesAFieldWithAnyControlCharacter() {
        #expect(CSVWriter.field("a\u{1B}[31mb") == "\"a\u{1B}[31mb\"")
        #expect(CSVWriter.field("a\tb") == "\"a\tb\"")
        #expect(CSVWriter.field("a\u{7F}") == "\"a\u{7F}\"")
        #expect(CSVWriter.field("a\nb") == "\"a\nb\"")
    }
}

@Suite struct PathEscapingTests {
    /// The database and backup paths that init and backup echo are escaped like any value.
    @Test func initAndBackupEchoPathsEscaped() throws {
        let box = try Sandbox()
        let database = box.directory.appendingPathComponent("a\nb\u{1B}.db").path
        let created = try box.run(["--db", database, "init"], database: false)
        #expect(created.stdout == database.replacingOccurrences(of: "\n", with: #"\n"#).replacingOccurrences(of: "\u{1B}", with: #"\u{1B}"#)
            + ": flashsale database ready\n")
        let copy = box.directory.appendingPathComponent("c\rd.db").path
        let backup = try box.run(["--db", database, "backup", copy], database: false)
        #expect(backup.stdout.hasPrefix("backed up to " + copy.replacingOccurrences(of: "\r", with: #"\r"#) + " ("))
    }
}

/// Error messages are escaped in one place, whatever they name: a mistyped path with an
/// escape sequence in it reaches the terminal as text.
@Suite struct ErrorEscapingTests {
    @Test func aPathInAnErrorIsEscaped() throws {
        let box = try Sandbox()
        let path = box.directory.appendingPathComponent("x\u{1B}[31mred.db").path
        let result = try box.run(["--db", path, "status", "s1"], database: false)
        #expect(result.status == 73)
        #expect(!result.stderr.unicodeScalars.contains { $0.value == 0x1B }, "\(result.stderr)")
        #expect(result.stderr.contains("x\\u{1B}[31mred.db"))
    }

    /// A block row written by hand that no `block` command would take: the file is not a
    /// usable database (73), not a usage error of the command that met it.
    @Test func aCorruptBlockRowIsCantOpen() throws {
        let box = try Sandbox()
        try box.run(["init"])
        try FlashSaleStoreBackdoor.execute(box.database,
            "INSERT INTO block (kind, value, contains, created_at) VALUES ('ip', 'not-an-ip', 0, 0)")
        #expect(try box.run(["blocks"]).status == 73)
    }
}

/// `events` writes its lines as bytes (`EventsCommand.append`): each must be the JSON
/// object of the event's fields, escaped as `JSON` escapes, whatever the text holds.
@Suite struct EventLineTests {
    @Test(arguments: [hostile, "quote \" back\\slash", "naïve 東京 🎟️", "", "\u{0}\u{1F}\u{7F}"])
    func anEventsLineIsTheJSONObjectOfItsFields(text: String) throws {
        let at = Instant(milliseconds: 1_796_400_012_570)
        let events = [
            Event(seq: 7, NewEvent(at: at, sale: "s1", kind: .held, booking: BookingID(trusted: "bk_1"), user: UserID(trusted: text),
                                   request: RequestID(42), detail: nil)),
            Event(seq: Int64.max, NewEvent(at: at, sale: "*", kind: .blocked, user: nil, detail: text)),
            Event(seq: 1, NewEvent(at: at, sale: text, kind: .rejected, user: UserID(trusted: text), request: RequestID(0), detail: text)),
        ]
        for event in events {
            var fields: [(String, JSON)] = [("seq", .integer(event.seq)), ("at", .time(event.at)), ("sale", .string(event.sale)),
                                            ("kind", .string(event.kind.rawValue))]
            if let booking = event.booking { fields.append(("booking", .string(booking.text))) }
            if let user = event.user { fields.append(("user", .string(user.text))) }
            if let request = event.request { fields.append(("request", .integer(request.value))) }
            if let detail = event.detail { fields.append(("detail", .string(detail))) }
            #expect(EventsCommand.line(event) == JSON.object(fields).serialized + "\n")
        }
    }
}
