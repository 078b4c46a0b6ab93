import FlashSaleCore
import FlashSaleEngine

enum SuspectsCommand {
    static let limit = OptionSpec("--limit", value: "N", "show at most N suspects, the highest scores (default 20)")
    static let defaultLimit: Int64 = 20

    static let spec = CommandSpec(
        "suspects", arguments: "SALE", options: [limit],
        summary: "who looks like a bot in a sale, ranked, each with a block command to paste",
        details: """
            Reads the sale's counts of attempts, declined ones included, on every path (per 10 s, by \
            requester, agent and user), and what is stored: the users behind an address or agent, from its \
            bookings and requests, and the declines of queued requests. IPv4 addresses count one by one (an \
            IPv4-mapped IPv6 address as its IPv4), IPv6 addresses by /64 network. An address, network or user is \
            a suspect when it has 5 or more distinct users (not for users), 20 or more requests within one 10 s \
            bucket, or 10 or more declines; each such signal scores 10 points at its threshold and 10 more each \
            time it doubles, at most 100 a signal (at 512 times), summed into the score. \
            Its agents then add up to 20 points: a script agent or none (no user agent counts only if some \
            requests of the sale carry one). An agent text is a suspect when it looks like a script, \
            containing curl, wget, python, requests, go-http-client, java, okhttp, libwww, scrapy, httpclient, \
            bot, spider or headless (any case); it scores 20 plus its signals. Rows come highest score first, \
            each with its reasons and a 'flashsale block' command, quoted for the shell, with --db unless the \
            database is ./flashsale.db and $FLASHSALE_DB is unset; or, for one a block in force already covers, \
            that block. --json: an array of {"kind", "value", "score", "reasons", "block", "blocked"}, \
            kind being ip, network, agent or user, blocked the block that covers it or null.
            """
    ) { invocation, context in
        let saleID = try invocation.requiredSaleID()
        let count = try invocation.wholeNumber(limit.name, in: 1...1_000_000) ?? defaultLimit
        let store = try context.store()
        let suspects = try store.suspects(of: saleID, thresholds: .standard)
        let blocks = try Engine(store: store).blocks(in: saleID)
        // The paste must reach the same file: named unless it is the default one and no
        // $FLASHSALE_DB would be taken for it (found by probing: `--db flashsale.db` with it
        // set printed no --db, and the block pasted went into $FLASHSALE_DB's database).
        // `./flashsale.db` is that file too (probe 154).
        var named = Substring(context.database)
        while named.hasPrefix("./") { named = named.dropFirst(2) }
        let isDefault = named == Context.defaultDatabase && !context.variableNamesADatabase
        let database = isDefault ? nil : context.database
        context.output.success(render(suspects, limit: Int(count), sale: saleID, database: database, blocks: blocks))
    }

    /// `blocks`: those in force in the sale; a suspect one of them covers is said to be
    /// blocked, where its block command to paste would change nothing (found by probing).
    static func render(_ suspects: [Suspect], limit: Int, sale: SaleID, database: String?, blocks: [Block]) -> Rendered {
        let shown = Array(suspects.prefix(limit))
        let commands = shown.map { blockCommand(for: $0, sale: sale, database: database) }
        let blockedBy = shown.map { suspect in blocks.first { $0.covers(suspect) } }
        let json = JSON.array(shown.indices.map { index in
            let suspect = shown[index]
            return .object([("kind", .string(suspect.kind.rawValue)), ("value", .string(suspect.value)),
                            ("score", .integer(Int64(suspect.score))), ("reasons", .array(suspect.reasons.map { .string($0) })),
                            ("block", .string(commands[index])),
                            ("blocked", blockedBy[index].map { .string(blockName($0)) } ?? .null)])
        })
        guard !shown.isEmpty else { return Rendered(text: "no suspects in sale \(sale)", json: json) }
        // Each row, then its block command under it, indented past the score column.
        let rows = shown.map { [String($0.score), $0.kind.rawValue, Quoted($0.value).description, $0.reasons.joined(separator: "; ")] }
        let lines = Render.table(["score", "kind", "value", "reasons"], rows).split(separator: "\n", omittingEmptySubsequences: false)
        let indent = String(repeating: " ", count: max(rows.map(\.[0].count).max() ?? 0, "score".count) + 2)
        var text = lines.first.map(String.init) ?? ""
        for (line, (command, block)) in zip(lines.dropFirst(), zip(commands, blockedBy)) {
            let under = block.map { "already blocked: \(Quoted(blockName($0), keeping: 80))" } ?? command
            text += "\n" + line + "\n" + indent + under
        }
        if suspects.count > shown.count {
            text += "\n(\(suspects.count - shown.count) more: --limit \(suspects.count) shows them all)"
        }
        return Rendered(text: text, json: json)
    }

    /// `ip 10.0.0.0/8 in every sale`, `agent containing curl in sale s1`: the block that covers a suspect.
    static func blockName(_ block: Block) -> String {
        Block.name(kind: block.kind, value: block.value, contains: block.contains)
            + (block.sale.map { " in sale \($0)" } ?? " in every sale")
    }

    /// `flashsale block ip 2001:db8:1:2::/64 --sale s1 --reason 'suspects: 40 distinct users'`:
    /// a command line for any POSIX shell. A value starting with `-` goes after `--`, or the
    /// parser would take it for an option.
    static func blockCommand(for suspect: Suspect, sale: SaleID, database: String?) -> String {
        let reason = "suspects: " + (suspect.reasons.first ?? "")
        let value = ShellQuoting.word(suspect.value)
        let dashed = suspect.value.hasPrefix("-")
        var words = ["flashsale", "block", suspect.kind.blockKind.rawValue]
        if !dashed { words.append(value) }
        words += ["--sale", ShellQuoting.word(sale.text), "--reason", ShellQuoting.word(reason)]
        if let database { words += ["--db", ShellQuoting.word(database)] }
        if dashed { words += ["--", value] }
        return words.joined(separator: " ")
    }
}

/// Words for a shell command line that an operator pastes.
enum ShellQuoting {
    /// Bare when only characters no shell treats specially; else in single quotes (an
    /// embedded quote as `'\''`); the characters text output escapes (`forEachScalar`:
    /// controls, which single quotes would carry across lines and to the terminal, and
    /// those that show nothing or reorder the line, so that the command pasted is the one
    /// read) as `$'...'` escapes of their UTF-8 bytes (bash, zsh, ksh and POSIX.1-2024 sh).
    static func word(_ text: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-".utf8)
        if !text.isEmpty, text.utf8.allSatisfy(safe.contains), !text.hasPrefix("=") {
            return text
        }
        var escapes = false
        text.forEachScalar { _, hidden in escapes = escapes || hidden }
        guard escapes else { return singleQuoted(text) }
        var out = "$'"
        text.forEachScalar { scalar, hidden in
            switch scalar {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where hidden:
                for byte in String(scalar).utf8 {
                    let hex = String(byte, radix: 16)
                    out += "\\x" + (hex.count == 1 ? "0" : "") + hex
                }
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "'"
    }

    /// `'text'`, each `'` inside written `'\''`.
    static func singleQuoted(_ text: String) -> String {
        "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}
