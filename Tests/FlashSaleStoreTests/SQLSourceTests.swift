import Foundation
import Testing

/// No SQL is built from values: every value reaches SQLite as a bound parameter. A test over
/// the sources, so that a `"... WHERE user = '\(user)'"` cannot slip in unnoticed.
@Suite struct SQLSourceTests {
    /// The interpolations that may stand in SQL text, as `file: expression`. Each is fixed when
    /// the program is compiled, or a number the program computed; none can hold input.
    static let allowed: Set<String> = [
        // Shared fragments: the expiry boundary and the column lists, written once.
        "Rows.swift: overdueHold",
        "Rows.swift: activeBooking",
        "Rows.swift: saleColumns",
        "Rows.swift: bookingColumns",
        "SQLiteTransaction.swift: saleColumns",
        "SQLiteTransaction.swift: bookingColumns",
        "SQLiteTransaction.swift: overdueHold",
        "SQLiteTransaction+Line.swift: activeBooking",
        "SQLiteStore+Verify.swift: activeBooking",
        // The sweep's order, and a sale's line of overdue holds in it.
        "Rows.swift: holdOrder",
        "SQLiteTransaction+Sweep.swift: holdOrder",
        "SQLiteTransaction+Sweep.swift: overdueHold",
        "SQLiteTransaction+Sweep.swift: overdueLine",
        // The line's FROM clause (its runs, joined to their requests), and its first request.
        "SQLiteTransaction+Line.swift: lineFrom",
        "SQLiteTransaction+Line.swift: lineHeadID",
        // The suspects report's stored attempts, and the temp_store value it read from SQLite.
        "SQLiteStore+Suspects.swift: storedAttempts",
        "SQLiteStore+Suspects.swift: tempStore",
        // Version 7's attempts stored before it, and their bucket's length, a constant.
        "Schema.swift: storedAttempts",
        "Schema.swift: AttemptBucket.length.milliseconds",
        // Numbered placeholders (:u0, :u1, ...) of the multi-row INSERT of a bulk submit,
        // and its key column, there or not (constants).
        "SQLiteTransaction+Line.swift: $0",
        "SQLiteTransaction+Line.swift: keyed ? \"key, \" : \"\"",
        "SQLiteTransaction+Line.swift: keyed ? \":k\\($0), \" : \"\"",
        // The schema version, a constant.
        "Schema.swift: currentVersion",
        // The upsert's merge of a counter's sample of users, and the sample's bound, constants.
        "PostgresTransaction+Attempts.swift: users",
        "PostgresTransaction+Attempts.swift: UserSample.kept",
        // The PostgreSQL store's constant fragments: columns, the expiry boundary with its
        // parameter's name, the schema's lock class, the parameter lists it numbers itself.
        "PostgresTransaction.swift: bookingColumns",
        "PostgresTransaction.swift: saleColumns",
        "PostgresTransaction.swift: activeBooking(now: \"$3\")",
        "PostgresTransaction+Reads.swift: bookingColumns",
        "PostgresTransaction+Reads.swift: columns",
        "PostgresTransaction+Line.swift: activeBooking(now: \"$1\")",
        "PostgresTransaction+Sweep.swift: bookingColumns",
        "PostgresTransaction+Sweep.swift: overdueHold(now: \"$2\")",
        "PostgresTransaction+Attempts.swift: columns.select()",
        // The read-ahead's probes: a constant kind and column, a placeholder's name, the
        // expiry boundary and a hold's end; the columns, arrays and placeholders of a
        // statement from arrays, numbered by ArrayRows and WriteBatch (the events' count,
        // `taken`, is a placeholder's name); a cursor's page, a number the program computed.
        "PostgresTransaction+ReadAhead.swift: what",
        "PostgresTransaction+ReadAhead.swift: column",
        "PostgresTransaction+ReadAhead.swift: wanted",
        "PostgresTransaction+ReadAhead.swift: endsAt",
        "PostgresTransaction+ReadAhead.swift: activeBooking(now: \"$4\")",
        "PostgresTransaction+ReadAhead.swift: probe(\"user\", \"user_id\", of: \"$2\", count: users.count)",
        "PostgresTransaction+ReadAhead.swift: probe(\"address\", \"ip_canonical\", of: \"$3\", count: addresses.count)",
        "PostgresTransaction+ReadAhead.swift: PostgresKeys.lookup(bookingColumns, in: \"booking\", key: \"wanted.value\", sale: \"$1\")",
        "PostgresTransaction+ReadAhead.swift: PostgresKeys.lookup(\"id, user_id\", in: \"request\", key: \"wanted.value\", sale: \"$1\")",
        "PostgresTransaction+Line.swift: PostgresKeys.lookup(\"1\", in: \"booking\", key: \"line.key\", sale: \"$1\")",
        // A lookup by key: its columns, table and SQL names of the key and sale, never values.
        "PostgresKeys.swift: columns",
        "PostgresKeys.swift: table",
        "PostgresKeys.swift: key",
        "PostgresKeys.swift: sale",
        "PostgresSession.swift: count(limit)",
        "PostgresTransaction+HeldBack.swift: rows.select()",
        "PostgresTransaction+HeldBack.swift: taken",
        // An event's columns (a constant).
        "PostgresTransaction+HeldBack.swift: Self.eventColumns",
        // A rejected run's SQL (constants), and a condition on the sale given as $3.
        "PostgresTransaction+RejectedRuns.swift: saleCondition",
        "PostgresStore+Suspects.swift: RejectedRuns.ofSale",
        "PostgresStore+Verify.swift: RejectedRuns.lastSeq",
        "PostgresTransaction+Reads.swift: RejectedRuns.lastSeq",
        "ArrayRows.swift: selected",
        "ArrayRows.swift: arrays.joined(separator: \", \")",
        "PostgresStore+Verify.swift: activeBooking(now: \"$2\")",
        "PostgresStore+Suspects.swift: storedAttempts",
        "PostgresStore+Suspects.swift: kinds",
        "PostgresStore+Suspects.swift: stored",
        "PostgresSchema.swift: lockClass",
        // copy-to's tables and columns, named by CopiedTable (constants), and the numbered
        // placeholders of its multi-row INSERTs.
        "SQLiteStore+Copy.swift: select",
        "SQLiteStore+Copy.swift: name",
        "SQLiteStore+Copy.swift: order",
        "PostgresStore+Copy.swift: table",
        "PostgresStore+Copy.swift: column",
        "PostgresStore+Copy.swift: table.target",
        "PostgresStore+Copy.swift: columns.map(\\.name).joined(separator: \", \")",
        "PostgresStore+Copy.swift: table.overridesIdentity ? \" OVERRIDING SYSTEM VALUE\" : \"\"",
        "PostgresStore+Copy.swift: tuples.joined(separator: \", \")",
    ]

    static let sources = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources")

    @Test func noSQLIsBuiltFromValues() throws {
        let found = try Self.sqlInterpolations()
        let unexpected = found.filter { !Self.allowed.contains($0.key) }
        #expect(unexpected.isEmpty, "SQL built from values; bind them as parameters instead: \(unexpected.values.sorted())")
    }

    /// Keeps the allow-list as small as the code: an entry that nothing uses goes.
    @Test func everyAllowedInterpolationIsStillUsed() throws {
        let found = try Self.sqlInterpolations()
        #expect(Self.allowed.subtracting(found.keys).isEmpty)
    }

    /// Rows are decoded by column name (`row.int64("total")`): a read by position is only for
    /// the one value of a query such as `SELECT count(*)`, column 0.
    @Test func rowsAreReadByNameBeyondTheFirstColumn() throws {
        let positional = #/\.(int64|optionalInt64|text|optionalText)\(\s*[1-9]/#
        var found: [String] = []
        let files = try #require(FileManager.default.enumerator(at: Self.sources, includingPropertiesForKeys: nil))
        for case let url as URL in files where url.pathExtension == "swift" {
            let source = try String(contentsOf: url, encoding: .utf8)
            for (number, line) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains(positional) {
                found.append("\(url.lastPathComponent):\(number + 1)")
            }
        }
        #expect(found.isEmpty, "columns read by position; read them by name: \(found)")
    }

    @Test func aValueInterpolatedIntoSQLIsFound() {
        let source = ##"""
            // "a comment with \(user) and SELECT"
            let sql = "SELECT id FROM booking WHERE user = '\(user)' AND \(activeBooking)"
            let text = #"""
                DELETE FROM sale
                WHERE id = \#(sale.id)
                """#
            let row = "(:u\($0), :i\($0))"
            let message = "cannot read \(path): \(reason)"
            """##
        let found = StringLiteralScanner.literals(in: source).filter(Self.isSQL).flatMap(\.interpolations)
        #expect(found == ["user", "activeBooking", "sale.id", "$0", "$0"])
    }

    /// Every interpolation in SQL text under Sources, keyed `file: expression`, with where it is.
    static func sqlInterpolations() throws -> [String: String] {
        var found: [String: String] = [:]
        let files = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        for case let url as URL in files where url.pathExtension == "swift" {
            let source = try String(contentsOf: url, encoding: .utf8)
            for literal in StringLiteralScanner.literals(in: source) where isSQL(literal) {
                for expression in literal.interpolations {
                    found["\(url.lastPathComponent): \(expression)"] = "\(url.lastPathComponent):\(literal.line) \\(\(expression))"
                }
            }
        }
        return found
    }

    /// SQL text: a statement keyword, or a named parameter (`:sale`, `(:u0`).
    static func isSQL(_ literal: StringLiteral) -> Bool {
        let keywords = #/\b(SELECT|INSERT|UPDATE|DELETE|REPLACE|WHERE|VALUES|PRAGMA|FROM|INTO)\b/#
        let parameter = #/(^|[\s(,=]):[a-z_]/#
        return literal.text.contains(keywords) || literal.text.contains(parameter)
    }
}
