import FlashSaleCore
import FlashSaleEngine
import Glibc
import Synchronization

enum CopyToCommand {
    static let spec = CommandSpec(
        "copy-to", arguments: "URL",
        summary: "copy the SQLite database, everything in it, into a PostgreSQL schema, then verify the copy",
        details: """
            Moves a sale day from one machine's file to a database server: every sale (counters, clocks, state, \
            the queue's cursor), booking, request, event, block and attempt counter, with the same ids and seqs, \
            so that every command answers the same on the copy; new requests and events are numbered after the \
            copied ones. The source is read in one snapshot while others keep writing (what they commit after \
            it is not copied: stop writers first to move a live sale). URL is a postgresql:// URL as for --db; \
            the schema is --pg-schema, else its ?schema=, else flashsale, made if missing. A source that fails \
            verify is refused (exit 10, naming what verify finds), with nothing made; a text value that is not \
            UTF-8 or holds a NUL is refused as the copy reads it (exit 65), with nothing copied. A schema that holds \
            any flashsale row is refused (exit 4) and left as it was. The copy is one PostgreSQL transaction: \
            interrupted (SIGINT, kill -9, a lost connection), it leaves the schema's tables empty, as they were, \
            and can be run again. Before the commit each table's count of rows and each sale's counters and cursor \
            are checked against the source's (a difference exits 10 naming it, with nothing copied); after it, the \
            PostgreSQL store's verify (exit 10 naming what it finds); stopped \
            (a signal: exit 130), it says what it left: nothing before the commit, after it a copy to check with \
            verify rather than copy again; once the copy is checked, a signal is too late to stop it. Prints \
            the rows copied per table; --json prints {"source": PATH, "target": URL, "copied": {"sales": N, \
            ...}, "verified": true}. The target's URL is shown without its password.
            """,
        namesDatabaseServer: true,
        globalOptionHelp: [
            GlobalOptions.database.name: "the SQLite database to copy (else $FLASHSALE_DB, else ./flashsale.db)",
            GlobalOptions.pgSchema.name: "the schema to copy into, over the URL's ?schema= (default flashsale)",
        ]
    ) { invocation, context in
        // The parser has already refused a missing URL.
        let url = invocation.arguments["URL"] ?? ""
        if let refusal = DatabaseURL.refusal(of: url) { throw FlashSaleError.usage("copy-to needs a postgresql:// URL: \(refusal)") }
        guard DatabaseURL.scheme(of: url) != nil else {
            throw FlashSaleError.usage("copy-to needs a postgresql:// URL, not '\(Quoted(url))': flashsale \(invocation.command.synopsis)")
        }
        guard !context.isDatabaseServer else {
            throw FlashSaleError.usage("copy-to copies a SQLite file: name it with \(GlobalOptions.database.name) PATH")
        }
        // Before the source is opened: flashsale hands the whole command to flashsale-serve here.
        let opening = try context.linked.databaseServer(url, context.serverSchema, context.environment.databaseServerVariables(), context.busyTimeoutSpan)
        // The clock the check after the copy reads: a FLASHSALE_NOW that is no time is refused
        // now, before anything is copied, not after the commit (found by probing).
        _ = try context.now()
        // Made before the target's connection starts its thread (see `StopSignals`).
        let signals = StopSignals()
        let stage = CopyStage()
        let json = context.output.json
        let unchecked = "the copy in \(opening.description) was committed and is not checked: "
            + "do not run copy-to again (it refuses a schema that holds rows), check the copy with verify"
        let perhaps = "the copy in \(opening.description) may have been committed as the command stopped: "
            + "check with verify before running copy-to again (it refuses a schema that holds rows)"
        signals.stopAtFirstChance {
            // Before the commit, the server rolls the transaction back as the connection goes.
            // Checked: too late to stop; the copy-to ends as it would have, its report whole
            // (found by probing: "is not checked" after "verified: ok", or, with --json, an
            // error object after the report's).
            let said = switch stage.stop() {
            case .copying?: "nothing was copied"
            case .committing?: perhaps
            case .committed?: unchecked
            case .verified?, .stopping?, nil: nil as String?
            }
            if let said { StopSignals.exitStopped(saying: "copy-to interrupted; \(said.controlCharactersEscaped)", json: json) }
        }
        let sourceName = context.database.controlCharactersEscaped
        let sourceStore = try holdingUp(sourceName) { try context.store() }
        guard let source = sourceStore as? CopySource else {
            throw FlashSaleError.internalFailure("the database at \(context.database) cannot be copied from")
        }
        // Before the target is made: a source with a table dropped by hand was copied without
        // it and its copy called checked, or refused with the target's schema made (probe).
        // An index is not copied (the target's schema has its own): one missing is no loss.
        let lacking = try holdingUp(sourceName) { try sourceStore.missingSchemaObjects() }.filter { !$0.hasPrefix("index ") }
        guard lacking.isEmpty else {
            throw StoreFailure.unusable(detail: "\(context.database.controlCharactersEscaped) is missing "
                                        + "\(lacking.joined(separator: ", ")); nothing was copied")
        }
        // Found by probing: a source that fails verify was copied, committed, and then the
        // copy was said not to match it; one that broke a rule of the target's schema was
        // a bug (exit 1), in the server's words.
        let findings = try holdingUp(sourceName) { try sourceStore.recount(nil, clock: context.now()) }
        guard findings.isEmpty else {
            throw FlashSaleError.invariant("\(context.database.controlCharactersEscaped) fails verify, so nothing was copied: "
                                           + CopyToCommand.summary(of: findings))
        }
        let target = try holdingUp(opening.description) { try opening.open(true) }
        guard let copyTarget = target as? CopyTarget else {
            throw FlashSaleError.internalFailure("the database at \(opening.description) cannot be copied into")
        }
        // Before anything is written: a target that lacks an index took the copy, and
        // verify then refused it, committed, as not matching the source (found by probing).
        let missing = try holdingUp(opening.description) { try target.missingSchemaObjects() }
        guard missing.isEmpty else {
            throw StoreFailure.unusable(detail: "\(opening.description) is missing \(missing.joined(separator: ", ")); nothing was copied")
        }
        // What the source's snapshot held, and so what was copied: its rows per table, its sales.
        var read: [CopiedTable: Int64] = [:]
        var sourceSales: [CopiedSale] = []
        do {
            try holdingUp(opening.description) { try copyTarget.takeCopy({ write in
                try holdingUp(sourceName) {
                    try source.copyRows { table, row in
                        read[table, default: 0] += 1
                        if table == .sales { sourceSales.append(CopiedSale(row)) }
                        try write(table, row)
                    }
                }
            }, check: { held, copy in
                let differences = try CopyToCommand.differences(read: read, held: held, sourceSales: sourceSales, copy: copy)
                guard differences.isEmpty else {
                    throw FlashSaleError.invariant("the copy in \(opening.description) does not match "
                                                   + "\(context.database.controlCharactersEscaped), so nothing was copied: "
                                                   + CopyToCommand.summary(of: differences))
                }
            }, committing: { stage.advance(to: .committing) }) }
        } catch where stage.value == .committing {
            // Its COMMIT sent and unanswered (the connection lost): the server may have made it.
            throw ExitStatus.error(for: error, afterCommitting: perhaps)
        }
        context.workDone = .committed
        stage.advance(to: .committed)
        // Found by probing: a check cut short (a lost connection, SIGINT) said nothing of
        // the commit, or said to run the command again, which the copy now refuses.
        // Its invariants only: they hold whatever commands write to the copy once committed.
        let violations: [String]
        do {
            violations = try target.verify(nil, clock: context.now())
        } catch {
            throw ExitStatus.error(for: error, afterCommitting: unchecked)
        }
        guard violations.isEmpty else {
            throw FlashSaleError.invariant("the copy in \(opening.description) was committed but fails verify: "
                                           + CopyToCommand.summary(of: violations))
        }
        stage.advance(to: .verified)
        let tables = CopiedTable.allCases
        context.output.success(Rendered(
            text: (["copied \(context.database.controlCharactersEscaped) to \(opening.description)"]
                   + tables.map { "\($0.rawValue) \(read[$0] ?? 0)" } + ["verified: ok"]).joined(separator: "\n"),
            json: .object([
                ("source", .string(context.database)), ("target", .string(opening.description)),
                ("copied", .object(tables.map { ($0.rawValue, .integer(read[$0] ?? 0)) })),
                ("verified", .bool(true)),
            ])))
    }

    /// `step` on one of the copy's two databases, `place`: another process's lock held past
    /// --busy-timeout, or a statement the server canceled, is said of it (found by probing:
    /// a source held up and a target held up both said "the database is locked by another
    /// process"). A failure already said of one is left as it is.
    private static func holdingUp<T>(_ place: String, _ step: () throws -> T) throws -> T {
        do {
            return try step()
        } catch where StoreFailure.of(error)?.code == .busy {
            let cause = ExitStatus.error(for: error)
            throw FlashSaleError(cause.errorCode, "\(place): \(cause.message)")
        }
    }

    /// The first five of `findings`, and how many more.
    private static func summary(of findings: [String]) -> String {
        findings.prefix(5).joined(separator: "; ") + (findings.count > 5 ? "; and \(findings.count - 5) more" : "")
    }

    /// What the copy, about to be committed, holds otherwise than the source snapshot did:
    /// a table's rows (`held`, against those `read` from the snapshot), a sale's counters
    /// or cursor.
    private static func differences(read: [CopiedTable: Int64], held: [CopiedTable: Int64], sourceSales: [CopiedSale],
                                    copy: any StoreReading) throws -> [String] {
        var differences = CopiedTable.allCases.compactMap { table -> String? in
            let sent = read[table] ?? 0, found = held[table] ?? 0
            return sent == found ? nil : "\(table.rawValue): \(sent) copied, \(found) in the copy"
        }
        let targetSales = try Dictionary(copy.allSales().map { sale in
            (sale.id.text, CopiedSale(sale: sale, cursor: try copy.lineCursor(of: sale.id)))
        }) { first, _ in first }
        for sale in sourceSales where targetSales[sale.id] != sale {
            differences.append("sale \(sale.id): \(sale) in the source, \(targetSales[sale.id].map { "\($0)" } ?? "missing") in the copy")
        }
        return differences
    }
}

/// How far the copy has gone, for the thread that meets a stop signal and for a failure:
/// what to say of the copy depends on whether its COMMIT was sent, and answered. The two
/// threads take turns: once a stop has taken the stage, the copy goes no further, so that
/// what the stop says stays true (review: a COMMIT sent as "nothing was copied" was said,
/// a report printed as "not checked" was).
private final class CopyStage: Sendable {
    enum Value: UInt8 {
        case copying, committing, committed, verified, stopping
    }

    private let raw = Atomic<UInt8>(Value.copying.rawValue)

    var value: Value {
        Value(rawValue: raw.load(ordering: .acquiring)) ?? .copying
    }

    /// Moves the copy on to `next`; once a stop has taken the stage, waits for it to end
    /// the process instead.
    func advance(to next: Value) {
        var current = raw.load(ordering: .acquiring)
        while current != Value.stopping.rawValue {
            let (exchanged, found) = raw.compareExchange(expected: current, desired: next.rawValue, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = found
        }
        while true { pause() }
    }

    /// The stage a stop signal met, taken so that the copy goes no further; nil once it is
    /// checked, when it is too late to stop.
    func stop() -> Value? {
        var current = raw.load(ordering: .acquiring)
        while current != Value.verified.rawValue, current != Value.stopping.rawValue {
            let (exchanged, found) = raw.compareExchange(expected: current, desired: Value.stopping.rawValue,
                                                         ordering: .acquiringAndReleasing)
            if exchanged { return Value(rawValue: current) }
            current = found
        }
        return nil
    }
}

/// A sale's counters and cursor, as the source's row and the copy's store give them.
private struct CopiedSale: Equatable, CustomStringConvertible {
    let id: String
    let counters: [Int64]

    private static let names = ["total", "available", "held", "booked", "cancelled", "expired", "decided_through"]

    init(_ row: [CopiedValue]) {
        let columns = CopiedTable.sales.columns
        func value(_ name: String) -> CopiedValue? {
            columns.firstIndex { $0.name == name }.flatMap { row.indices.contains($0) ? row[$0] : nil }
        }
        if case .text(let id)? = value("id") { self.id = id ?? "" } else { id = "" }
        counters = Self.names.map { name in
            if case .integer(let number)? = value(name) { number ?? -1 } else { -1 }
        }
    }

    init(sale: Sale, cursor: RequestID) {
        id = sale.id.text
        let c = sale.counters
        counters = [c.total, c.available, c.held, c.booked, c.cancelled, c.expired, cursor.value]
    }

    var description: String {
        zip(Self.names, counters).map { "\($0) \($1)" }.joined(separator: ", ")
    }
}
