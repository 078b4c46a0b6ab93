import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport
@testable import FlashSaleStore

/// A database an older flashsale left opens in this one with everything it held.
@Suite struct MigrationTests {
    /// A version 3 file, where each request carried its decision in its own row: k's
    /// request was accepted with the booking its key already had (no event then), a's got
    /// a hold, b's was rejected, c's is still queued.
    private func makeVersion3Database() throws -> OlderDatabase {
        let now: KeyValuePairs<String, SQLValue> = [":t": .integer(T.milliseconds)]
        return try OlderDatabase(version: 3) { db in
            try db.execute(
                """
                INSERT INTO sale (id, name, state, total, available, held, booked, hold_ms, per_user, starts_at, created_at, high_water)
                VALUES ('s1', 's1', 'open', 2, 0, 2, 0, 300000, 1, :t, :t, :t)
                """, now)
            try db.execute(
                """
                INSERT INTO booking (id, sale, user, status, created_at, expires_at, key)
                VALUES ('bk_k', 's1', 'k', 'held', :t, :end, 'K'), ('bk_a', 's1', 'a', 'held', :t, :end, NULL)
                """, [":t": .integer(T.milliseconds), ":end": .integer(minutes(5).milliseconds)])
            try db.execute(
                """
                INSERT INTO request (id, sale, user, key, status, reason, booking, submitted_at, decided_at) VALUES
                    (1, 's1', 'k', 'K', 'accepted', NULL, 'bk_k', :t, :t),
                    (2, 's1', 'a', NULL, 'accepted', NULL, 'bk_a', :t, :t),
                    (3, 's1', 'b', NULL, 'rejected', 'sold_out', NULL, :t, :t),
                    (4, 's1', 'c', NULL, 'queued', NULL, NULL, :t, NULL)
                """, now)
            try db.execute(
                """
                INSERT INTO event (at, sale, kind, booking, user, request, detail) VALUES
                    (:t, 's1', 'held', 'bk_k', 'k', NULL, NULL),
                    (:t, 's1', 'held', 'bk_a', 'a', 2, NULL),
                    (:t, 's1', 'rejected', NULL, 'b', 3, 'sold_out')
                """, now)
        }
    }

    @Test func aVersion3QueueKeepsEveryDecisionAndItsLine() throws {
        let older = try makeVersion3Database()
        defer { older.remove() }
        let path = older.path

        let store = try SQLiteStore(path: path, busyTimeout: .seconds(5))
        let engine = Engine(store: store)
        #expect(try store.db.firstRow("PRAGMA user_version") { $0.int64(0) } == Schema.currentVersion)
        #expect(try engine.request(1).status == .accepted)
        #expect(try engine.request(1).booking == BookingID(trusted: "bk_k"))
        #expect(try engine.request(2).booking == BookingID(trusted: "bk_a"))
        #expect(try engine.request(3).status == .rejected)
        #expect(try engine.request(3).reason == "sold_out")
        #expect(try engine.request(4).status == .queued)
        #expect(try engine.request(4).position == 1)
        #expect(try store.verify(nil, clock: T) == [])
        #expect(try store.db.rows("SELECT first_id, last_id FROM request_run") { [$0.int64(0), $0.int64(1)] } == [[1, 4]])

        // The line goes on where it stopped: c is decided next, once.
        #expect(try engine.processBatch(of: SaleID("s1"), batch: 10, clock: T).rejected == 1)
        #expect(try engine.request(4).reason == "sold_out")
        #expect(try engine.processBatch(of: SaleID("s1"), batch: 10, clock: T).decided == 0)
        #expect(try store.verify(nil, clock: T) == [])
    }

    /// A version 4 file: its bookings, made in an order their ids do not sort in, one with a
    /// key, one from an address, one confirmed; its events, whose seq goes on after them.
    @Test func aVersion4DatabaseKeepsItsBookingsAndEventsInTheirOrder() throws {
        let older = try OlderDatabase(version: 4) { db in
            try db.execute(
                """
                INSERT INTO sale (id, name, state, total, available, held, booked, hold_ms, per_user, starts_at, created_at, high_water)
                VALUES ('s1', 's1', 'open', 5, 2, 2, 1, 300000, 1, :t, :t, :t)
                """, [":t": .integer(T.milliseconds)])
            try db.execute(
                """
                INSERT INTO booking (rowid, id, sale, user, status, created_at, expires_at, confirmed_at, ip, ip_canonical, user_agent, key)
                VALUES (1, 'bk_c', 's1', 'c', 'held', :t, :end, NULL, NULL, NULL, NULL, 'K'),
                       (2, 'bk_a', 's1', 'a', 'booked', :t, :end, :t, '2001:DB8::1', '2001:db8::1', 'curl/8.0', NULL),
                       (3, 'bk_b', 's1', 'b', 'held', :t, :end, NULL, NULL, NULL, NULL, NULL)
                """, [":t": .integer(T.milliseconds), ":end": .integer(minutes(5).milliseconds)])
            for (user, booking) in [("c", "bk_c"), ("a", "bk_a"), ("b", "bk_b")] {
                try db.execute("INSERT INTO event (at, sale, kind, booking, user) VALUES (:t, 's1', 'held', :booking, :user)",
                               [":t": .integer(T.milliseconds), ":booking": .text(booking), ":user": .text(user)])
            }
            try db.execute("INSERT INTO event (at, sale, kind, booking, user) VALUES (:t, 's1', 'booked', 'bk_a', 'a')",
                           [":t": .integer(T.milliseconds)])
            // A seq the events skip: kept as it is.
            try db.execute("UPDATE event SET seq = 7 WHERE seq = 4")
        }
        defer { older.remove() }
        let path = older.path
        let db = older.db
        let before = try db.rows("SELECT * FROM booking ORDER BY rowid") { row in
            (0..<13).map { row.optionalText(Int32($0)) ?? "NULL" }.joined(separator: "|")
        }
        let events = "SELECT seq, at, sale, kind, booking, user, request, detail FROM event ORDER BY seq"
        let eventsBefore = try db.rows(events) { row in (0..<8).map { row.optionalText(Int32($0)) ?? "NULL" }.joined(separator: "|") }

        let store = try SQLiteStore(path: path, busyTimeout: .seconds(5))
        let engine = Engine(store: store)
        #expect(try store.db.firstRow("PRAGMA user_version") { $0.int64(0) } == Schema.currentVersion)
        // The migration sorted in temporary files; the connection keeps them in memory again.
        #expect(try store.db.firstRow("PRAGMA temp_store") { $0.int64(0) } == 2)
        let after = try store.db.rows(
            """
            SELECT id, sale, user, status, created_at, expires_at, confirmed_at, cancelled_at, expired_at, ip, user_agent,
                   key, ip_canonical FROM booking ORDER BY rowid
            """) { row in (0..<13).map { row.optionalText(Int32($0)) ?? "NULL" }.joined(separator: "|") }
        #expect(after == before)
        #expect(try store.db.rows(events) { row in (0..<8).map { row.optionalText(Int32($0)) ?? "NULL" }.joined(separator: "|") }
                == eventsBefore)
        #expect(try engine.bookings(of: SaleID("s1"), status: nil, user: nil, clock: T).map(\.id.text) == ["bk_c", "bk_a", "bk_b"])
        #expect(try store.verify(nil, clock: T) == [])
        // The indexes and constraints are there again.
        let indexes = try store.db.rows("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'booking' ORDER BY name") {
            $0.text(0)
        }
        #expect(indexes == ["booking_by_ip", "booking_by_key", "booking_by_user", "booking_held_by_expiry", "sqlite_autoindex_booking_1"])
        #expect(throws: SQLiteError.self) { try store.db.execute("UPDATE booking SET status = 'lost' WHERE id = 'bk_b'") }
        #expect(throws: SQLiteError.self) { try store.db.execute("UPDATE booking SET key = 'K' WHERE id = 'bk_b'") }
        #expect(try engine.cancel(BookingID(trusted: "bk_b"), in: SaleID("s1"), user: "b", force: false, clock: T).status == .cancelled)
        #expect(try engine.events(after: 0, sale: nil, limit: 10).map(\.seq) == [1, 2, 3, 7, 8])
        #expect(try store.verify(nil, clock: T) == [])
    }

    /// A version 5 file, which counted overdue holds through the index alone: its held
    /// bookings (two expiring in one second, one in the next; a booked one, not counted)
    /// are counted by second in the migration.
    @Test func aVersion5DatabaseCountsItsHeldBookingsBySecond() throws {
        let end = minutes(5).milliseconds
        let older = try OlderDatabase(version: 5) { db in
            try db.execute(
                """
                INSERT INTO sale (id, name, state, total, available, held, booked, hold_ms, per_user, starts_at, created_at, high_water)
                VALUES ('s1', 's1', 'open', 5, 1, 3, 1, 300000, 1, :t, :t, :t)
                """, [":t": .integer(T.milliseconds)])
            try db.execute(
                """
                INSERT INTO booking (id, sale, user, status, created_at, expires_at, confirmed_at)
                VALUES ('bk_a', 's1', 'a', 'held', :t, :end, NULL),
                       ('bk_b', 's1', 'b', 'held', :t, :end + 999, NULL),
                       ('bk_c', 's1', 'c', 'held', :t, :end + 1000, NULL),
                       ('bk_d', 's1', 'd', 'booked', :t, :end, :t)
                """, [":t": .integer(T.milliseconds), ":end": .integer(end)])
            for user in ["a", "b", "c", "d"] {
                try db.execute("INSERT INTO event (at, sale, kind, booking, user) VALUES (:t, 's1', 'held', :booking, :user)",
                               [":t": .integer(T.milliseconds), ":booking": .text("bk_\(user)"), ":user": .text(user)])
            }
        }
        defer { older.remove() }
        let path = older.path

        let store = try SQLiteStore(path: path, busyTimeout: .seconds(5))
        let engine = Engine(store: store)
        #expect(try store.db.firstRow("PRAGMA user_version") { $0.int64(0) } == Schema.currentVersion)
        #expect(try store.db.rows("SELECT second, held FROM hold_second ORDER BY second") { [$0.int64(0), $0.int64(1)] }
                == [[end / 1000, 2], [end / 1000 + 1, 1]])
        #expect(try store.verify(nil, clock: T) == [])
        for (offset, expected) in [(-1, 0), (0, 1), (999, 2), (1000, 3)] as [(Int64, Int64)] {
            #expect(try engine.status(SaleID("s1"), clock: Instant(milliseconds: end + offset)).overdue == expected)
        }
    }

    /// A version 6 file, which stored no count of attempts: the attempts it did store count
    /// as the suspects report counted them. A direct hold (b, from a script), a request that
    /// got a hold (a), a rejected one (c), a queued one (d), all from one /64 within 10 s;
    /// the request's hold is its request's attempt, not a second one.
    @Test func aVersion6DatabaseCountsTheAttemptsItStored() throws {
        let times: KeyValuePairs<String, SQLValue> = [":t": .integer(T.milliseconds), ":end": .integer(minutes(5).milliseconds)]
        let older = try OlderDatabase(version: 6) { db in
            try db.execute(
                """
                INSERT INTO sale (id, name, state, total, available, held, booked, hold_ms, per_user, starts_at, created_at,
                                  high_water, decided_through)
                VALUES ('s1', 's1', 'open', 2, 0, 2, 0, 300000, 1, :t, :t, :t, 2)
                """, [":t": .integer(T.milliseconds)])
            try db.execute(
                """
                INSERT INTO booking (id, sale, user, status, created_at, expires_at, ip, user_agent)
                VALUES ('bk_a', 's1', 'a', 'held', :t, :end, '2001:db8:1:2::a', NULL),
                       ('bk_b', 's1', 'b', 'held', :t, :end, '2001:db8:1:2::b', 'curl/8.4.0')
                """, times)
            try db.execute(
                """
                INSERT INTO request (id, sale, user, ip, user_agent, submitted_at) VALUES
                    (1, 's1', 'a', '2001:db8:1:2::a', NULL, :t),
                    (2, 's1', 'c', '2001:db8:1:2::c', NULL, :t + 5000),
                    (3, 's1', 'd', '2001:db8:1:2::d', NULL, :t + 9000)
                """, [":t": .integer(T.milliseconds)])
            try db.execute("INSERT INTO request_run (sale, first_id, last_id) VALUES ('s1', 1, 3)")
            try db.execute(
                """
                INSERT INTO event (at, sale, kind, booking, user, request, detail) VALUES
                    (:t, 's1', 'held', 'bk_b', 'b', NULL, NULL),
                    (:t, 's1', 'held', 'bk_a', 'a', 1, NULL),
                    (:t, 's1', 'rejected', NULL, 'c', 2, 'sold_out')
                """, [":t": .integer(T.milliseconds)])
        }
        defer { older.remove() }
        let path = older.path

        let store = try SQLiteStore(path: path, busyTimeout: .seconds(5))
        #expect(try Schema.version(store.db) == Schema.currentVersion)
        let metrics = try #require(try Engine(store: store).metrics(of: SaleID("s1"), clock: T).first)
        #expect(metrics.attempts == AttemptTotals(attempts: 4, declined: [.soldOut: 1]))
        let counters = try store.db.rows(
            """
            SELECT kind, value, bucket, attempts, declined, scripted, agentless, script FROM attempt_counter
            WHERE kind != 'sale' ORDER BY kind, value
            """
        ) { row in
            try "\(row.text("kind")) \(row.text("value")) \(row.int64("bucket") - T.milliseconds) \(row.int64("attempts")) "
                + "\(row.int64("declined")) \(row.int64("scripted")) \(row.int64("agentless")) \(row.optionalText("script") ?? "-")"
        }
        #expect(counters == [
            "agent curl/8.4.0 0 1 0 0 0 -",
            "network 2001:db8:1:2::/64 0 4 0 1 3 curl",
            "user a 0 1 0 0 1 -", "user b 0 1 0 1 0 curl", "user c 0 1 0 0 1 -", "user d 0 1 0 0 1 -",
        ])
        let suspects = try store.suspects(of: SaleID("s1"), thresholds: {
            var thresholds = SuspicionThresholds()
            thresholds.distinctUsers = 4
            return thresholds
        }())
        #expect(suspects.first?.value == "2001:db8:1:2::/64")
        #expect(suspects.first?.reasons.first == "4 distinct users")
    }

    /// Version 9: the IPv6 addresses a version 8 file counted for the per-IP limit, each in
    /// full, become their /64's key, so that the holds and bookings made before count for
    /// their network; IPv4 addresses stay.
    @Test func aVersion8DatabaseCountsItsIPv6BookingsByNetwork() throws {
        let older = try OlderDatabase(version: 8) { db in
            try db.execute(
                """
                INSERT INTO sale (id, name, state, total, available, held, booked, hold_ms, per_user, per_ip, starts_at,
                                  created_at, high_water, decided_through)
                VALUES ('s1', 's1', 'open', 5, 3, 1, 1, 300000, 1, 1, :t, :t, :t, 0)
                """, [":t": .integer(T.milliseconds)])
            try db.execute(
                """
                INSERT INTO booking (id, sale, user, status, created_at, expires_at, ip, ip_canonical)
                VALUES ('bk_a', 's1', 'a', 'booked', :t, :end, '2001:db8:1:2::a', '2001:0db8:0001:0002:0000:0000:0000:000a'),
                       ('bk_b', 's1', 'b', 'held', :t, :end, '203.0.113.7', '203.0.113.7')
                """, [":t": .integer(T.milliseconds), ":end": .integer(minutes(5).milliseconds)])
        }
        defer { older.remove() }
        let path = older.path

        let store = try SQLiteStore(path: path, busyTimeout: .seconds(5))
        #expect(try Schema.version(store.db) == Schema.currentVersion)
        #expect(try store.db.rows("SELECT ip_canonical FROM booking ORDER BY id") { try $0.text("ip_canonical") }
                    == ["2001:0db8:0001:0002::/64", "203.0.113.7"])
        let engine = Engine(store: store)
        #expect(throws: SaleError.self) {
            _ = try engine.book(BookingRequest(sale: SaleID("s1"), user: "c", ip: "2001:db8:1:2::c", userAgent: nil, key: nil), clock: T)
        }
        _ = try engine.book(BookingRequest(sale: SaleID("s1"), user: "d", ip: "2001:db8:1:3::d", userAgent: nil, key: nil), clock: T)
    }
}

/// A file an older flashsale made: schema `version`, filled by `fill` in the transaction
/// that made it, in a directory of its own (`remove()`); `db` stays open, to read it as it
/// was.
final class OlderDatabase {
    let directory: URL
    let path: String
    let db: Connection

    init(version: Int, _ fill: (Connection) throws -> Void) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("flashsale-migration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("v\(version).db").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        db = try Connection(path: path, busyTimeout: .seconds(5))
        try db.execute("PRAGMA journal_mode = WAL")
        // Version 7's count of the attempts stored before calls the report's functions.
        try SuspectFunctions.register(on: db)
        try db.writeTransaction {
            for statement in Schema.migrations[0..<version].joined() {
                try db.execute(statement)
            }
            try db.execute("PRAGMA user_version = \(version)")
            try fill(db)
        }
    }

    /// Removes its directory; deferred by the test, so that the file outlives its last use.
    func remove() {
        try? FileManager.default.removeItem(at: directory)
    }
}
