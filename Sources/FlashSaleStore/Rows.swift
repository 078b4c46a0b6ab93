import FlashSaleCore

/// The statements a sale day runs once per request, bound by position (see RowStatement).
struct RowStatements {
    let countActiveBookings: RowStatement
    let countActiveFromAddress: RowStatement
    let appendEvent: RowStatement
    let insertRequest: RowStatement
    let insertRequests: RowStatement

    init(_ db: Connection) throws {
        countActiveBookings = try RowStatement(
            db, "SELECT count(*) FROM booking WHERE sale = :sale AND user = :user AND \(activeBooking)",
            parameters: [":sale", ":user", ":now"])
        countActiveFromAddress = try RowStatement(
            db, "SELECT count(*) FROM booking WHERE sale = :sale AND ip_canonical = :ip AND \(activeBooking)",
            parameters: [":sale", ":ip", ":now"])
        appendEvent = try RowStatement(
            db, """
                INSERT INTO event (at, sale, kind, booking, user, request, detail)
                VALUES (:at, :sale, :kind, :booking, :user, :request, :detail)
                """,
            parameters: [":at", ":sale", ":kind", ":booking", ":user", ":request", ":detail"])
        insertRequest = try RowStatement(
            db, """
                INSERT INTO request (sale, user, ip, user_agent, key, submitted_at)
                VALUES (:sale, :user, :ip, :user_agent, :key, :now)
                """,
            parameters: [":sale", ":user", ":ip", ":user_agent", ":key", ":now"])
        insertRequests = try RowStatement(db, RequestRows.insert(rows: RequestRows.perStatement),
                                          parameters: RequestRows.parameters(rows: RequestRows.perStatement))
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
let selectOverdueHolds = """
    SELECT \(bookingColumns) FROM booking WHERE sale = :sale AND \(overdueHold)
    ORDER BY \(holdOrder) LIMIT :limit
    """

let saleColumns = """
    id, name, state, total, available, held, booked, cancelled, expired, hold_ms, per_user,
    starts_at, ends_at, created_at, high_water, waitlist, per_ip
    """
let bookingColumns = """
    id, sale, user, status, created_at, expires_at, confirmed_at, cancelled_at, expired_at,
    ip, user_agent, key
    """

// MARK: - Rows

func decodeSale(_ row: Row) throws -> Sale {
    guard let state = OperatorState(rawValue: row.text(2)) else {
        throw FlashSaleError.cantOpen("sale \(Quoted(row.text(0))) has the unknown state '\(Quoted(row.text(2)))'")
    }
    return Sale(
        id: SaleID(trusted: row.text(0)), name: row.text(1), operatorState: state,
        counters: Counters(total: row.int64(3), available: row.int64(4), held: row.int64(5),
                           booked: row.int64(6), cancelled: row.int64(7), expired: row.int64(8)),
        hold: Span(milliseconds: row.int64(9)), perUser: row.int64(10), perIP: row.optionalInt64(16), waitlist: row.int64(15) != 0,
        startsAt: Instant(milliseconds: row.int64(11)), endsAt: row.optionalInt64(12).map(Instant.init),
        createdAt: Instant(milliseconds: row.int64(13)), highWater: Instant(milliseconds: row.int64(14)))
}

func decodeBooking(_ row: Row) throws -> Booking {
    guard let status = BookingStatus(rawValue: row.text(3)) else {
        throw FlashSaleError.cantOpen("booking \(Quoted(row.text(0))) has the unknown status '\(Quoted(row.text(3)))'")
    }
    return Booking(
        id: BookingID(trusted: row.text(0)), sale: SaleID(trusted: row.text(1)), user: row.text(2), status: status,
        createdAt: Instant(milliseconds: row.int64(4)), expiresAt: Instant(milliseconds: row.int64(5)),
        confirmedAt: row.optionalInt64(6).map(Instant.init), cancelledAt: row.optionalInt64(7).map(Instant.init),
        expiredAt: row.optionalInt64(8).map(Instant.init),
        ip: row.optionalText(9), userAgent: row.optionalText(10), key: row.optionalText(11))
}
