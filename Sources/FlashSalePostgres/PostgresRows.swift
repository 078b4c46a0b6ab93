// MARK: - SQL shared by several statements

/// The expiry boundary of `Rules.isExpired`, mirrored once in SQL: a hold is overdue
/// from the instant `now >= expires_at`. `now` is the parameter given.
func overdueHold(now: String) -> String { "(status = 'held' AND expires_at <= \(now))" }
/// What counts against the per-user limit: booked, or held and not yet expired.
func activeBooking(now: String) -> String { "(status IN ('held', 'booked') AND NOT \(overdueHold(now: now)))" }

let saleColumns = """
    state, id, name, total, available, held, booked, cancelled, expired, hold_ms, per_user, per_ip,
    waitlist, starts_at, ends_at, created_at, high_water
    """
// `user` is reserved in PostgreSQL: the column is user_id, named here as the shared
// decoder reads it.
let bookingColumns = """
    status, id, sale, user_id AS "user", created_at, expires_at, confirmed_at, cancelled_at, expired_at,
    ip, user_agent, key
    """
