import FlashSaleCore

/// A database's tables as every store reads and writes them, for moving a database from one
/// store to another (`copy-to`): each store maps its own columns to these, so neither knows
/// the other's SQL. Everything a command answers from is here, ids, seqs and the order
/// bookings were made in included; what a store derives from these rows (SQLite's runs of
/// request ids and holds per second, PostgreSQL's id counters) it makes again.
public enum CopiedTable: String, CaseIterable, Sendable {
    // In the order a copy writes them: each row's sale before it.
    case sales, bookings, requests, events, blocks, attempts

    /// What one of its rows is called in a message ("booking bk_…").
    public var rowName: String {
        switch self {
        case .attempts: "attempt counter"
        default: String(rawValue.dropLast())
        }
    }

    /// The columns, in the order of a row's values.
    public var columns: [CopiedColumn] {
        switch self {
        case .sales:
            [.text("id"), .text("name"), .text("state"), .integer("total"), .integer("available"), .integer("held"),
             .integer("booked"), .integer("cancelled"), .integer("expired"), .integer("hold_ms"), .integer("per_user"),
             .optionalInteger("per_ip"), .flag("waitlist"), .integer("starts_at"), .optionalInteger("ends_at"),
             .integer("created_at"), .integer("high_water"), .integer("decided_through")]
        case .bookings:
            // `made`: the order the store made them in (HoldKey.made), which the copy keeps.
            [.integer("made"), .text("id"), .text("sale"), .text("user_id"), .text("status"), .integer("created_at"),
             .integer("expires_at"), .optionalInteger("confirmed_at"), .optionalInteger("cancelled_at"),
             .optionalInteger("expired_at"), .optionalText("ip"), .optionalText("ip_canonical"),
             .optionalText("user_agent"), .optionalText("key")]
        case .requests:
            [.integer("id"), .text("sale"), .text("user_id"), .optionalText("ip"), .optionalText("user_agent"),
             .optionalText("key"), .integer("submitted_at")]
        case .events:
            [.integer("seq"), .integer("at"), .text("sale"), .text("kind"), .optionalText("booking"),
             .optionalText("user_id"), .optionalInteger("request"), .optionalText("detail")]
        case .blocks:
            [.integer("id"), .text("kind"), .text("value"), .flag("contains"), .optionalText("sale"),
             .optionalText("reason"), .integer("created_at")]
        case .attempts:
            [.text("sale"), .text("kind"), .text("value"), .integer("bucket"), .integer("attempts"),
             .integer("declined"), .integer("scripted"), .integer("agentless"), .optionalText("script"),
             .optionalText("users")]
        }
    }
}

/// A column of a copied table: its name and what its values are.
public struct CopiedColumn: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case integer, text
        /// A yes or no, carried as 1 or 0.
        case flag
    }

    public let name: String
    public let kind: Kind
    public let isOptional: Bool

    static func integer(_ name: String) -> CopiedColumn { CopiedColumn(name: name, kind: .integer, isOptional: false) }
    static func optionalInteger(_ name: String) -> CopiedColumn { CopiedColumn(name: name, kind: .integer, isOptional: true) }
    static func text(_ name: String) -> CopiedColumn { CopiedColumn(name: name, kind: .text, isOptional: false) }
    static func optionalText(_ name: String) -> CopiedColumn { CopiedColumn(name: name, kind: .text, isOptional: true) }
    static func flag(_ name: String) -> CopiedColumn { CopiedColumn(name: name, kind: .flag, isOptional: false) }
}

extension CopiedTable {
    /// The columns that name a row to a person, by their place in a row: its id (a
    /// booking's `bk_…`, not the order it was made in: found by probing, "bookings 5"), an
    /// attempt counter's sale, kind, value and bucket.
    public var namingColumns: [Int] {
        switch self {
        case .bookings: [1]
        case .attempts: [0, 1, 2, 3]
        case .sales, .requests, .events, .blocks: [0]
        }
    }

    /// The refusal of a row whose `column` holds text PostgreSQL's text cannot (`what`: a
    /// NUL character, bytes that are not UTF-8), which a SQLite file may (written there by
    /// hand): the source's data, named by the row's key, not the server's failure. `fix`
    /// is what to do, before "the source".
    public func refusal(of what: String, key: String, column: String, fix: String) -> FlashSaleError {
        .badInput("\(rowName) \(Quoted(key)) has \(what) in its \(column), which PostgreSQL's text cannot hold: \(fix) the "
                  + "source; nothing was copied")
    }
}

/// One value of a copied row; nil is SQL's NULL.
public enum CopiedValue: Sendable, Equatable {
    case integer(Int64?)
    case text(String?)
}

/// A store a database can be copied out of.
public protocol CopySource: AnyObject {
    /// Every row of every table, from one snapshot while others keep writing, table by
    /// table in `CopiedTable.allCases` order, each in the order of its key (a sale's id,
    /// bookings' `made`, ids and seqs), handed to `body` one at a time: a million rows
    /// take the memory of one.
    func copyRows(_ body: (CopiedTable, [CopiedValue]) throws -> Void) throws
}

/// A store a database can be copied into.
public protocol CopyTarget: AnyObject {
    /// Writes every row `rows` hands over (as `CopySource.copyRows` does) in one
    /// transaction: all of them or, whatever fails or kills the process, none. Refuses
    /// with `CopyRefusal.targetHoldsData`, writing nothing, a database that already holds
    /// any row. `check` is given,
    /// before the commit and in the same transaction, the rows each table then holds and
    /// the transaction to read: what it throws rolls the copy back. `committing` is called
    /// as the COMMIT is sent: from then on, a failure may come after the commit.
    func takeCopy(_ rows: ((CopiedTable, [CopiedValue]) throws -> Void) throws -> Void,
                  check: (_ held: [CopiedTable: Int64], _ copy: any StoreReading) throws -> Void,
                  committing: () -> Void) throws
}

/// Why a copy was refused before anything was written.
public enum CopyRefusal: Error, Equatable, Sendable {
    /// The target already holds flashsale data: a copy only goes into an empty database,
    /// so that nothing of it mixes with what was there. `detail` says where.
    case targetHoldsData(detail: String)
}
