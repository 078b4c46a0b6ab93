import CSQLite
import FlashSaleCore
import FlashSaleEngine

/// The database schema, versioned by `PRAGMA user_version`. Each migration runs once, in
/// order, inside one `BEGIN IMMEDIATE` transaction with the version bump, so a crash
/// or a concurrent first start never leaves a half-made schema.
enum Schema {
    static let migrations: [[String]] = [
        // Version 1: sales with their counters, bookings, the event log.
        [
            """
            CREATE TABLE sale (
                id          TEXT PRIMARY KEY,
                name        TEXT NOT NULL,
                state       TEXT NOT NULL CHECK (state IN ('open', 'paused', 'closed')),
                total       INTEGER NOT NULL CHECK (total >= 0),
                available   INTEGER NOT NULL CHECK (available >= 0),
                held        INTEGER NOT NULL CHECK (held >= 0),
                booked      INTEGER NOT NULL CHECK (booked >= 0),
                cancelled   INTEGER NOT NULL DEFAULT 0 CHECK (cancelled >= 0),
                expired     INTEGER NOT NULL DEFAULT 0 CHECK (expired >= 0),
                hold_ms     INTEGER NOT NULL CHECK (hold_ms > 0),
                per_user    INTEGER NOT NULL CHECK (per_user > 0),
                starts_at   INTEGER NOT NULL,
                ends_at     INTEGER,
                created_at  INTEGER NOT NULL,
                high_water  INTEGER NOT NULL,
                -- The invariant, enforced by SQLite itself on every write as well as checked by verify.
                CHECK (total = available + held + booked)
            )
            """,
            """
            CREATE TABLE booking (
                id           TEXT PRIMARY KEY,
                sale         TEXT NOT NULL REFERENCES sale (id),
                user         TEXT NOT NULL,
                status       TEXT NOT NULL CHECK (status IN ('held', 'booked', 'cancelled', 'expired')),
                created_at   INTEGER NOT NULL,
                expires_at   INTEGER NOT NULL,
                confirmed_at INTEGER,
                cancelled_at INTEGER,
                expired_at   INTEGER,
                ip           TEXT,
                user_agent   TEXT,
                key          TEXT
            )
            """,
            "CREATE INDEX booking_by_user ON booking (sale, user)",
            // Sweep and inline reclaim look for the oldest holds of a sale; only held rows matter.
            "CREATE INDEX booking_held_by_expiry ON booking (sale, expires_at) WHERE status = 'held'",
            "CREATE UNIQUE INDEX booking_by_key ON booking (sale, key) WHERE key IS NOT NULL",
            """
            CREATE TABLE event (
                seq      INTEGER PRIMARY KEY AUTOINCREMENT,
                at       INTEGER NOT NULL,
                sale     TEXT NOT NULL,
                kind     TEXT NOT NULL,
                booking  TEXT,
                user     TEXT,
                request  INTEGER,
                detail   TEXT
            )
            """,
        ],
        // Version 2: the durable FIFO queue of booking requests, and waitlisted sales.
        [
            "ALTER TABLE sale ADD COLUMN waitlist INTEGER NOT NULL DEFAULT 0 CHECK (waitlist IN (0, 1))",
            """
            CREATE TABLE request (
                -- Requests are never deleted, so max(id) + 1 never reuses an id: no
                -- AUTOINCREMENT, which would write sqlite_sequence on every insert.
                id           INTEGER PRIMARY KEY,
                sale         TEXT NOT NULL REFERENCES sale (id),
                user         TEXT NOT NULL,
                ip           TEXT,
                user_agent   TEXT,
                key          TEXT,
                status       TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'accepted', 'rejected')),
                reason       TEXT,
                booking      TEXT,
                submitted_at INTEGER NOT NULL,
                decided_at   INTEGER
            )
            """,
            // The queue itself: a sale's undecided requests in FIFO (id) order. Decided rows
            // leave the index, so it stays as small as the line.
            "CREATE INDEX request_queued ON request (sale, id) WHERE status = 'queued'",
            "CREATE UNIQUE INDEX request_by_key ON request (sale, key) WHERE key IS NOT NULL",
        ],
        // Version 3: bot defence (block lists, a per-IP limit) and reading the event log by sale.
        [
            "ALTER TABLE sale ADD COLUMN per_ip INTEGER CHECK (per_ip IS NULL OR per_ip > 0)",
            // The address in one spelling (IPAddress.canonical), so that 2001:DB8::1 and
            // 2001:db8:0::1 count as one address against the per-IP limit. (Since
            // version 5 only in sales that have one: see SQLiteTransaction.insertHold.)
            "ALTER TABLE booking ADD COLUMN ip_canonical TEXT",
            "CREATE INDEX booking_by_ip ON booking (sale, ip_canonical) WHERE ip_canonical IS NOT NULL",
            """
            CREATE TABLE block (
                id         INTEGER PRIMARY KEY,
                kind       TEXT NOT NULL CHECK (kind IN ('ip', 'user', 'agent')),
                value      TEXT NOT NULL,
                contains   INTEGER NOT NULL DEFAULT 0 CHECK (contains IN (0, 1)),
                sale       TEXT,
                reason     TEXT,
                created_at INTEGER NOT NULL
            )
            """,
            "CREATE UNIQUE INDEX block_unique ON block (kind, value, contains, coalesce(sale, ''))",
            "CREATE INDEX event_by_sale ON event (sale, seq)",
        ],
        // Version 4: a request row is written once, by submit, and the line needs no index
        // entry per request, which was a third of a bulk submit.
        // - A sale's requests are kept as runs of consecutive ids (a bulk submit is one run),
        //   in FIFO order.
        // - Decisions are strictly FIFO per sale, so each sale keeps a cursor, the last
        //   request it decided: the line is the sale's requests after it.
        // - A request's decision is the event that records it: 'held' or 'accepted' with the
        //   booking, 'rejected' with the reason. Deciding appends one row, where version 3
        //   rewrote the request and took it out of an index: two thirds of `process`.
        [
            """
            CREATE TABLE request_run (
                -- The key's columns first: SQLite 3.40's integrity_check reports false NULLs
                -- in a WITHOUT ROWID table whose other columns come between them.
                sale     TEXT NOT NULL REFERENCES sale (id),
                last_id  INTEGER NOT NULL,
                first_id INTEGER NOT NULL CHECK (first_id <= last_id),
                PRIMARY KEY (sale, last_id)
            ) WITHOUT ROWID
            """,
            // Islands of consecutive ids: within one, id minus its rank in the sale is constant.
            """
            INSERT INTO request_run (sale, first_id, last_id)
            SELECT sale, min(id), max(id) FROM
                (SELECT sale, id, id - row_number() OVER (PARTITION BY sale ORDER BY id) AS island FROM request)
            GROUP BY sale, island
            """,
            "ALTER TABLE sale ADD COLUMN decided_through INTEGER NOT NULL DEFAULT 0",
            """
            UPDATE sale SET decided_through = coalesce(
                (SELECT max(id) FROM request WHERE request.sale = sale.id AND request.status != 'queued'), 0)
            """,
            // At most one decision per request, whatever the code does. Made before the
            // backfill below, which looks each request up in it.
            "CREATE UNIQUE INDEX event_by_request ON event (request) WHERE request IS NOT NULL",
            // Version 3 logged no event for a request accepted with the booking its key
            // already had; such requests get one now, with their decision time (after the
            // events already logged, so a reader following with --after sees them once).
            """
            INSERT INTO event (at, sale, kind, booking, user, request)
            SELECT decided_at, sale, 'accepted', booking, user, id FROM request
            WHERE status = 'accepted' AND NOT EXISTS (SELECT 1 FROM event WHERE event.request = request.id)
            ORDER BY id
            """,
            "DROP INDEX request_queued",
            "ALTER TABLE request DROP COLUMN status",
            "ALTER TABLE request DROP COLUMN reason",
            "ALTER TABLE request DROP COLUMN booking",
            "ALTER TABLE request DROP COLUMN decided_at",
        ],
        // Version 5: a hold costs SQLite less. The booking and event tables are made again
        // (SQLite cannot change a CHECK or drop AUTOINCREMENT in place), their rows and
        // rowids copied (the order bookings were made in, the events' seq), their indexes
        // made again after them.
        // - The booking status CHECK compares with each status in turn: SQLite 3.40 checks
        //   an IN list of more than two constants against a temporary b-tree it builds on
        //   every insert and status change.
        // - An event's seq is max(seq) + 1 without AUTOINCREMENT, which read and wrote
        //   sqlite_sequence for every event. Events are never deleted, so no seq is ever
        //   given twice, and they are written under the write lock, so seq grows in
        //   commit order, which `events --after` relies on.
        [
            """
            CREATE TABLE booking_v5 (
                id           TEXT PRIMARY KEY,
                sale         TEXT NOT NULL REFERENCES sale (id),
                user         TEXT NOT NULL,
                status       TEXT NOT NULL
                             CHECK (status = 'held' OR status = 'booked' OR status = 'cancelled' OR status = 'expired'),
                created_at   INTEGER NOT NULL,
                expires_at   INTEGER NOT NULL,
                confirmed_at INTEGER,
                cancelled_at INTEGER,
                expired_at   INTEGER,
                ip           TEXT,
                user_agent   TEXT,
                key          TEXT,
                ip_canonical TEXT
            )
            """,
            """
            INSERT INTO booking_v5 (rowid, id, sale, user, status, created_at, expires_at, confirmed_at, cancelled_at,
                                    expired_at, ip, user_agent, key, ip_canonical)
            SELECT rowid, id, sale, user, status, created_at, expires_at, confirmed_at, cancelled_at,
                   expired_at, ip, user_agent, key, ip_canonical
            FROM booking ORDER BY rowid
            """,
            "DROP TABLE booking",
            "ALTER TABLE booking_v5 RENAME TO booking",
            "CREATE INDEX booking_by_user ON booking (user, sale)",
            "CREATE INDEX booking_held_by_expiry ON booking (sale, expires_at) WHERE status = 'held'",
            "CREATE UNIQUE INDEX booking_by_key ON booking (sale, key) WHERE key IS NOT NULL",
            "CREATE INDEX booking_by_ip ON booking (sale, ip_canonical) WHERE ip_canonical IS NOT NULL",
            """
            CREATE TABLE event_v5 (
                seq      INTEGER PRIMARY KEY,
                at       INTEGER NOT NULL,
                sale     TEXT NOT NULL,
                kind     TEXT NOT NULL,
                booking  TEXT,
                user     TEXT,
                request  INTEGER,
                detail   TEXT
            )
            """,
            """
            INSERT INTO event_v5 (seq, at, sale, kind, booking, user, request, detail)
            SELECT seq, at, sale, kind, booking, user, request, detail FROM event ORDER BY seq
            """,
            "DROP TABLE event",
            "ALTER TABLE event_v5 RENAME TO event",
            "CREATE INDEX event_by_sale ON event (sale, seq)",
            "CREATE UNIQUE INDEX event_by_request ON event (request) WHERE request IS NOT NULL",
        ],
        // Version 6: how many held holds of a sale expire within each second (expires_at
        // / 1000), so that counting a sale's overdue holds reads a row per second, not an
        // index entry per hold (`SQLiteTransaction.overdueHoldCount`). No row holds 0.
        [
            """
            CREATE TABLE hold_second (
                sale   TEXT NOT NULL,
                second INTEGER NOT NULL,
                held   INTEGER NOT NULL,
                PRIMARY KEY (sale, second)
            ) WITHOUT ROWID
            """,
            """
            INSERT INTO hold_second (sale, second, held)
            SELECT sale, expires_at / 1000, count(*) FROM booking WHERE status = 'held' GROUP BY sale, expires_at / 1000
            """,
        ],
        // Version 7: booking attempts counted for bot defence and metrics, declined ones
        // too, which leave no other row (FlashSaleCore's Attempts.swift), added to once per
        // transaction. Counters by requester ('ip', 'network'), 'agent' and 'user' per 10 s
        // bucket; and, of kind 'sale' with bucket 0, each sale's totals in `attempts`: value
        // '' counts every attempt, a code the attempts declined with it (one table, so that
        // a `book` prepares one statement more, not two). The attempts stored before are
        // counted as the suspects report counted them: bookings made directly, and
        // requests, at the time they were made; and requests rejected, by reason.
        [
            """
            CREATE TABLE attempt_counter (
                sale      TEXT NOT NULL,
                kind      TEXT NOT NULL
                          CHECK (kind = 'ip' OR kind = 'network' OR kind = 'agent' OR kind = 'user' OR kind = 'sale'),
                value     TEXT NOT NULL,
                bucket    INTEGER NOT NULL,
                attempts  INTEGER NOT NULL,
                declined  INTEGER NOT NULL,
                scripted  INTEGER NOT NULL,
                agentless INTEGER NOT NULL,
                script    TEXT,
                PRIMARY KEY (sale, kind, value, bucket)
            ) WITHOUT ROWID
            """,
            """
            WITH \(storedAttempts)
            INSERT INTO attempt_counter (sale, kind, value, bucket, attempts, declined, scripted, agentless, script)
            SELECT sale, kind, value, bucket, count(*), 0, count(script), sum(agentless), max(script) FROM (
                SELECT sale, iif(instr(requester, ':'), 'network', 'ip') AS kind, requester AS value, bucket, script, agentless
                FROM (SELECT *, suspect_requester(ip) AS requester FROM attempt) WHERE requester IS NOT NULL
                UNION ALL
                SELECT sale, 'agent', user_agent, bucket, NULL, 0 FROM attempt WHERE coalesce(user_agent, '') != ''
                UNION ALL
                SELECT sale, 'user', user, bucket, script, agentless FROM attempt)
            GROUP BY sale, kind, value, bucket
            UNION ALL
            SELECT sale, 'sale', '', 0, count(*), 0, 0, 0, NULL FROM attempt GROUP BY sale
            UNION ALL
            SELECT sale, 'sale', detail, 0, count(*), 0, 0, 0, NULL FROM event
            WHERE kind = 'rejected' AND detail IS NOT NULL GROUP BY sale, detail
            """,
        ],
        // Version 8: a requester's or an agent's counter keeps the users of its attempts as
        // the smallest hashes of their names (FlashSaleCore's UserSample), a JSON array, so
        // that `suspects` counts the distinct users behind an address from declined attempts
        // too. The counters before have none; the report reads those users from bookings and
        // requests, as it did.
        [
            "ALTER TABLE attempt_counter ADD COLUMN users TEXT",
        ],
        // Version 9: the per-IP limit counts an IPv6 address's bookings by its /64
        // (`IPAddress.perIPKey`), as the attempt counters count it: the expanded addresses
        // stored before become their networks' keys.
        [
            """
            UPDATE booking SET ip_canonical = substr(ip_canonical, 1, 19) || '::/64'
            WHERE instr(ip_canonical, ':') > 0 AND length(ip_canonical) = 39
            """,
        ],
    ]

    /// The attempts a version 6 file stored: bookings made directly (a booking a request
    /// made has a 'held' event naming the request) and requests, each with its bucket, the
    /// script name its agent gives away, and whether it had no agent.
    private static let storedAttempts = """
        attempt AS (
            SELECT sale, user, ip, user_agent, at - at % \(AttemptBucket.length.milliseconds) AS bucket,
                   suspect_script(user_agent) AS script, coalesce(user_agent, '') = '' AS agentless
            FROM (SELECT sale, user, ip, user_agent, created_at AS at FROM booking
                  WHERE id NOT IN (SELECT booking FROM event
                                   WHERE kind = 'held' AND request IS NOT NULL AND booking IS NOT NULL)
                  UNION ALL
                  SELECT sale, user, ip, user_agent, submitted_at FROM request))
        """

    static var currentVersion: Int64 { Int64(migrations.count) }

    /// Brings the database to the current version; a file with no schema yet gets one only
    /// if `create` allows (else StoreFailure.missingDatabase). The common case, an up-to-date file, costs
    /// one read of the header and no lock.
    ///
    /// Any number of processes may do this at once on a new file: each check reads the
    /// version and the tables in one snapshot, and the migration, with its own check again,
    /// is one `BEGIN IMMEDIATE` transaction, so one process migrates and the others wait
    /// for it (up to the busy timeout) and find it done.
    static func migrate(_ connection: Connection, create: Bool) throws {
        guard try version(connection) != currentVersion else { return }
        // Before WAL is set: another program's file must be left exactly as it was.
        let found = try connection.readTransaction { try checkedVersion(connection) }
        guard found > 0 || create else { throw StoreFailure.missingDatabase(path: connection.path) }
        // WAL is a property of the file; it cannot be changed inside a transaction. The
        // change needs the file to itself, and SQLite reports that lock busy without
        // waiting for it (deadlock avoidance), so this waits here instead.
        try connection.retryingWhileBusy { try connection.execute("PRAGMA journal_mode = WAL") }
        // Remaking a table sorts each of its indexes' keys: in temporary files, not in
        // memory (355 MiB for version 5 of a million bookings).
        try connection.execute("PRAGMA temp_store = FILE")
        defer { try? connection.execute("PRAGMA temp_store = MEMORY") }
        // Version 7 counts the attempts stored before by the report's own groups.
        try SuspectFunctions.register(on: connection)
        try connection.writeTransaction {
            // Another process may have migrated while this one waited for the lock.
            let found = try checkedVersion(connection)
            guard found < currentVersion else { return }
            do {
                for migration in migrations[Int(found)...] {
                    for statement in migration {
                        try connection.execute(statement)
                    }
                }
            } catch let error as SQLiteError where error.isUnlikeItsVersion {
                throw unlikeItsVersion(error, version: found)
            }
            try connection.execute("PRAGMA user_version = \(currentVersion)")
        }
    }

    /// A migration that meets what it makes already there, or misses what it changes: the
    /// file is not what its version says, set back by hand, or another program's objects
    /// have flashsale's names (found by probing: exit 1, "duplicate column name", as if a
    /// bug). In the PostgreSQL store's words.
    private static func unlikeItsVersion(_ error: SQLiteError, version: Int64) -> StoreFailure {
        .unusable(detail: "the database is not what its schema version (\(version)) says, so its migration failed "
                  + "(\(error.message)): the version was changed by hand, or another program's objects have flashsale's names")
    }

    /// The tables, indexes and columns of this version's schema, as `objects(in:)` names them
    /// (`table block`, `index booking_by_key`, `column block.reason`): made in a database in
    /// memory by the migrations themselves, so that the list is never out of step with them.
    static func objects() throws -> Set<String> {
        let connection = try Connection.inMemory()
        try migrate(connection, create: true)
        return try objects(in: connection)
    }

    /// The tables, indexes and columns `connection`'s database has, SQLite's own left out.
    /// Columns too: one dropped by hand (found by probing) failed the first command that
    /// wrote it, and `verify` said ok.
    static func objects(in connection: Connection) throws -> Set<String> {
        Set(try connection.rows(
            """
            SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
            UNION ALL
            SELECT 'column ' || m.name || '.' || c.name FROM sqlite_master AS m, pragma_table_info(m.name) AS c
            WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
            """) { $0.text(0) })
    }

    /// The schema version, refusing a newer flashsale's file or some other program's SQLite
    /// database, which are not ours to change. Read in a transaction: a concurrent first
    /// start commits its tables and its version together.
    private static func checkedVersion(_ connection: Connection) throws -> Int64 {
        let version = try version(connection)
        if version > currentVersion {
            throw StoreFailure.unusable(detail: "the database has schema version \(version), made by a newer flashsale; this one knows \(currentVersion)")
        }
        // Set by hand (or a damaged header): migrating from it would index the migrations
        // below their first (found by probing: a crash, the file switched to WAL first).
        if version < 0 {
            throw StoreFailure.unusable(detail: "the database has schema version \(version), which no flashsale writes")
        }
        // Every version has had `sale`: another program's file with a version of its own
        // was taken for an old flashsale one, switched to WAL and failed its migration as
        // "no such table" (found by probing).
        let (tables, hasSales) = try connection.firstRow(
            "SELECT count(*) AS tables, coalesce(sum(name = 'sale'), 0) AS sales FROM sqlite_schema WHERE type = 'table'"
        ) { (try $0.int64("tables"), try $0.int64("sales") > 0) } ?? (0, false)
        if version == 0 && tables > 0 || version > 0 && !hasSales {
            throw StoreFailure.unusable(detail: "an SQLite database of another program, not flashsale's")
        }
        return version
    }

    static func version(_ connection: Connection) throws -> Int64 {
        try connection.firstRow("PRAGMA user_version") { $0.int64(0) } ?? 0
    }
}

private extension SQLiteError {
    /// A statement of a migration that found its object there already, or missing.
    var isUnlikeItsVersion: Bool {
        primaryCode == SQLITE_ERROR
            && (message.hasPrefix("duplicate column name") || message.hasSuffix(" already exists")
                || ["no such table: ", "no such column: ", "no such index: "].contains(where: message.hasPrefix))
    }
}
