import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
@testable import FlashSalePostgres
import FlashSaleTestSupport

/// What only PostgreSQL's side can show: each test on a schema of its own, dropped after.
@Suite(.enabled(if: TestPostgres.isConfigured, "FLASHSALE_TEST_PG is not set: no PostgreSQL server to test"))
struct PostgresStoreTests {
    let location: PostgresLocation

    init() throws {
        location = try #require(TestPostgres.server).newLocation()
    }

    private func open(busyTimeout: Span = .seconds(30), create: Bool = true) throws -> PostgresStore {
        try PostgresStore(location: location, busyTimeout: busyTimeout, createIfMissing: create)
    }

    private func dropSchema() {
        _ = try? open().session.execute("DROP SCHEMA \(quotedIdentifier(location.schema)) CASCADE")
    }

    private func createSales(_ ids: String..., in store: PostgresStore) throws {
        for id in ids {
            _ = try Engine(store: store).createSale(SaleDefinition(id: SaleID(id), name: nil, inventory: 10, hold: .seconds(300),
                                                               perUser: 1, waitlist: false, startsAt: T, endsAt: nil), clock: T)
        }
    }

    /// Sale s1 with `inventory` items, a hold of 300 s and one per user, and a line of a
    /// request from each of `users`, in order.
    @discardableResult
    private func saleWithLine(of users: [String], inventory: Int64, on engine: Engine) throws -> Engine.SubmitReport {
        _ = try engine.createSale(SaleDefinition(id: SaleID("s1"), name: nil, inventory: inventory, hold: .seconds(300),
                                                 perUser: 1, startsAt: T, endsAt: nil), clock: T)
        var records = users.enumerated().map { ReadOutcome.record(RequestRecord(line: $0.offset + 1, user: $0.element)) }[...]
        return try engine.submit(to: SaleID("s1"), clock: T, skipping: nil) { records.popFirst() }
    }

    /// Found by probing: a write transaction whose client was gone (its COMMIT lost on
    /// the way), and whose server process the role may not end, held its sales' rows for
    /// as long as the server took to see the connection gone: its last write sets the
    /// server to end it once idle for a minute, unless a shorter time is set.
    @Test(arguments: [("0", "1min"), ("2min", "1min"), ("10s", "10s"), ("1min", "1min")])
    func aWriteTransactionsLastWriteSetsItToEndOnceIdleForAMinute(before: String, after: String) throws {
        let store = try open()
        defer { dropSchema() }
        try store.session.execute("BEGIN")
        try store.session.execute("SET LOCAL idle_in_transaction_session_timeout = '\(before)'")
        _ = try store.session.firstRow("SELECT \(PostgresTransaction.idleTimeout) AS set", []) { _ in () }
        let setting = try store.session.firstRow("SELECT current_setting('idle_in_transaction_session_timeout') AS setting", []) {
            try $0.text("setting")
        }
        try store.session.execute("ROLLBACK")
        #expect(setting == after)
    }

    /// Under any default isolation of the role: found by probing, the processes that
    /// waited for the first one's migration under repeatable read or serializable read
    /// the version table through a snapshot older than its row ("no version", 73). The
    /// migrations' lock is held until all eight wait for it, so that they do.
    @Test(arguments: [nil, "repeatable read", "serializable"])
    func eightStoresMigrateOneNewSchemaAtOnce(roleIsolation: String?) throws {
        var location = location
        let admin = try PostgresSession(location: location, busyTimeout: .seconds(30))
        if let roleIsolation {
            location.user = TestPostgres.newSchema()
            try admin.execute("CREATE ROLE \(location.user) LOGIN SUPERUSER PASSWORD '\(location.password ?? "")'")
            try admin.execute("ALTER ROLE \(location.user) SET default_transaction_isolation = '\(roleIsolation)'")
        }
        defer {
            _ = try? admin.execute("DROP SCHEMA IF EXISTS \(quotedIdentifier(location.schema)) CASCADE")
            if roleIsolation != nil { _ = try? admin.execute("DROP ROLE \(location.user)") }
        }
        try admin.execute("BEGIN")
        try admin.execute("SELECT pg_advisory_xact_lock(\(PostgresSchema.lockClass), hashtext($1))", [.text(location.schema)])
        let results = Results()
        let opened = location
        let group = DispatchGroup()
        for _ in 0..<8 {
            // Threads of their own: each blocks on the lock, which would starve Dispatch's pool.
            group.enter()
            Thread {
                results.add(Result { try PostgresStore(location: opened, busyTimeout: .seconds(30), createIfMissing: true) }.map { _ in () })
                group.leave()
            }.start()
        }
        let waiting = """
            SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = $1::oid
                AND objid = ((hashtext($2)::bigint + 4294967296) % 4294967296)::oid
            """
        let lock: [SQLValue] = [.int(Int64(PostgresSchema.lockClass)), .text(location.schema)]
        let deadline = Date().addingTimeInterval(20)
        while try admin.count(waiting, lock) < 8, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(try admin.count(waiting, lock) == 8)
        try admin.execute("COMMIT")
        group.wait()
        for result in results.all { try result.get() }
        let versions = "SELECT version FROM \(quotedIdentifier(location.schema)).schema_version"
        #expect(try admin.rows(versions) { try $0.int64("version") } == [PostgresSchema.currentVersion])
    }

    /// Found by probing: a role's (or database's) settings reached flashsale's sessions:
    /// `synchronous_commit = off` lost in a crash a booking `book` had reported, and
    /// `client_encoding = 'SJIS'` stored users' names as other characters, or failed a
    /// valid one as a bug (exit 1). Both are set at start-up, above the role's.
    @Test func aRolesSettingsChangeNeitherDurabilityNorText() throws {
        var location = location
        let admin = try PostgresSession(location: location, busyTimeout: .seconds(30))
        location.user = TestPostgres.newSchema()
        try admin.execute("CREATE ROLE \(location.user) LOGIN SUPERUSER PASSWORD '\(location.password ?? "")'")
        defer {
            _ = try? admin.execute("DROP SCHEMA IF EXISTS \(quotedIdentifier(location.schema)) CASCADE")
            _ = try? admin.execute("DROP ROLE \(location.user)")
        }
        try admin.execute("ALTER ROLE \(location.user) SET synchronous_commit = off")
        try admin.execute("ALTER ROLE \(location.user) SET client_encoding = 'SJIS'")
        let store = try PostgresStore(location: location, busyTimeout: .seconds(30), createIfMissing: true)
        let settings = "SELECT current_setting('synchronous_commit') AS durable, current_setting('client_encoding') AS text"
        #expect(try store.session.firstRow(settings) { [try $0.text("durable"), try $0.text("text")] } == ["on", "UTF8"])
        let engine = Engine(store: store)
        _ = try engine.createSale(SaleDefinition(id: SaleID("s1"), name: "Télé", inventory: 10, hold: .seconds(300), perUser: 1,
                                                 startsAt: T, endsAt: nil), clock: T)
        for user: UserID in ["ā x", "Zoë", "😀", "힣"] {
            _ = try engine.book(BookingRequest(sale: SaleID("s1"), user: user, ip: nil, userAgent: nil, key: nil), clock: T)
        }
        let stored = "SELECT user_id FROM \(quotedIdentifier(location.schema)).booking ORDER BY made"
        #expect(try admin.rows(stored) { try $0.text("user_id") } == ["ā x", "Zoë", "😀", "힣"])
        #expect(try engine.sale(SaleID("s1")).name == "Télé")
    }

    /// Found by probing: in a database whose encoding is not UTF-8 (LATIN1), text it
    /// cannot hold failed as a bug (exit 1), and then (follow-up probe) every request of
    /// the group it was in, a whole stream. Such a database is refused when it is opened
    /// (73), before anything is made in it.
    @Test func aDatabaseNotInUTF8IsRefusedBeforeAnythingIsMadeInIt() throws {
        let admin = try PostgresSession(location: location, busyTimeout: .seconds(30))
        var location = location
        location.database = TestPostgres.newSchema()
        try admin.execute("CREATE DATABASE \(location.database) ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'")
        defer { _ = try? admin.execute("DROP DATABASE \(location.database) WITH (FORCE)") }
        for create in [true, false] {
            do {
                // Without `create`, the first statement's answer says what opening found.
                let store = try PostgresStore(location: location, busyTimeout: .seconds(30), createIfMissing: create)
                _ = try Engine(store: store).sales(clock: T)
                Issue.record("opened")
            } catch {
                let expected: StoreFailure = create
                    ? .unusable(detail: "database \(location.database) on \(location.server) is encoded in LATIN1, which cannot hold "
                                + "every text flashsale keeps (UTF-8); make it with ENCODING 'UTF8'")
                    : .missingDatabase(path: location.place)
                #expect(StoreFailure.of(error) == expected, "\(error)")
            }
        }
        let inDatabase = try PostgresSession(location: location, busyTimeout: .seconds(30))
        #expect(try inDatabase.count("SELECT count(*) FROM pg_namespace WHERE nspname = $1", [.text(location.schema)]) == 0)
        // A schema made there before (by hand here, as a flashsale that did not look would
        // have): refused too, when opened for a command that makes nothing, or for one that may.
        try inDatabase.execute("CREATE SCHEMA \(quotedIdentifier(location.schema))")
        for statement in PostgresSchema.migrations.joined() { try inDatabase.execute(statement) }
        try inDatabase.execute("CREATE TABLE schema_version (version bigint NOT NULL)")
        try inDatabase.execute("INSERT INTO schema_version VALUES ($1)", [.int(PostgresSchema.currentVersion)])
        for create in [false, true] {
            let refused = failure {
                let store = try PostgresStore(location: location, busyTimeout: .seconds(30), createIfMissing: create)
                _ = try Engine(store: store).sales(clock: T)
            }
            #expect(refused?.errorCode == .cantOpen && refused?.message.contains("is encoded in LATIN1") == true,
                    "\(String(describing: refused))")
        }
    }

    /// Found by probing: a view, a type, a sequence or a function in the schema, and no
    /// version, failed the migration as a bug (exit 1) or was used beside flashsale's.
    @Test(arguments: ["CREATE VIEW sale AS SELECT 1 AS x", "CREATE TYPE event AS (a int)", "CREATE SEQUENCE booking_made_seq",
                      "CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42'", "CREATE COLLATION bytes FROM \"C\"",
                      "CREATE TEXT SEARCH CONFIGURATION words (COPY = simple)"])
    func aSchemaOfAnotherProgramsObjectsIsRefusedAndLeftAsItWas(making: String) throws {
        let session = try PostgresSession(location: location, busyTimeout: .seconds(30))
        defer { _ = try? session.execute("DROP SCHEMA \(quotedIdentifier(location.schema)) CASCADE") }
        try session.execute("CREATE SCHEMA \(quotedIdentifier(location.schema))")
        try session.execute(making)
        let objects = "SELECT count(*) FROM pg_class JOIN pg_namespace n ON n.oid = relnamespace WHERE nspname = $1"
        let before = try session.count(objects, [.text(location.schema)])
        let error = failure { _ = try open() }
        #expect(error?.errorCode == .cantOpen)
        #expect(error?.message.contains("objects, not flashsale") == true, "\(error?.message ?? "")")
        #expect(try session.count(objects, [.text(location.schema)]) == before)
    }

    /// Found by probing: a version set back by hand ran the migrations after it again, which
    /// failed on what they make as a bug (exit 1).
    @Test(arguments: [1, 3])
    func aVersionSetBackByHandIsRefused(version: Int) throws {
        let made = try open()
        defer { _ = try? made.session.execute("DROP SCHEMA \(quotedIdentifier(location.schema)) CASCADE") }
        try made.session.execute("UPDATE schema_version SET version = \(version)")
        let error = failure { _ = try open() }
        #expect(error?.errorCode == .cantOpen)
        #expect(error?.message.contains("is not what its version says") == true, "\(error?.message ?? "")")
        #expect(try made.session.count("SELECT version FROM schema_version") == version)
    }

    /// What verify looks for is what the migrations make, no more and no less.
    @Test func theSchemasObjectsAreTheListVerifyLooksFor() throws {
        defer { dropSchema() }
        let store = try open()
        #expect(Set(try store.session.rows(PostgresSchema.objectsQuery) { try $0.text("object") }) == PostgresSchema.objects)
        try store.session.execute("DROP TABLE block")
        #expect(try store.verify(nil, clock: T)
                == ["database structure: missing index block_pkey, index block_unique, sequence block_id_seq, table block"])
        #expect(try store.missingSchemaObjects() == ["index block_pkey", "index block_unique", "sequence block_id_seq", "table block"])
        // Found by probing: a column dropped by hand, and verify said ok.
        try store.session.execute("ALTER TABLE attempt_counter DROP COLUMN users")
        #expect(try store.missingSchemaObjects()
                == ["column attempt_counter.users", "index block_pkey", "index block_unique", "sequence block_id_seq", "table block"])
    }

    /// An earlier flashsale's schema, of version 1, is brought up to date when it is opened.
    @Test func aVersionOneSchemaIsMigrated() throws {
        defer { dropSchema() }
        _ = try olderSchema(version: 1)
        // A command's first transaction, whose version it asked for with its statements.
        let store = try open(create: false)
        _ = try Engine(store: store).createSale(SaleDefinition(id: SaleID("s1"), name: nil, inventory: 10, hold: .seconds(300),
                                                           perUser: 1, waitlist: false, startsAt: T, endsAt: nil), clock: T)
        #expect(try store.session.count("SELECT version FROM schema_version") == PostgresSchema.currentVersion)
        #expect(try store.session.count("SELECT count(*) FROM sale") == 1)
        #expect(try store.session.count(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname IN ('booking_made_key', 'booking_by_sale')",
            [.text(location.schema)]) == 0)
        #expect(try textColumnsNotInByteOrder(store) == 0)
    }

    /// A version 4 schema whose line was half decided, its rejections one event each, comes
    /// through versions 5 (runs of rejections) and 6 (a request's key its sale and id) whole:
    /// the old decisions read as before, the rest of the line is decided as runs.
    @Test func aVersionFourSchemaWithAHalfDecidedLineIsMigrated() throws {
        defer { dropSchema() }
        let session = try olderSchema(version: 4)
        try session.execute(
            """
            INSERT INTO sale (id, name, state, total, available, held, booked, hold_ms, per_user, starts_at, created_at,
                              high_water, decided_through)
            VALUES ('s1', 's1', 'open', 0, 0, 0, 0, 300000, 1, $1, $1, $1, 2)
            """, [.int(T.milliseconds)])
        try session.execute(
            "INSERT INTO request (id, sale, user_id, submitted_at) SELECT n, 's1', 'u' || n, $1 FROM generate_series(1, 4) AS n",
            [.int(T.milliseconds)])
        try session.execute("UPDATE request_counter SET last = 4")
        try session.execute(
            """
            INSERT INTO event (seq, at, sale, kind, user_id, request, detail)
            SELECT n, $1, 's1', 'rejected', 'u' || n, n, 'sold_out' FROM generate_series(1, 2) AS n
            """, [.int(T.milliseconds)])
        try session.execute("UPDATE event_counter SET last = 2")

        let store = try open(create: false)
        let engine = Engine(store: store)
        #expect(try engine.processBatch(of: SaleID("s1"), batch: 10, clock: T).rejected == 2)
        #expect(try store.session.count("SELECT version FROM schema_version") == PostgresSchema.currentVersion)
        let log = try engine.events(after: 0, sale: nil, limit: .max)
        #expect(log.map { "\($0.seq) \($0.kind.rawValue) \($0.request?.value ?? 0)" } == (1...4).map { "\($0) rejected \($0)" })
        #expect(try (1...4).map { try engine.request(RequestID(Int64($0))).status } == Array(repeating: .rejected, count: 4))
        #expect(try store.session.count("SELECT count(*) FROM rejected_run") == 1)
        #expect(try store.verify(nil, clock: T) == [])
    }

    /// Version 8: the IPv6 addresses a version 7 schema counted for the per-IP limit, each
    /// in full, become their /64's key, as in SQLite; IPv4 addresses stay.
    @Test func aVersionSevenSchemaCountsItsIPv6BookingsByNetwork() throws {
        defer { dropSchema() }
        let session = try olderSchema(version: 7)
        try session.execute(
            """
            INSERT INTO sale (id, name, state, total, available, held, booked, hold_ms, per_user, per_ip, starts_at,
                              created_at, high_water, decided_through)
            VALUES ('s1', 's1', 'open', 5, 3, 1, 1, 300000, 1, 1, $1, $1, $1, 0)
            """, [.int(T.milliseconds)])
        try session.execute(
            """
            INSERT INTO booking (id, sale, user_id, status, created_at, expires_at, ip, ip_canonical)
            VALUES ('bk_a', 's1', 'a', 'booked', $1, $2, '2001:db8:1:2::a', '2001:0db8:0001:0002:0000:0000:0000:000a'),
                   ('bk_b', 's1', 'b', 'held', $1, $2, '203.0.113.7', '203.0.113.7')
            """, [.int(T.milliseconds), .int(T.milliseconds + 300_000)])

        let store = try open(create: false)
        let engine = Engine(store: store)
        #expect(throws: SaleError.self) {
            _ = try engine.book(BookingRequest(sale: SaleID("s1"), user: "c", ip: "2001:db8:1:2::c", userAgent: nil, key: nil), clock: T)
        }
        #expect(try store.session.count("SELECT version FROM schema_version") == PostgresSchema.currentVersion)
        #expect(try store.session.count("SELECT count(*) FROM booking WHERE ip_canonical = '2001:0db8:0001:0002::/64'") == 1)
        #expect(try store.session.count("SELECT count(*) FROM booking WHERE ip_canonical = '203.0.113.7'") == 1)
        _ = try engine.book(BookingRequest(sale: SaleID("s1"), user: "d", ip: "2001:db8:1:3::d", userAgent: nil, key: nil), clock: T)
    }

    /// A version 8 schema's keys' indexes are made again leading with the key, and a keyed
    /// request made before is still found by its key.
    @Test func aVersionEightSchemaIndexesItsKeysByKey() throws {
        defer { dropSchema() }
        let session = try olderSchema(version: 8)
        try session.execute(
            """
            INSERT INTO sale (id, name, state, total, available, held, booked, hold_ms, per_user, starts_at,
                              created_at, high_water, decided_through)
            VALUES ('s1', 's1', 'open', 5, 5, 0, 0, 300000, 1, $1, $1, $1, 0)
            """, [.int(T.milliseconds)])
        try session.execute("INSERT INTO request (id, sale, user_id, key, submitted_at) VALUES (1, 's1', 'a', 'k1', $1)",
                            [.int(T.milliseconds)])
        try session.execute("UPDATE request_counter SET last = 1")
        let store = try open(create: false)
        let again = try Engine(store: store).submit(
            BookingRequest(sale: SaleID("s1"), user: "a", ip: nil, userAgent: nil, key: "k1"), clock: T)
        #expect(again == .repeated(RequestID(1)))
        let definitions = try store.session.rows(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname LIKE '%by_key' ORDER BY indexname",
            [.text(location.schema)]) { try $0.text("indexdef") }
        #expect(definitions.map { $0.contains("(key, sale) WHERE (key IS NOT NULL)") } == [true, true], "\(definitions)")
    }

    /// The schema as an older flashsale left it, at `version`, on a session of its own.
    private func olderSchema(version: Int) throws -> PostgresSession {
        let session = try PostgresSession(location: location, busyTimeout: .seconds(30))
        try session.execute("CREATE SCHEMA \(quotedIdentifier(location.schema))")
        for migration in PostgresSchema.migrations[..<version] {
            for statement in migration { try session.execute(statement) }
        }
        try session.execute("CREATE TABLE schema_version (version bigint NOT NULL)")
        try session.execute("INSERT INTO schema_version VALUES (\(version))")
        return session
    }

    /// The schema's text columns whose collation is not "C" (schema version 4).
    private func textColumnsNotInByteOrder(_ store: PostgresStore) throws -> Int64 {
        try store.session.count(
            """
            SELECT count(*) FROM information_schema.columns JOIN information_schema.tables USING (table_schema, table_name)
            WHERE table_schema = $1 AND table_type = 'BASE TABLE' AND data_type = 'text'
                AND collation_name IS DISTINCT FROM 'C'
            """, [.text(location.schema)])
    }

    /// On a database whose text sorts by language (ICU's en-US: `a1` before `B2`, `c_3`
    /// before `c-3`), flashsale's rows still compare byte by byte, as on SQLite: the sales
    /// are listed in the same order on both stores.
    @Test(.enabled(if: TestPostgres.offersICU, "the server has no ICU collations to make a database with"))
    func salesAreListedInByteOrderWhateverTheDatabasesCollation() throws {
        let database = TestPostgres.newSchema()
        let server = try PostgresSession(location: location, busyTimeout: .seconds(30))
        try server.execute("CREATE DATABASE \(database) TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'")
        defer { _ = try? server.execute("DROP DATABASE \(database) WITH (FORCE)") }
        var inLanguageOrder = location
        inLanguageOrder.database = database
        let store = try PostgresStore(location: inLanguageOrder, busyTimeout: .seconds(30), createIfMissing: true)
        #expect(try store.session.rows("SELECT id FROM (VALUES ('B2'), ('a1')) AS sale (id) ORDER BY id") { try $0.text("id") }
                == ["a1", "B2"], "the database does not sort by language: this test shows nothing")
        let ids = ["c_3", "a1", "C4", "c-3", "B2"]
        for id in ids {
            _ = try Engine(store: store).createSale(SaleDefinition(id: SaleID(id), name: nil, inventory: 10, hold: .seconds(300),
                                                               perUser: 1, waitlist: false, startsAt: T, endsAt: nil), clock: T)
        }
        #expect(try Engine(store: store).sales(clock: T).map(\.sale.id.text) == ["B2", "C4", "a1", "c-3", "c_3"])
    }

    /// A schema name may be 63 bytes, and a channel no more: `flashsale.` and such a name
    /// failed every commit ("channel name too long").
    @Test func aSchemaOfTheLongestNameCommitsAndNotifiesItsFollowers() throws {
        let long = String((TestPostgres.newSchema() + String(repeating: "x", count: 63)).prefix(63))
        let location = PostgresLocation(endpoint: self.location.endpoint, user: self.location.user,
                                        password: self.location.password, database: self.location.database,
                                        tls: .disable, schema: long)
        #expect(location.changeChannel.utf8.count == 63)
        let store = try PostgresStore(location: location, busyTimeout: .seconds(30), createIfMissing: true)
        defer { _ = try? store.session.execute("DROP SCHEMA \(quotedIdentifier(long)) CASCADE") }
        var watcher = try store.changeWatcher()
        try createSales("s1", in: store)
        let deadline = Date().addingTimeInterval(5)
        var changed = try watcher.hasChanged()
        while !changed, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
            changed = try watcher.hasChanged()
        }
        #expect(changed)
        #expect(try Engine(store: store).sales(clock: T).map(\.sale.id.text) == ["s1"])
    }

    /// Refused by the first transaction, a read as a write, whose version it asked for with
    /// its statements; and nothing is made.
    @Test func aMissingSchemaIsNotMadeWithoutCreate() throws {
        let reading = failure { _ = try open(create: false).read { try $0.sale(SaleID("s1")) } }
        #expect(reading?.errorCode == .cantOpen)
        #expect(reading?.message.contains(location.schema) == true)
        let writing = failure { try createSales("s1", in: open(create: false)) }
        #expect(writing?.errorCode == .cantOpen)
        // Found by probing: suspects, which makes a temporary table first, said "locked" (75).
        let suspects = failure { _ = try open(create: false).suspects(of: SaleID("s1"), thresholds: SuspicionThresholds()) }
        #expect(suspects?.errorCode == .cantOpen, "\(suspects?.message ?? "")")
        let observer = try PostgresSession(location: location, busyTimeout: .seconds(30))
        #expect(try observer.count("SELECT count(*) FROM pg_namespace WHERE nspname = $1", [.text(location.schema)]) == 0)
    }

    /// A schema of a newer flashsale is refused before anything is committed in it.
    @Test func aNewerSchemaIsRefusedBeforeAnythingIsWritten() throws {
        defer { dropSchema() }
        let made = try open()
        try made.session.execute("UPDATE schema_version SET version = version + 1")
        let error = failure { try createSales("s1", in: open(create: false)) }
        #expect(error?.errorCode == .cantOpen)
        #expect(error?.message.contains("newer flashsale") == true)
        #expect(try made.session.count("SELECT count(*) FROM sale") == 0)
    }

    /// A version no flashsale writes, below 1 or none at all (the table changed by hand), is
    /// refused as unusable, as `init` is: migrating from it trapped on a negative version and
    /// ran every migration again on an empty table.
    @Test(arguments: ["UPDATE schema_version SET version = -1", "UPDATE schema_version SET version = 0",
                      "DELETE FROM schema_version"])
    func aVersionNoFlashsaleWritesIsRefused(tampering: String) throws {
        let made = try open()
        // Through this store: opening another is what is refused.
        defer { _ = try? made.session.execute("DROP SCHEMA \(quotedIdentifier(location.schema)) CASCADE") }
        try made.session.execute(tampering)
        for create in [false, true] {
            let error = failure { try createSales("s1", in: open(create: create)) }
            #expect(error?.errorCode == .cantOpen)
            #expect(error?.message.contains("which no flashsale writes") == true)
        }
        #expect(try made.session.count("SELECT count(*) FROM sale") == 0)
    }

    /// The transaction that takes a seq last commits last: a transaction of another sale
    /// that commits while this one is open gets the lower seq, so a reader who saw it never
    /// misses this one's event below it.
    @Test func eventSeqsFollowCommitOrderAcrossSales() throws {
        defer { dropSchema() }
        let first = try open()
        let second = try open()
        try createSales("s1", "s2", in: first)
        let open = try first.beginWrite()
        _ = try open.requireSale(SaleID("s1"))
        try open.appendEvent(NewEvent(at: T, sale: "s1", kind: .saleClosed))
        // Another sale decides and commits meanwhile: the sale lock of s1 does not hold it up.
        _ = try Engine(store: second).book(BookingRequest(sale: SaleID("s2"), user: UserID(trusted: "u"), ip: nil,
                                                          userAgent: nil, key: nil), clock: T)
        let seenFirst = try second.read { try $0.latestEventSeq() }
        try open.commit(.decisions)
        let events = try second.read { try $0.events(after: 0, sale: nil, limit: 100) }
        let closed = try #require(events.first { $0.kind == .saleClosed })
        let held = try #require(events.first { $0.kind == .held })
        #expect(held.seq < closed.seq)
        #expect(closed.seq > seenFirst)
        #expect(events.map(\.seq) == Array(1...Int64(events.count)))
    }

    /// A decision expires an overdue hold of its sale before it decides, and a `serve`
    /// group may go on to lock another sale: the expiry's event must not take the seq
    /// counter's row lock before the commit, or another sale's commit would wait for it
    /// (and a group waiting for that other sale's row would deadlock with it).
    @Test func anExpiryLeavesTheSeqCounterToTheCommit() throws {
        defer { dropSchema() }
        let first = try open()
        let second = try open(busyTimeout: Span(milliseconds: 300))
        try createSales("s1", "s2", in: first)
        let engine = Engine(store: first)
        _ = try engine.book(BookingRequest(sale: SaleID("s1"), user: UserID(trusted: "u1"), ip: nil, userAgent: nil, key: nil),
                            clock: T)
        let later = T.adding(.seconds(301))
        let expiring = try first.beginWrite()
        _ = try expiring.requireSale(SaleID("s1"))
        #expect(try expiring.expireOverdueHolds(in: SaleID("s1"), at: later, limit: 1, by: .book) == 1)
        _ = try Engine(store: second).book(BookingRequest(sale: SaleID("s2"), user: UserID(trusted: "u2"), ip: nil,
                                                          userAgent: nil, key: nil), clock: later)
        try expiring.commit(.decisions)
        // In seq order: the expiry, committed last, comes after the other sale's hold.
        let events = try second.read { try $0.events(after: 0, sale: nil, limit: 100) }.filter { $0.kind != .saleCreated }
        #expect(events.map(\.kind) == [.held, .held, .expired])
    }

    @Test func aLockHeldPastTheBusyTimeoutIsBusy() throws {
        defer { dropSchema() }
        let holder = try open()
        try createSales("s1", in: holder)
        let waiter = try open(busyTimeout: Span(milliseconds: 200))
        let held = try holder.beginWrite()
        _ = try held.requireSale(SaleID("s1"))
        defer { held.rollback() }
        let error = failure {
            _ = try Engine(store: waiter).book(BookingRequest(sale: SaleID("s1"), user: UserID(trusted: "u"), ip: nil,
                                                              userAgent: nil, key: nil), clock: T)
        }
        #expect(error?.errorCode == .busy)
        // A wait behind another writer, said as one: not the statement timeout's cancel
        // ("the server canceled a statement"), which fired first when both were equal.
        #expect(error.map { "\($0)" }?.contains("lock timeout") == true, "\(String(describing: error))")
    }

    /// A commit's many events (by COPY) wait for the seq counter's row lock, taken after
    /// the rest of its writes (holds by COPY, attempt counts enough to go on their own):
    /// past the busy timeout the commit is busy, said as the lock's wait, and nothing of
    /// it is kept.
    @Test func aCommitWaitingPastTheBusyTimeoutForTheCounterIsBusy() throws {
        defer { dropSchema() }
        let holder = try open()
        try createSales("s1", in: holder)
        let events = try holder.session.count("SELECT count(*) FROM event")
        try holder.session.execute("BEGIN")
        try holder.session.execute("UPDATE event_counter SET last = last")
        defer { _ = try? holder.session.execute("ROLLBACK") }
        let waiter = try open(busyTimeout: Span(milliseconds: 200))
        let error = failure {
            let transaction = try waiter.beginWrite()
            _ = try transaction.requireSale(SaleID("s1"))
            // More counters than a commit's statement carries (`sendIfLarge`): they go ahead of it.
            var attempts = AttemptTally(capacity: 2_000)
            for index in 0..<(PostgresTransaction.eventsCopiedFrom + 44) {
                let user = UserID(trusted: "u\(index)")
                try transaction.insertHold(Booking(id: BookingID(trusted: "bk_\(index)"), sale: SaleID(trusted: "s1"), user: user,
                                                   status: .held, createdAt: T, expiresAt: T.adding(.seconds(300)), confirmedAt: nil,
                                                   cancelledAt: nil, expiredAt: nil, ip: nil, userAgent: nil, key: nil),
                                           countedByAddress: false)
                try transaction.appendEvent(NewEvent(at: T, sale: "s1", kind: .held, booking: BookingID(trusted: "bk_\(index)"), user: user))
            }
            for index in 0..<2_000 {
                attempts.add(user: UserID(trusted: "a\(index)"), ip: "10.1.\(index / 256).\(index % 256)", userAgent: nil, declined: nil, at: T)
            }
            try transaction.addAttempts(attempts, of: SaleID("s1"))
            try transaction.commit(.decisions)
        }
        #expect(error?.errorCode == .busy)
        #expect(error.map { "\($0)" }?.contains("lock timeout") == true, "\(String(describing: error))")
        let observer = try open()
        #expect(try observer.session.count("SELECT count(*) FROM booking") == 0)
        #expect(try observer.session.count("SELECT count(*) FROM event") == events)
        #expect(try observer.session.count("SELECT count(*) FROM attempt_counter") == 0)
    }

    /// Two transactions that lock two sales in opposite orders deadlock; PostgreSQL rolls
    /// one back, and the write path runs it again instead of failing.
    @Test func aDeadlockIsRetriedInsideTheWrite() throws {
        defer { dropSchema() }
        let first = try open()
        let second = Unchecked(try open())
        let observer = try open()
        try createSales("s1", "s2", in: first)
        let started = DispatchSemaphore(value: 0)
        let attempts = Results()
        let thread = Thread {
            attempts.add(Result {
                try second.value.write { transaction in
                    _ = try transaction.requireSale(SaleID("s2"))
                    started.signal()
                    _ = try transaction.requireSale(SaleID("s1"))
                    try transaction.raiseHighWater(of: SaleID("s1"), to: T)
                }
            })
        }
        var runs = 0
        try first.write { transaction in
            runs += 1
            _ = try transaction.requireSale(SaleID("s1"))
            if runs == 1 {
                thread.start()
                started.wait()
                // The other one waits for s1 first: this one's wait for s2 closes the cycle.
                while try observer.session.count(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()") == 0 {
                    Thread.sleep(forTimeInterval: 0.01)
                }
            }
            _ = try transaction.requireSale(SaleID("s2"))
            try transaction.raiseHighWater(of: SaleID("s2"), to: T)
        }
        while attempts.all.isEmpty { Thread.sleep(forTimeInterval: 0.01) }
        for result in attempts.all { try result.get() }
    }

    /// A book that waits for its sale's row lock counts the hold that the lock's holder made
    /// meanwhile: its read-ahead, sent right behind the locking read, runs once the lock is
    /// granted, from a snapshot taken after it (one taken before would miss the hold).
    @Test func aBookWaitingForTheLockCountsTheHoldMadeMeanwhile() throws {
        defer { dropSchema() }
        let holder = try open()
        let waiter = Unchecked(try open())
        let observer = try open()
        try createSales("s1", in: holder)
        let held = try holder.beginWrite()
        _ = try held.requireSale(SaleID("s1"))
        let outcome = Results()
        let thread = Thread {
            outcome.add(Result {
                _ = try Engine(store: waiter.value).book(BookingRequest(sale: SaleID("s1"), user: UserID(trusted: "u"), ip: nil,
                                                                      userAgent: nil, key: nil), clock: T)
            })
        }
        thread.start()
        while try observer.session.count(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()") == 0 {
            Thread.sleep(forTimeInterval: 0.01)
        }
        // The holder gives the user its one hold, and commits.
        try holder.session.execute(
            "INSERT INTO booking (id, sale, user_id, status, created_at, expires_at) VALUES ('bk_first', 's1', 'u', 'held', $1, $2)",
            [.int(T.milliseconds), .int(T.milliseconds + 300_000)])
        try holder.session.execute("UPDATE sale SET available = available - 1, held = held + 1 WHERE id = 's1'")
        try held.commit(.decisions)
        while outcome.all.isEmpty { Thread.sleep(forTimeInterval: 0.01) }
        guard case .failure(SaleError.declined(let decline)) = try #require(outcome.all.first) else {
            Issue.record("the waiting book was not declined: \(outcome.all)")
            return
        }
        #expect(decline.reason == .userLimit)
        #expect(try observer.session.count("SELECT count(*) FROM booking WHERE user_id = 'u'") == 1)
    }

    /// The arrays `ArrayRows` binds, encoded by flashsale (`BinaryArray`), come back from
    /// the server element for element: empty, at the ends of their range, in any script.
    @Test func theBoundArraysReachTheServerAsSent() throws {
        defer { dropSchema() }
        let session = try open().session
        let texts = ["", "u1", "é", "日本語", "🛒 flash", String(repeating: "x", count: 70_000)]
        let ints: [Int64] = [.min, -1, 0, 1, .max]
        let bools = [true, false, true]
        #expect(try session.rows("SELECT value FROM unnest($1::text[]) WITH ORDINALITY AS given (value, n) ORDER BY n", [.texts(texts)]) {
            try $0.text("value")
        } == texts)
        #expect(try session.rows("SELECT value FROM unnest($1::int8[]) WITH ORDINALITY AS given (value, n) ORDER BY n", [.ints(ints)]) {
            try $0.int64("value")
        } == ints)
        #expect(try session.rows("SELECT value FROM unnest($1::bool[]) WITH ORDINALITY AS given (value, n) ORDER BY n", [.bools(bools)]) {
            try $0.bool("value")
        } == bools)
        #expect(try session.count("SELECT cardinality($1::text[]) + cardinality($2::int8[]) + cardinality($3::bool[]) + 1",
                                  [.texts([]), .ints([]), .bools([])]) == 1)
    }

    /// A file's runs of ids after its first are sent without waiting for the counter
    /// (`enqueue(new:)`): with a keyed request among them, and in the next file, every id
    /// is still taken once, in the file's order, with no gap.
    @Test func aFileOfManyRunsTakesConsecutiveIdsAroundItsKeyedRequests() throws {
        defer { dropSchema() }
        let store = try open()
        try createSales("s1", in: store)
        let engine = Engine(store: store)
        func submit(_ users: Range<Int>, keyedAt keyed: Int? = nil) throws -> Engine.SubmitReport {
            var records = users.map {
                ReadOutcome.record(RequestRecord(line: $0, user: "u\($0)", key: $0 == keyed ? "k\($0)" : nil))
            }[...]
            return try engine.submit(to: SaleID("s1"), clock: T, skipping: nil) { records.popFirst() }
        }
        let runs = PostgresTransaction(store: store).rowsAtOnce
        let first = try submit(1..<(2 * runs + 10), keyedAt: runs + 5)
        let second = try submit((2 * runs + 10)..<(3 * runs + 20))
        #expect(first.firstID == RequestID(1) && first.lastID == RequestID(Int64(2 * runs + 9)))
        #expect(second.firstID == RequestID(Int64(2 * runs + 10)) && second.lastID == RequestID(Int64(3 * runs + 19)))
        #expect(try store.session.count("SELECT last FROM request_counter") == Int64(3 * runs + 19))
        #expect(try store.session.count("SELECT count(*) FROM request WHERE user_id = 'u' || id") == Int64(3 * runs + 19))
    }

    /// A file's keyed requests go in with its runs (`enqueue(new:)`), their keys read ahead
    /// a run at a time: a key stored by a run copied in after its read-ahead is a repeat
    /// when it comes again in that run, not a second request (which the key's unique index
    /// would refuse, failing the file).
    @Test func aKeyCopiedInAfterItsRunsReadAheadIsARepeatAfterwards() throws {
        defer { dropSchema() }
        let store = try open()
        try createSales("s1", in: store)
        let runs = PostgresTransaction(store: store).rowsAtOnce
        // Run 1 is copied in at its end; run 2 has a repeat, so its copy waits for run 3's
        // first line, after run 3's keys were read.
        let keys = [10: "a", runs + 4: "a", runs + 500: "b", 2 * runs + 100: "b"]
        var records = (1...(2 * runs + 200)).map { line in
            ReadOutcome.record(RequestRecord(line: line, user: keys[line].map { "owner of \($0)" } ?? "u\(line)", key: keys[line]))
        }[...]
        let report = try Engine(store: store).submit(to: SaleID("s1"), clock: T, skipping: nil) { records.popFirst() }
        #expect(report.repeated == 2)
        #expect(report.enqueued == Int64(2 * runs + 198))
        #expect(try store.session.count("SELECT count(*) FROM request WHERE key IS NOT NULL") == 2)
        #expect(try store.session.count("SELECT max(id) FROM request") == Int64(2 * runs + 198))
    }

    /// `submit --file` copies its runs in COPY's text format (`CopyText`): values holding
    /// that format's own characters, or spelling its NULL and its end of data, arrive as sent.
    @Test func aFileRunArrivesAsSentWhateverItsCharacters() throws {
        defer { dropSchema() }
        let store = try open()
        try createSales("s1", in: store)
        let agents: [String?] = ["tab\there", "new\nline", "carriage\rreturn", "back\\slash", "\\N", "\\.", "ends\\",
                                 "\\\\", "", nil, "plain é ✓"]
        let sent = agents.enumerated().map { index, agent in
            RequestRecord(line: index + 1, user: "u\\\(index)", ip: agent == nil ? nil : "10.0.0.\(index)", userAgent: agent)
        }
        var records = sent.map { ReadOutcome.record($0) }[...]
        _ = try Engine(store: store).submit(to: SaleID("s1"), clock: T, skipping: nil) { records.popFirst() }
        let stored = try store.session.rows("SELECT user_id, ip, user_agent FROM request ORDER BY id") {
            [try $0.text("user_id"), try $0.optionalText("ip"), try $0.optionalText("user_agent")]
        }
        #expect(stored == sent.map { [$0.user, $0.ip, $0.userAgent] })
    }

    /// A COPY the server refuses fails the transaction it went with, as a refused INSERT
    /// would: here a row already holds an id the counter has not given yet (no flashsale
    /// writes one: only SQL by hand), and the whole file's requests are rolled back.
    @Test func aRefusedCopyRollsTheFileBack() throws {
        defer { dropSchema() }
        let store = try open()
        try createSales("s1", in: store)
        try store.session.execute("INSERT INTO request (id, sale, user_id, submitted_at) VALUES (5000, 's1', 'by hand', 0)")
        var records = (0..<(PostgresTransaction(store: store).rowsAtOnce * 2)).map {
            ReadOutcome.record(RequestRecord(line: $0 + 1, user: "u\($0)"))
        }[...]
        #expect(throws: (any Error).self) {
            try Engine(store: store).submit(to: SaleID("s1"), clock: T, skipping: nil) { records.popFirst() }
        }
        #expect(try store.session.count("SELECT count(*) FROM request") == 1)
        #expect(try store.session.count("SELECT last FROM request_counter") == 0)
    }

    /// A group's many holds are copied in (`copyHeldHolds`): each arrives as decided, every
    /// column in its place, in the order made, whatever its characters.
    @Test func aGroupsHoldsArriveAsDecided() throws {
        defer { dropSchema() }
        let store = try open()
        try createSales("s1", in: store)
        let oddAgents = ["tab\there", "new\nline", "back\\slash", "\\N", "\\."]
        // Enough to be copied: the commit's statement carries them otherwise.
        let holds = (0..<(PostgresTransaction.holdsCopiedFrom + 44)).map { index in
            Booking(id: BookingID(trusted: "bk_\(index)"), sale: SaleID(trusted: "s1"), user: UserID(trusted: "u\(index)"), status: .held,
                    createdAt: T, expiresAt: T.adding(.seconds(300)), confirmedAt: nil, cancelledAt: nil, expiredAt: nil,
                    ip: index % 3 == 0 ? nil : "10.0.\(index / 256).\(index % 256)",
                    userAgent: index % 7 == 0 ? nil : oddAgents[index % oddAgents.count], key: index % 5 == 0 ? "k\(index)" : nil)
        }
        let transaction = try store.beginWrite()
        _ = try transaction.requireSale(SaleID("s1"))
        for (index, hold) in holds.enumerated() { try transaction.insertHold(hold, countedByAddress: index % 2 == 0) }
        try transaction.commit(.decisions)
        let stored = try store.session.rows(
            "SELECT id, sale, user_id, ip, ip_canonical, user_agent, key, status, created_at, expires_at FROM booking ORDER BY made"
        ) {
            [try $0.text("id"), try $0.text("sale"), try $0.text("user_id"), try $0.optionalText("ip"), try $0.optionalText("ip_canonical"),
             try $0.optionalText("user_agent"), try $0.optionalText("key"), try $0.text("status"),
             String(try $0.int64("created_at")), String(try $0.int64("expires_at"))]
        }
        let decided = holds.enumerated().map { index, hold in
            [hold.id.text, "s1", hold.user.text, hold.ip, index % 2 == 0 ? hold.ip : nil, hold.userAgent, hold.key, "held",
             String(T.milliseconds), String(T.milliseconds + 300_000)]
        }
        #expect(stored.count == decided.count)
        // The first difference, not 600 rows of each.
        let difference = zip(stored, decided).first { $0 != $1 }.map { "stored \($0), decided \($1)" }
        #expect(difference == nil)
    }

    /// A commit's many events are copied in (`copyHeldEvents`), numbered from the counter:
    /// each arrives as appended, every column in its place, whatever its characters, with
    /// the seqs after the last commit's and the counter at the last of them.
    @Test func aCommitsManyEventsArriveNumberedAsAppended() throws {
        defer { dropSchema() }
        let store = try open()
        try createSales("s1", in: store)
        let details = ["tab\there", "new\nline", "back\\slash", "\\N", "\\.", "plain é ✓"]
        func events(_ count: Int, from first: Int) -> [NewEvent] {
            (first..<(first + count)).map { (index: Int) -> NewEvent in
                let held = index % 2 == 0
                let user: UserID? = index % 9 == 0 ? nil : UserID(trusted: "u\(index)")
                let request: RequestID? = index % 3 == 0 ? nil : RequestID(Int64(index))
                let detail: String? = index % 4 == 0 ? nil : details[index % details.count]
                return NewEvent(at: T.adding(Span(milliseconds: Int64(index))), sale: "s1", kind: held ? .held : .rejected,
                                booking: held ? BookingID(trusted: "bk_\(index)") : nil, user: user, request: request, detail: detail)
            }
        }
        let before = try store.session.count("SELECT last FROM event_counter")
        // A few first, by the commit's statement; then enough to be copied.
        let earlier = events(3, from: 0), copied = events(PostgresTransaction.eventsCopiedFrom + 44, from: 3)
        for run in [earlier, copied] {
            let transaction = try store.beginWrite()
            _ = try transaction.requireSale(SaleID("s1"))
            for event in run { try transaction.appendEvent(event) }
            try transaction.commit(.decisions)
        }
        let stored = try store.session.rows("SELECT seq, at, sale, kind, booking, user_id, request, detail FROM event WHERE seq > $1 ORDER BY seq",
                                            [.int(before)]) {
            [String(try $0.int64("seq")), String(try $0.int64("at")), try $0.text("sale"), try $0.text("kind"), try $0.optionalText("booking"),
             try $0.optionalText("user_id"), try $0.optionalInt64("request").map(String.init), try $0.optionalText("detail")]
        }
        let appended = (earlier + copied).enumerated().map { index, event in
            [String(before + Int64(index) + 1), String(event.at.milliseconds), event.sale, event.kind.rawValue, event.booking?.text, event.user?.text,
             event.request.map { String($0.value) }, event.detail]
        }
        #expect(stored.count == appended.count)
        let difference = zip(stored, appended).first { $0 != $1 }.map { "stored \($0), appended \($1)" }
        #expect(difference == nil)
        #expect(try store.session.count("SELECT last FROM event_counter") == before + Int64(appended.count))
    }

    /// A batch that sells out part way holds its first requests one by one, then rejects
    /// the rest as a run whose events are numbered in its statement: the holds' events,
    /// enough to be copied, are numbered before them, so that seq order is the line's.
    @Test func aRunsEventsComeAfterTheCopiedEventsOfTheHoldsBeforeIt() throws {
        defer { dropSchema() }
        let store = try open()
        let engine = Engine(store: store)
        let stock = PostgresTransaction.eventsCopiedFrom + 44, requests = 3 * stock
        let submitted = try saleWithLine(of: (0..<requests).map { "u\($0)" }, inventory: Int64(stock), on: engine)
        let report = try engine.processBatch(of: SaleID("s1"), batch: Int64(requests), clock: T)
        #expect(report.accepted == Int64(stock) && report.rejected == Int64(requests - stock))
        let log = try engine.events(after: 0, sale: nil, limit: .max)
        let line = Array(submitted.firstID!.value...submitted.lastID!.value)
        #expect(log.compactMap(\.request?.value) == line)
        #expect(log.map(\.seq) == Array(1...Int64(log.count)))
        #expect(try store.session.count("SELECT last FROM event_counter") == Int64(log.count))
        #expect(try store.verify(SaleID("s1"), clock: T) == [])
    }

    /// A batch rejects its whole line in runs of `rowsAtOnce` at most (a page of the log
    /// reads each run it takes from whole), one after the other in the same transaction.
    @Test func aLongRunIsStoredInRunsOfRowsAtOnce() throws {
        defer { dropSchema() }
        let store = try open()
        let engine = Engine(store: store)
        let requests = 2 * PostgresTransaction(store: store).rowsAtOnce + 100
        try saleWithLine(of: (0..<requests).map { "u\($0)" }, inventory: 0, on: engine)
        let report = try engine.processBatch(of: SaleID("s1"), batch: Int64(requests), clock: T)
        #expect(report.rejected == Int64(requests))
        #expect(try store.session.rows("SELECT cardinality(requests) AS n FROM rejected_run ORDER BY last_seq") { try $0.int64("n") }
                == [4_096, 4_096, 100])
        let log = try engine.events(after: 0, sale: SaleID("s1"), limit: .max)
        #expect(log.compactMap(\.request?.value) == Array(1...Int64(requests)))
        #expect(try store.verify(nil, clock: T) == [])
    }

    /// A run of rejections is one row, read back as one event per request; verify finds a
    /// run that no longer holds its stretch of the line, or that shares its seqs with
    /// another event. Its users at their limit are found both ways (`rejectRun`): a sale
    /// of 2 bookings, and one of more than `rowsAtOnce`.
    @Test(arguments: [2, 4_097])
    func aRunOfRejectionsIsOneRowThatVerifyChecks(inventory: Int) throws {
        defer { dropSchema() }
        let store = try open()
        let engine = Engine(store: store)
        // u0 asks again after the sell-out: rejected at its limit inside the run.
        try saleWithLine(of: (0..<(inventory + 498)).map { "u\($0)" } + ["u0"], inventory: Int64(inventory), on: engine)
        // The holds first, committed: the sale's stored counters count them.
        #expect(try engine.processBatch(of: SaleID("s1"), batch: Int64(inventory), clock: T).accepted == Int64(inventory))
        #expect(try engine.processBatch(of: SaleID("s1"), batch: 10_000, clock: T).rejected == 499)
        #expect(try store.session.count("SELECT count(*) FROM rejected_run") == 1)
        #expect(try store.session.count("SELECT count(*) FROM event WHERE kind = 'rejected'") == 0)
        let rejected = try engine.events(after: 0, sale: SaleID("s1"), limit: .max).filter { $0.kind == .rejected }
        #expect(rejected.map(\.request?.value) == (inventory + 1...inventory + 499).map { Optional(Int64($0)) })
        #expect(rejected.map(\.detail) == Array(repeating: "sold_out", count: 498) + ["user_limit"])
        let last = try engine.request(RequestID(Int64(inventory + 499)))
        #expect(last.status == .rejected && last.reason == "user_limit")
        #expect(try store.verify(nil, clock: T) == [])

        let tamperings = [
            "UPDATE rejected_run SET requests = requests[1:cardinality(requests) - 1], users = users[1:cardinality(users) - 1]",
            "UPDATE rejected_run SET requests[2] = 3, requests[1] = 4",
            "UPDATE rejected_run SET users[7] = 'someone else'",
            "UPDATE event SET seq = (SELECT first_seq FROM rejected_run) + 1 WHERE seq = (SELECT max(seq) FROM event)",
        ]
        try store.session.execute("CREATE TABLE saved_run AS SELECT * FROM rejected_run")
        try store.session.execute("CREATE TABLE saved_event AS SELECT * FROM event")
        for tampering in tamperings {
            try store.session.execute(tampering)
            #expect(try !store.verify(nil, clock: T).isEmpty, "verify missed: \(tampering)")
            try store.session.execute("TRUNCATE rejected_run, event")
            try store.session.execute("INSERT INTO rejected_run SELECT * FROM saved_run")
            try store.session.execute("INSERT INTO event SELECT * FROM saved_event")
            #expect(try store.verify(nil, clock: T) == [])
        }
        // The line counted against its decisions: a request with none, one decided by an
        // event and a run, one decided past the cursor, one in two runs; and each of the
        // last three with the first, which the count alone would take for a line that fits.
        let undecided = (["INSERT INTO request (id, sale, user_id, submitted_at) VALUES (0, 's1', 'nobody', 0)"],
                         ["DELETE FROM request WHERE id = 0"])
        let twice = (["INSERT INTO event (seq, at, sale, kind, user_id, request, detail) "
                      + "SELECT 0, at, sale, 'rejected', users[2], requests[2], detail FROM rejected_run"],
                     ["DELETE FROM event WHERE seq = 0"])
        let pastTheCursor = (["UPDATE sale SET decided_through = decided_through - 1"], ["UPDATE sale SET decided_through = decided_through + 1"])
        let inTwoRuns = (["INSERT INTO rejected_run (last_seq, first_seq, at, sale, detail, limited_detail, first_request, last_request, "
                          + "requests, users, limited) SELECT -1, -1, at, sale, detail, limited_detail, first_request, first_request, "
                          + "requests[1:1], users[1:1], '{}' FROM rejected_run"],
                         ["DELETE FROM rejected_run WHERE last_seq = -1"])
        let decisionsMisfit = [undecided, twice, pastTheCursor, inTwoRuns,
                               (undecided.0 + twice.0, undecided.1 + twice.1), (undecided.0 + pastTheCursor.0, undecided.1 + pastTheCursor.1),
                               (undecided.0 + inTwoRuns.0, undecided.1 + inTwoRuns.1)]
        for (tampering, undo) in decisionsMisfit {
            for statement in tampering { try store.session.execute(statement) }
            let found = try store.verify(nil, clock: T)
            #expect(found == ["sale s1: 1 request whose decision does not fit the line, or names no booking or reason"],
                    "\(tampering): \(found)")
            for statement in undo { try store.session.execute(statement) }
            #expect(try store.verify(nil, clock: T) == [])
        }
    }

    /// Found by probing: a queue's cursor set by hand past its line passed verify, and
    /// `submit` then queued requests no `process` would decide; the request counter set
    /// back passed it too, and `submit` numbered a request as one of another sale's.
    @Test func aCursorNamingNoRequestAndCountersSetBackAreViolations() throws {
        defer { dropSchema() }
        let store = try open()
        let engine = Engine(store: store)
        try saleWithLine(of: ["a", "b"], inventory: 5, on: engine)
        #expect(try engine.processBatch(of: SaleID("s1"), batch: 10, clock: T).accepted == 2)
        #expect(try store.verify(nil, clock: T) == [])
        try store.session.execute("UPDATE sale SET decided_through = 100")
        #expect(try store.verify(nil, clock: T) == ["sale s1: its queue's cursor (decided_through 100) names none of its requests, "
                                                    + "so those submitted up to it would never be decided"])
        try store.session.execute("UPDATE sale SET decided_through = 2")
        try store.session.execute("UPDATE request_counter SET last = 1")
        #expect(try store.verify(nil, clock: T) == ["the request counter (request_counter) is not one row at or past the last request"])
        try store.session.execute("UPDATE request_counter SET last = 2")
        try store.session.execute("UPDATE event_counter SET last = 0")
        #expect(try store.verify(nil, clock: T) == ["the event counter (event_counter) is not one row at or past the last event"])
    }

    /// `seed-inventory --exactly` expires every overdue hold, however many: a run of
    /// `rowsAtOnce` at a time, each run's events sent before the next, never all of them
    /// in memory; the events in line order all the same.
    @Test func anExactSeedExpiresManyOverdueHoldsInRuns() throws {
        defer { dropSchema() }
        let store = try open()
        let engine = Engine(store: store)
        let holds = PostgresTransaction(store: store).rowsAtOnce + 10
        try saleWithLine(of: (0..<holds).map { "u\($0)" }, inventory: 10_000, on: engine)
        #expect(try engine.processBatch(of: SaleID("s1"), batch: Int64(holds), clock: T).accepted == Int64(holds))
        let later = T.adding(.seconds(301))
        let status = try engine.seedInventory(SaleID("s1"), count: 100, exactly: true, clock: later)
        #expect(status.sale.counters == Counters(total: 100, available: 100, held: 0, booked: 0, cancelled: 0, expired: Int64(holds)))
        let expired = try store.session.rows("SELECT booking FROM event WHERE kind = 'expired' ORDER BY seq") { try $0.text("booking") }
        let made = try store.session.rows("SELECT id FROM booking ORDER BY made") { try $0.text("id") }
        #expect(expired.count == holds)
        #expect(expired == made)
        #expect(try store.verify(SaleID("s1"), clock: later) == [])
    }

    /// A run's holds are sent after the next run's read-ahead (to be stored while it is
    /// decided), so the read-ahead counts them itself, each once: with limits of two, a user
    /// or an address held once in one run may hold once more in the next, and no more,
    /// whether those holds went by COPY (thousands) or in a statement of arrays (a few
    /// hundred, the rest of the run declined).
    @Test(arguments: [4_096, 100])
    func aRunCountsTheHoldsOfTheRunBeforeNotYetSent(distinctUsersFirst: Int) throws {
        defer { dropSchema() }
        let store = try open()
        let engine = Engine(store: store)
        _ = try engine.createSale(SaleDefinition(id: SaleID("s1"), name: nil, inventory: 10_000, hold: .seconds(300),
                                             perUser: 2, perIP: 2, startsAt: T, endsAt: nil), clock: T)
        let run = PostgresTransaction(store: store).rowsAtOnce
        func address(_ request: Int) -> String { "10.0.\(request / 256).\(request % 256)" }
        // The first run: its users in turn from u0, each request from an address of its own
        // (with 4,096 users each holds once; with 100, each holds twice and is then at the
        // user limit, which reads nothing). The next: ten of them again from new addresses
        // (a second hold, or at the user limit), then twice ten new users from the first
        // run's first addresses (a second hold from each, then at the per-IP limit: blocked).
        let first = (0..<run).map { RequestRecord(line: $0 + 1, user: "u\($0 % distinctUsersFirst)", ip: address($0)) }
        let again = (0..<10).map { RequestRecord(line: run + $0 + 1, user: "u\($0)", ip: "10.9.0.\($0)") }
        let sharing = (0..<20).map { RequestRecord(line: run + 11 + $0, user: "new\($0)", ip: address(10 + $0 % 10)) }
        var records = (first + again + sharing).map { ReadOutcome.record($0) }[...]
        _ = try engine.submit(to: SaleID("s1"), clock: T, skipping: nil) { records.popFirst() }
        let report = try engine.processBatch(of: SaleID("s1"), batch: Int64(run + 30), clock: T)
        let heldFirst = min(run, 2 * distinctUsersFirst), heldAgain = distinctUsersFirst == run ? 10 : 0
        #expect(report.accepted == Int64(heldFirst + heldAgain + 10))
        #expect(report.rejected == Int64(run - heldFirst + 10 - heldAgain + 10))
        let declinedNext = try store.session.rows("SELECT detail FROM event WHERE kind = 'rejected' AND request > $1 ORDER BY request",
                                                  [.int(Int64(run))]) { try $0.text("detail") }
        #expect(declinedNext == Array(repeating: DeclineReason.userLimit.rawValue, count: 10 - heldAgain)
                + Array(repeating: DeclineReason.blocked.rawValue, count: 10))
        #expect(try store.verify(SaleID("s1"), clock: T) == [])
    }

    /// A table filled since it was last analyzed looks nearly empty to the planner, which
    /// may then read all of it to return a few rows: every batch of a long line would read
    /// the rest of the line, and every read-ahead every booking of the sale. A batch reads
    /// about its own requests and its users' bookings, however many others there are (the
    /// server's own counters of the rows each table gave).
    @Test func aBatchOfALongLineReadsItsOwnRowsWithoutStatistics() throws {
        defer { dropSchema() }
        let observer = try saleWithoutStatistics(on: "request", "booking")
        let others: Int64 = 5_000
        try observer.session.execute(
            "INSERT INTO request (id, sale, user_id, submitted_at) SELECT n, 's1', 'u' || n, $1 FROM generate_series(1, $2::bigint) AS n",
            [.int(T.milliseconds), .int(others)])
        try observer.session.execute("UPDATE request_counter SET last = $1", [.int(others)])
        try observer.session.execute(
            """
            INSERT INTO booking (id, sale, user_id, status, created_at, expires_at)
            SELECT 'bk_other' || n, 's1', 'other' || n, 'booked', $1, $1 FROM generate_series(1, $2::bigint) AS n
            """, [.int(T.milliseconds), .int(others)])
        // Counted, as flashsale would have: a sale of few bookings is read whole for its
        // users at their limit (`rejectRun`).
        try observer.session.execute("UPDATE sale SET total = total + $1, booked = booked + $1", [.int(others)])
        do {
            let store = try open()
            let report = try Engine(store: store).processBatch(of: SaleID("s1"), batch: 100, clock: T)
            #expect(report.accepted == 10 && report.rejected == 90)
        }
        let read = try rowsRead(from: ["request", "booking"], by: observer, once: ("booking", others + 10))
        #expect(read["request"] ?? .max < 1_000, "a batch of 100 read \(read["request"] ?? -1) queued requests")
        #expect(read["booking"] ?? .max < 1_000, "a batch of 100 read \(read["booking"] ?? -1) bookings")
    }

    /// Found by probing: after a trial sale's keyed requests were analyzed, the planner put
    /// a new sale's rows at one and probed each key of a run through the primary key (sale,
    /// id), reading all the sale's requests once per key: 20,000 keyed requests took 11 s,
    /// 100,000 nine minutes (this test's file read 31 million requests). Each key is a
    /// probe of the index by key (schema version 9).
    @Test func aRunOfKeysReadsTheSalesRowsOnceAtMostWithStaleStatistics() throws {
        defer { dropSchema() }
        let observer = try open()
        try createSales("trial", "s1", in: observer)
        func submit(_ count: Int, _ prefix: String, to sale: String, on store: PostgresStore) throws {
            var records = (1...count).map { ReadOutcome.record(RequestRecord(line: $0, user: "u\($0)", key: "\(prefix)\($0)")) }[...]
            #expect(try Engine(store: store).submit(to: SaleID(sale), clock: T, skipping: nil) { records.popFirst() }.enqueued == count)
        }
        try submit(300, "trial", to: "trial", on: observer)
        for table in ["request", "booking"] {
            try observer.session.execute("ALTER TABLE \(table) SET (autovacuum_enabled = false)")
            try observer.session.execute("ANALYZE \(table)")
        }
        // Runs of 4,096 (`rowsAtOnce`): the second and third find the first's rows.
        let launch = 10_000
        do { try submit(launch, "k", to: "s1", on: try open()) }
        // The first run's probes may each read the table's 300 rows, a few pages, which the
        // planner scans rather than descend an index: 1.2 million, against 31 before.
        let read = try rowsRead(from: ["request"], by: observer, once: ("request", Int64(300 + launch)))
        #expect(read["request"] ?? .max < 2_000_000, "a file of \(launch) keys read \(read["request"] ?? -1) requests")
        // A group of a stream's or serve's size: a probe a key, not a read of the sale's
        // keyed rows (a review: `key = ANY` was planned as one, 137 ms for 200,000).
        do { try submit(64, "g", to: "s1", on: try open()) }
        let later = try rowsRead(from: ["request"], by: observer, once: ("request", Int64(300 + launch + 64)))
        let group = (later["request"] ?? .max) - (read["request"] ?? 0)
        #expect(group < 1_000, "a group of 64 keys read \(group) requests")
    }

    /// Found by probing: a sold-out sale's run of keyed requests, rejected at once, looked
    /// for each request's key among the sale's bookings by (sale, key), which stale
    /// statistics had the planner read through an index by sale: every booking of the sale
    /// for each request (20,000 rejections 54 s, or exit 75).
    @Test func aRejectedRunOfKeysReadsABookingAKeyWithStaleStatistics() throws {
        defer { dropSchema() }
        let observer = try open()
        try createSales("trial", in: observer)
        _ = try Engine(store: observer).book(BookingRequest(sale: SaleID("trial"), user: "t", ip: nil, userAgent: nil, key: "tk"), clock: T)
        for table in ["request", "booking"] {
            try observer.session.execute("ALTER TABLE \(table) SET (autovacuum_enabled = false)")
            try observer.session.execute("ANALYZE \(table)")
        }
        try createSales("s1", in: observer)
        let engine = Engine(store: observer)
        for user in 1...10 {
            _ = try engine.book(BookingRequest(sale: SaleID("s1"), user: UserID(trusted: "b\(user)"), ip: nil, userAgent: nil, key: nil), clock: T)
        }
        let others: Int64 = 5_000
        try observer.session.execute(
            """
            INSERT INTO booking (id, sale, user_id, status, created_at, expires_at, cancelled_at, key)
            SELECT 'bk_gone' || n, 's1', 'gone' || n, 'cancelled', $1, $1 + 1, $1, 'gone' || n FROM generate_series(1, $2::bigint) AS n
            """, [.int(T.milliseconds), .int(others)])
        let queued = 2_000
        var records = (1...queued).map { ReadOutcome.record(RequestRecord(line: $0, user: "q\($0)", key: "q\($0)")) }[...]
        _ = try engine.submit(to: SaleID("s1"), clock: T, skipping: nil) { records.popFirst() }
        let before = try rowsRead(from: ["booking"], by: observer, once: ("booking", others + 11))
        do {
            let report = try Engine(store: try open()).processBatch(of: SaleID("s1"), batch: Int64(queued), clock: T)
            #expect(report.rejected == queued)
        }
        let after = try rowsRead(from: ["booking"], by: observer, once: ("rejected_run", 1))
        let read = (after["booking"] ?? .max) - (before["booking"] ?? 0)
        #expect(read < 100_000, "a run of \(queued) keyed rejections read \(read) bookings")
    }

    /// The same for a page of a sale's event log (5,001 events read before), and of its line
    /// of overdue holds (whose partial index the planner takes on its own).
    @Test func aPageOfTheLogOrOfOverdueHoldsReadsItsOwnRowsWithoutStatistics() throws {
        defer { dropSchema() }
        let observer = try saleWithoutStatistics(on: "event", "booking")
        let others: Int64 = 5_000
        try observer.session.execute(
            "INSERT INTO event (seq, at, sale, kind, user_id) SELECT 1000 + n, $1, 's1', 'held', 'u' || n FROM generate_series(1, $2::bigint) AS n",
            [.int(T.milliseconds), .int(others)])
        try observer.session.execute(
            """
            INSERT INTO booking (id, sale, user_id, status, created_at, expires_at)
            SELECT 'bk_overdue' || n, 's1', 'u' || n, 'held', $1, $1 + n FROM generate_series(1, $2::bigint) AS n
            """, [.int(T.milliseconds), .int(others)])
        do {
            let store = try open()
            let later = Instant(milliseconds: T.milliseconds + others + 1)
            let (events, keys) = try store.read { reading in
                (try reading.events(after: 0, sale: SaleID("s1"), limit: 100),
                 try reading.overdueHoldKeys(in: SaleID("s1"), at: later, after: nil, limit: 100))
            }
            #expect(events.count == 100 && keys.count == 100)
            try store.session.execute("INSERT INTO block (kind, value, contains, created_at) VALUES ('user', 'done', false, 0)")
        }
        let read = try rowsRead(from: ["event", "booking"], by: observer, once: ("block", 1))
        #expect(read["event"] ?? .max < 1_000, "a page of 100 read \(read["event"] ?? -1) events")
        #expect(read["booking"] ?? .max < 1_000, "a page of 100 read \(read["booking"] ?? -1) bookings")
    }

    /// A sweep's batch finds its holds by key: as a join, the planner read the whole
    /// booking table for each batch, once it knew the table was large.
    @Test func aSweepBatchReadsItsOwnHoldsNotTheSales() throws {
        defer { dropSchema() }
        let observer = try saleWithoutStatistics(on: "booking")
        let holds: Int64 = 5_000
        try observer.session.execute(
            """
            INSERT INTO booking (id, sale, user_id, status, created_at, expires_at)
            SELECT 'bk_overdue' || n, 's1', 'u' || n, 'held', $1, $1 + n FROM generate_series(1, $2::bigint) AS n
            """, [.int(T.milliseconds), .int(holds)])
        try observer.session.execute("UPDATE sale SET total = total + $1, held = held + $1", [.int(holds)])
        try observer.session.execute("ANALYZE booking")
        do {
            let store = try open()
            let later = Instant(milliseconds: T.milliseconds + holds + 1)
            let report = try Engine(store: store, sweepBatch: 100).sweep(SaleID("s1"), limit: 100, dryRun: false, clock: later)
            #expect(report.total == 100)
            try store.session.execute("INSERT INTO block (kind, value, contains, created_at) VALUES ('user', 'done', false, 0)")
        }
        let read = try rowsRead(from: ["booking"], by: observer, once: ("block", 1))
        #expect(read["booking"] ?? .max < 1_000, "a batch of 100 read \(read["booking"] ?? -1) bookings")
    }

    /// A store with the sale s1, whose `tables` autovacuum leaves alone: their statistics
    /// stay those of empty tables, whatever is put in them.
    private func saleWithoutStatistics(on tables: String...) throws -> PostgresStore {
        let store = try open()
        try createSales("s1", in: store)
        for table in tables { try store.session.execute("ALTER TABLE \(table) SET (autovacuum_enabled = false)") }
        return store
    }

    /// The rows each table gave to reads, by the server's counters, once the rows inserted
    /// into `marker` have reached them: a connection's counters reach the server when it
    /// ends, so the last of the connections measured inserts them.
    private func rowsRead(from tables: [String], by observer: PostgresStore,
                          once marker: (table: String, inserted: Int64)) throws -> [String: Int64] {
        let deadline = Date().addingTimeInterval(30)
        while true {
            let counts = try observer.session.rows(
                """
                SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS read, n_tup_ins AS inserted
                FROM pg_stat_user_tables WHERE schemaname = $1
                """, [.text(location.schema)]) { try ($0.text("relname"), $0.int64("read"), $0.int64("inserted")) }
            if counts.contains(where: { $0.0 == marker.table && $0.2 >= marker.inserted }) {
                return Dictionary(counts.filter { tables.contains($0.0) }.map { ($0.0, $0.1) }, uniquingKeysWith: { first, _ in first })
            }
            try #require(Date() < deadline, "the server's counters did not come")
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    @Test func aWrongPasswordCannotOpenAndIsNotShown() throws {
        var wrong = location
        wrong.password = "not-the-password-\(UUID().uuidString)"
        let error = failure { _ = try PostgresStore(location: wrong, busyTimeout: .seconds(5), createIfMissing: true) }
        #expect(error?.errorCode == .cantOpen)
        let message = try #require(error?.message)
        #expect(!message.contains(wrong.password ?? ""))
        #expect(message.contains(wrong.server))
    }
}

/// Results handed in from other threads.
private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<Void, any Error>] = []

    func add(_ result: Result<Void, any Error>) {
        lock.lock()
        defer { lock.unlock() }
        results.append(result)
    }

    var all: [Result<Void, any Error>] {
        lock.lock()
        defer { lock.unlock() }
        return results
    }
}

/// A store handed to one other thread, which alone uses it.
private final class Unchecked<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
