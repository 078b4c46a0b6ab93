import FlashSaleCore
import FlashSaleEngine

/// The statements a sale day runs once per request, bound by position (see RowStatement),
/// each prepared on its first use: a `book` is a process of its own that prepares what it
/// runs inside the write lock, where preparing a submit's 64-row INSERT as well took more
/// than half of its instructions.
final class RowStatements {
    private let db: Connection
    private var countActiveBookingsStatement: RowStatement?
    private var countActiveFromAddressStatement: RowStatement?
    private var insertHoldStatement: RowStatement?
    private var appendEventStatement: RowStatement?
    private var insertRequestStatement: RowStatement?
    private var insertRequestsStatement: RowStatement?
    private var insertKeyedRequestsStatement: RowStatement?

    init(_ db: Connection) {
        self.db = db
    }

    var countActiveBookings: RowStatement {
        get throws {
            try prepared(&countActiveBookingsStatement, RowStatement(
                db, "SELECT count(*) FROM booking WHERE sale = :sale AND user = :user AND \(activeBooking)",
                parameters: [":sale", ":user", ":now"]))
        }
    }

    var countActiveFromAddress: RowStatement {
        get throws {
            try prepared(&countActiveFromAddressStatement, RowStatement(
                db, "SELECT count(*) FROM booking WHERE sale = :sale AND ip_canonical = :ip AND \(activeBooking)",
                parameters: [":sale", ":ip", ":now"]))
        }
    }

    var insertHold: RowStatement {
        get throws {
            try prepared(&insertHoldStatement, RowStatement(
                db, """
                INSERT INTO booking (id, sale, user, status, created_at, expires_at, ip, ip_canonical, user_agent, key)
                VALUES (:id, :sale, :user, 'held', :created_at, :expires_at, :ip, :ip_canonical, :user_agent, :key)
                """,
                parameters: [":id", ":sale", ":user", ":created_at", ":expires_at", ":ip", ":ip_canonical", ":user_agent", ":key"]))
        }
    }

    var appendEvent: RowStatement {
        get throws {
            try prepared(&appendEventStatement, RowStatement(
                db, """
                INSERT INTO event (at, sale, kind, booking, user, request, detail)
                VALUES (:at, :sale, :kind, :booking, :user, :request, :detail)
                """,
                parameters: [":at", ":sale", ":kind", ":booking", ":user", ":request", ":detail"]))
        }
    }

    var insertRequest: RowStatement {
        get throws {
            try prepared(&insertRequestStatement, RowStatement(
                db, """
                INSERT INTO request (sale, user, ip, user_agent, key, submitted_at)
                VALUES (:sale, :user, :ip, :user_agent, :key, :now)
                """,
                parameters: [":sale", ":user", ":ip", ":user_agent", ":key", ":now"]))
        }
    }

    var insertRequests: RowStatement {
        get throws {
            try prepared(&insertRequestsStatement, RowStatement(
                db, RequestRows.insert(rows: RequestRows.perStatement, keyed: false),
                parameters: RequestRows.parameters(rows: RequestRows.perStatement, keyed: false)))
        }
    }

    var insertKeyedRequests: RowStatement {
        get throws {
            try prepared(&insertKeyedRequestsStatement, RowStatement(
                db, RequestRows.insert(rows: RequestRows.perStatement, keyed: true),
                parameters: RequestRows.parameters(rows: RequestRows.perStatement, keyed: true)))
        }
    }

    /// The statement in `slot`, made (SQL text, names and all) only when it is not there yet.
    private func prepared(_ slot: inout RowStatement?, _ make: @autoclosure () throws -> RowStatement) throws -> RowStatement {
        if let slot { return slot }
        let statement = try make()
        slot = statement
        return statement
    }
}

// MARK: - SQL shared by several statements

/// The expiry boundary of `Rules.isExpired`, mirrored once in SQL: a hold is overdue
/// from the instant `:now >= expires_at`.
let overdueHold = "(status = 'held' AND expires_at <= :now)"
/// What counts against the per-user limit: booked, or held and not yet expired.
let activeBooking = "(status IN ('held', 'booked') AND NOT \(overdueHold))"

// The statements a busy sale runs for every request, spelled once: a statement's text is
// its key in the connection's cache of prepared statements.
let selectSale = "SELECT \(saleColumns) FROM sale WHERE id = :id"
let selectBookingByKey = "SELECT \(bookingColumns) FROM booking WHERE sale = :sale AND key = :key"
let firstHoldExpiry = "SELECT min(expires_at) FROM booking WHERE sale = :sale AND status = 'held'"
// An owner's active bookings, each as the instant it stops counting: a hold's expiry, or
// NULL for one booked (`ActiveBookingEnds`).
let activeBookingEndsOfUser = "SELECT CASE status WHEN 'held' THEN expires_at END FROM booking "
    + "WHERE sale = :sale AND user = :owner AND \(activeBooking)"
let activeBookingEndsFromAddress = "SELECT CASE status WHEN 'held' THEN expires_at END FROM booking "
    + "WHERE sale = :sale AND ip_canonical = :owner AND \(activeBooking)"
// A sale's bookings in the order they were made (rowid), without sorting, so in constant
// memory: a whole sale by reading the table in order, where the index (sale, user) would
// find them in user order and SQLite would sort them all in memory (224 MiB for an export
// of a million); one user's through that index, whose entries for a user are in rowid order.
let selectBookingsOfSale = "SELECT \(bookingColumns) FROM booking NOT INDEXED WHERE sale = :sale ORDER BY rowid"
let selectBookingsOfUser = "SELECT \(bookingColumns) FROM booking WHERE sale = :sale AND user = :user ORDER BY rowid"
let selectBookingPageOfUser = """
    SELECT \(bookingColumns) FROM booking WHERE sale = :sale AND user = :user AND rowid > :after ORDER BY rowid LIMIT :limit
    """
let selectOverdueHolds = """
    SELECT \(bookingColumns) FROM booking WHERE sale = :sale AND \(overdueHold)
    ORDER BY \(holdOrder) LIMIT :limit
    """

// In the order their decoders read them, which makes each read a first guess (see
// ColumnFinder); any order decodes the same.
let saleColumns = """
    state, id, name, total, available, held, booked, cancelled, expired, hold_ms, per_user, per_ip,
    waitlist, starts_at, ends_at, created_at, high_water
    """
let bookingColumns = """
    status, id, sale, user, created_at, expires_at, confirmed_at, cancelled_at, expired_at,
    ip, user_agent, key
    """
