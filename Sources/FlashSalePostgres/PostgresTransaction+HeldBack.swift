import FlashSaleCore
import FlashSaleEngine

/// The holds and events a run of decisions writes, held back and sent as one statement each
/// (`ArrayRows`) just before the transaction's next statement, whatever it is, or its commit:
/// a group of thousands of holds costs two round trips, not two per hold, and every statement
/// still sees every write before it. A write the server refuses fails that next statement,
/// and with it the transaction, as it would have failed the write.
struct HeldBackWrites {
    var holds: [(hold: Booking, address: String?)] = []
    var events: [NewEvent] = []
}

extension PostgresTransaction {
    func sendHeldBack() throws {
        guard !heldBack.holds.isEmpty || !heldBack.events.isEmpty else { return }
        let writes = heldBack
        heldBack = HeldBackWrites()
        if !writes.holds.isEmpty {
            var rows = ArrayRows()
            rows.text("id", writes.holds.map(\.hold.id.text))
            rows.text("sale", writes.holds.map(\.hold.sale.text))
            rows.text("user_id", writes.holds.map(\.hold.user.text))
            rows.int("created_at", writes.holds.map(\.hold.createdAt.milliseconds))
            rows.int("expires_at", writes.holds.map(\.hold.expiresAt.milliseconds))
            rows.optionalText("ip", writes.holds.map(\.hold.ip))
            rows.optionalText("ip_canonical", writes.holds.map(\.address))
            rows.optionalText("user_agent", writes.holds.map(\.hold.userAgent))
            rows.optionalText("key", writes.holds.map(\.hold.key))
            try store.session.execute(
                "INSERT INTO booking (id, sale, user_id, created_at, expires_at, ip, ip_canonical, user_agent, key, status) "
                    + rows.select("'held'"), rows.values)
        }
        if !writes.events.isEmpty {
            var rows = ArrayRows()
            rows.int("at", writes.events.map(\.at.milliseconds))
            rows.text("sale", writes.events.map(\.sale))
            rows.text("kind", writes.events.map(\.kind.rawValue))
            rows.optionalText("booking", writes.events.map { $0.booking?.text })
            rows.optionalText("user_id", writes.events.map { $0.user?.text })
            rows.optionalInt("request", writes.events.map { $0.request?.value })
            rows.optionalText("detail", writes.events.map(\.detail))
            try store.session.execute(
                "INSERT INTO pending_event (at, sale, kind, booking, user_id, request, detail) " + rows.select(), rows.values)
        }
    }
}
