import FlashSaleCore
import FlashSaleEngine

/// flashsale's tables in the location's schema, versioned by `schema_version`: SQLite's
/// (Schema.swift in FlashSaleStore) in PostgreSQL's types, less what only SQLite needed
/// (a line kept as runs of ids, a count of holds per second).
enum PostgresSchema {
    static let migrations: [[String]] = [
        // Version 1.
        [
            """
            CREATE TABLE sale (
                id              text PRIMARY KEY,
                name            text NOT NULL,
                state           text NOT NULL CHECK (state IN ('open', 'paused', 'closed')),
                total           bigint NOT NULL CHECK (total >= 0),
                available       bigint NOT NULL CHECK (available >= 0),
                held            bigint NOT NULL CHECK (held >= 0),
                booked          bigint NOT NULL CHECK (booked >= 0),
                cancelled       bigint NOT NULL DEFAULT 0 CHECK (cancelled >= 0),
                expired         bigint NOT NULL DEFAULT 0 CHECK (expired >= 0),
                hold_ms         bigint NOT NULL CHECK (hold_ms > 0),
                per_user        bigint NOT NULL CHECK (per_user > 0),
                per_ip          bigint CHECK (per_ip IS NULL OR per_ip > 0),
                waitlist        boolean NOT NULL DEFAULT false,
                starts_at       bigint NOT NULL,
                ends_at         bigint,
                created_at      bigint NOT NULL,
                high_water      bigint NOT NULL,
                -- The line's cursor: the last request decided.
                decided_through bigint NOT NULL DEFAULT 0,
                CHECK (total = available + held + booked)
            )
            """,
            // `made`: the order holds were made in (HoldKey.made, and the order of a sale's
            // bookings); a sale's holds are made under its row lock, so in commit order.
            """
            CREATE TABLE booking (
                made         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
                id           text PRIMARY KEY,
                sale         text NOT NULL,
                user_id      text NOT NULL,
                status       text NOT NULL CHECK (status IN ('held', 'booked', 'cancelled', 'expired')),
                created_at   bigint NOT NULL,
                expires_at   bigint NOT NULL,
                confirmed_at bigint,
                cancelled_at bigint,
                expired_at   bigint,
                ip           text,
                ip_canonical text,
                user_agent   text,
                key          text
            )
            """,
            "CREATE INDEX booking_by_user ON booking (sale, user_id, made)",
            "CREATE INDEX booking_by_sale ON booking (sale, made)",
            "CREATE INDEX booking_held_by_expiry ON booking (sale, expires_at, made) WHERE status = 'held'",
            "CREATE UNIQUE INDEX booking_by_key ON booking (sale, key) WHERE key IS NOT NULL",
            "CREATE INDEX booking_by_ip ON booking (sale, ip_canonical) WHERE ip_canonical IS NOT NULL",
            // An event's seq is given from event_counter, whose row lock is held to the
            // commit: seq order is commit order (`events(after:)`).
            """
            CREATE TABLE event (
                seq     bigint PRIMARY KEY,
                at      bigint NOT NULL,
                sale    text NOT NULL,
                kind    text NOT NULL,
                booking text,
                user_id text,
                request bigint,
                detail  text
            )
            """,
            "CREATE INDEX event_by_sale ON event (sale, seq)",
            "CREATE UNIQUE INDEX event_by_request ON event (request) WHERE request IS NOT NULL",
            "CREATE TABLE event_counter (last bigint NOT NULL)",
            "INSERT INTO event_counter VALUES (0)",
            // The queue: a sale's line is its requests after its cursor, in id order.
            // Ids come from request_counter, in the transaction: a rollback gives them back,
            // so they have no gaps and a bulk submit's are consecutive, as in SQLite. (Its row
            // lock is held to the commit: submits to different sales take turns at it.)
            "CREATE TABLE request_counter (last bigint NOT NULL)",
            "INSERT INTO request_counter VALUES (0)",
            """
            CREATE TABLE request (
                id           bigint PRIMARY KEY,
                sale         text NOT NULL,
                user_id      text NOT NULL,
                ip           text,
                user_agent   text,
                key          text,
                submitted_at bigint NOT NULL
            )
            """,
            "CREATE INDEX request_line ON request (sale, id)",
            "CREATE UNIQUE INDEX request_by_key ON request (sale, key) WHERE key IS NOT NULL",
            """
            CREATE TABLE block (
                id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                kind       text NOT NULL CHECK (kind IN ('ip', 'user', 'agent')),
                value      text NOT NULL,
                contains   boolean NOT NULL DEFAULT false,
                sale       text,
                reason     text,
                created_at bigint NOT NULL
            )
            """,
            "CREATE UNIQUE INDEX block_unique ON block (kind, value, contains, coalesce(sale, ''))",
            """
            CREATE TABLE attempt_counter (
                sale      text NOT NULL,
                kind      text NOT NULL CHECK (kind IN ('ip', 'network', 'agent', 'user', 'sale')),
                value     text NOT NULL,
                bucket    bigint NOT NULL,
                attempts  bigint NOT NULL,
                declined  bigint NOT NULL,
                scripted  bigint NOT NULL,
                agentless bigint NOT NULL,
                script    text,
                PRIMARY KEY (sale, kind, value, bucket)
            )
            """,
        ],
        // Version 2: `made` loses its own unique index, one of six every hold paid for (the
        // identity makes it unique; the sweep finds its holds by id, the order by the sale's
        // indexes). W2's `book --stream` spends most of its time in that INSERT.
        [
            "ALTER TABLE booking DROP CONSTRAINT booking_made_key",
        ],
        // Version 3: no index of a sale's bookings in the order they were made, which every
        // hold paid for and one reading used: a sale's bookings listed or exported in that
        // order, which the server now sorts (a sale's bookings by any other way are found
        // through `booking_by_user`, whose first column is the sale). W2's `book --stream`
        // spent 6-18% less in the holds' INSERT without it, in alternating runs.
        [
            "DROP INDEX booking_by_sale",
        ],
        // Version 4: every text column compares byte by byte (`COLLATE "C"`), as SQLite's
        // BINARY and Swift's String do, whatever the database's collation: on a server made
        // with an en_US locale, `sales` listed `a1` before `B2` and `c_3` before `c-3`,
        // where SQLite lists `B2`, `a1`, `c-3`, `c_3`. The rows stay as they are; each
        // table's indexes on its text columns are made again.
        textColumnsInByteOrder([
            "sale": ["id", "name", "state"],
            "booking": ["id", "sale", "user_id", "status", "ip", "ip_canonical", "user_agent", "key"],
            "event": ["sale", "kind", "booking", "user_id", "detail"],
            "request": ["sale", "user_id", "ip", "user_agent", "key"],
            "block": ["kind", "value", "sale", "reason"],
            "attempt_counter": ["sale", "kind", "value", "script"],
        ]),
        // Version 5: a run of queued requests rejected at once (`process` once nobody can
        // get an item) is one row of its own, not a row of `event` per request: its events
        // are seqs first_seq...last_seq, the sale's requests first_request...last_request in
        // line order (each its `users` entry), rejected with `detail`, but `limited_detail`
        // for those in `limited`. W1's `process` spent 1.1 s of its 1.4 in the events'
        // INSERT, each a heap row and three index entries; its runs take 0.3 s. The
        // arrays are stored uncompressed (EXTERNAL): compressing them cost a third of that.
        [
            """
            CREATE TABLE rejected_run (
                last_seq       bigint PRIMARY KEY,
                first_seq      bigint NOT NULL,
                at             bigint NOT NULL,
                sale           text COLLATE "C" NOT NULL,
                detail         text COLLATE "C" NOT NULL,
                limited_detail text COLLATE "C" NOT NULL,
                first_request  bigint NOT NULL,
                last_request   bigint NOT NULL,
                requests       bigint[] NOT NULL,
                users          text[] COLLATE "C" NOT NULL,
                limited        bigint[] NOT NULL
            )
            """,
            "ALTER TABLE rejected_run ALTER requests SET STORAGE EXTERNAL, ALTER users SET STORAGE EXTERNAL",
            "CREATE INDEX rejected_run_by_sale ON rejected_run (sale, last_seq)",
            "CREATE INDEX rejected_run_by_request ON rejected_run (sale, last_request)",
        ],
        // Version 6: a request's key is its sale and id, one index where there were two (by
        // id, and by sale and id for the line), which every queued request paid for: W1's
        // 220,000 requests were copied in 0.74–0.75 s against 0.85–0.87 s. A request is
        // found by its id alone sale by sale (`request(_:)`), a probe of that index each.
        [
            "ALTER TABLE request DROP CONSTRAINT request_pkey",
            "DROP INDEX request_line",
            "ALTER TABLE request ADD PRIMARY KEY (sale, id)",
        ],
        // Version 7: a requester's or an agent's counter keeps the users of its attempts as
        // the smallest hashes of their names (FlashSaleCore's UserSample), a JSON array in
        // text, as in SQLite (its version 8).
        [
            "ALTER TABLE attempt_counter ADD COLUMN users text COLLATE \"C\"",
        ],
        // Version 8: the per-IP limit counts an IPv6 address's bookings by its /64, as in
        // SQLite (its version 9).
        [
            """
            UPDATE booking SET ip_canonical = substr(ip_canonical, 1, 19) || '::/64'
            WHERE strpos(ip_canonical, ':') > 0 AND length(ip_canonical) = 39
            """,
        ],
        // Version 9: the keys' indexes lead with the key, and a key is looked up by it
        // alone, its sale checked after (`PostgresKeys`): statistics from before a sale (a
        // trial sale's, analyzed) put the new sale's rows at one, and the planner read a
        // lookup of (sale, key) through another index by sale alone, the primary key
        // (sale, id), so every request of the sale once per key (found by probing: 20,000
        // keyed requests took 11 s, 100,000 nine minutes). An index by key alone is the
        // only one such a lookup can use.
        [
            "DROP INDEX booking_by_key",
            "CREATE UNIQUE INDEX booking_by_key ON booking (key, sale) WHERE key IS NOT NULL",
            "DROP INDEX request_by_key",
            "CREATE UNIQUE INDEX request_by_key ON request (key, sale) WHERE key IS NOT NULL",
        ],
    ]

    /// One ALTER TABLE a table (its indexes made again once), its columns in byte order.
    private static func textColumnsInByteOrder(_ columns: KeyValuePairs<String, [String]>) -> [String] {
        columns.map { table, names in
            "ALTER TABLE \(table) " + names.map { "ALTER COLUMN \($0) TYPE text COLLATE \"C\"" }.joined(separator: ", ")
        }
    }

    static var currentVersion: Int64 { Int64(migrations.count) }

    /// The tables, indexes, sequences and columns of this version's schema, as `objectsQuery`
    /// names them: what `verify` looks for. A test holds the list to a new schema's catalog.
    static let objects = Set([
        "table sale", "index sale_pkey", "table booking", "index booking_pkey", "sequence booking_made_seq",
        "index booking_by_user", "index booking_held_by_expiry", "index booking_by_key", "index booking_by_ip",
        "table event", "index event_pkey", "index event_by_sale", "index event_by_request", "table event_counter",
        "table request_counter", "table request", "index request_pkey", "index request_by_key",
        "table block", "index block_pkey", "sequence block_id_seq", "index block_unique",
        "table attempt_counter", "index attempt_counter_pkey",
        "table rejected_run", "index rejected_run_pkey", "index rejected_run_by_sale", "index rejected_run_by_request",
        "table schema_version",
    ]).union(columns.flatMap { table, names in names.map { "column \(table).\($0)" } })

    /// Each table's columns: one dropped by hand (found by probing) failed the first command
    /// that wrote it, and `verify` said ok.
    private static let columns = [
        "sale": ["id", "name", "state", "total", "available", "held", "booked", "cancelled", "expired", "hold_ms", "per_user",
                 "per_ip", "waitlist", "starts_at", "ends_at", "created_at", "high_water", "decided_through"],
        "booking": ["made", "id", "sale", "user_id", "status", "created_at", "expires_at", "confirmed_at", "cancelled_at",
                    "expired_at", "ip", "ip_canonical", "user_agent", "key"],
        "event": ["seq", "at", "sale", "kind", "booking", "user_id", "request", "detail"],
        "event_counter": ["last"],
        "request_counter": ["last"],
        "request": ["id", "sale", "user_id", "ip", "user_agent", "key", "submitted_at"],
        "block": ["id", "kind", "value", "contains", "sale", "reason", "created_at"],
        "attempt_counter": ["sale", "kind", "value", "bucket", "attempts", "declined", "scripted", "agentless", "script", "users"],
        "rejected_run": ["last_seq", "first_seq", "at", "sale", "detail", "limited_detail", "first_request", "last_request",
                         "requests", "users", "limited"],
        "schema_version": ["version"],
    ]

    /// The tables, indexes, sequences and columns the session's schema has, one `object` a row.
    static let objectsQuery = """
        SELECT CASE relkind WHEN 'r' THEN 'table' WHEN 'i' THEN 'index' ELSE 'sequence' END || ' ' || relname AS object
        FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'i', 'S')
        UNION ALL
        SELECT 'column ' || relname || '.' || attname FROM pg_class JOIN pg_attribute ON attrelid = pg_class.oid
        WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' AND attnum > 0 AND NOT attisdropped
        """

    /// Brings the schema to the current version; a missing one is made only if `create`
    /// allows. The common case, an up-to-date schema, costs one cheap query and no lock.
    ///
    /// Any number of processes may start at once on a new schema: the migration takes a
    /// transaction-scoped advisory lock of the schema's name and checks again under it, so
    /// one migrates and the others wait for it and find it done.
    static func migrate(_ session: PostgresSession, create: Bool) throws {
        guard try quickVersion(session) != currentVersion else { return }
        // Read committed whatever the role's or database's default: a process that waited
        // for another's migration must see its version row, which a snapshot taken before
        // the wait (repeatable read, serializable) hides (found by probing: "no version",
        // 73, for all but the first of six processes at once).
        try session.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        do {
            try session.execute("SELECT pg_advisory_xact_lock(\(lockClass), hashtext($1))", [.text(session.location.schema)])
            let found = try version(session)
            if found == 0 {
                guard create else {
                    throw StoreFailure.missingDatabase(path: session.location.place)
                }
                if let encoding = try session.firstRow("SELECT current_setting('server_encoding') AS encoding", [], { try $0.text("encoding") }) {
                    try requireEncoding(encoding, of: session.location)
                }
                try session.execute("CREATE SCHEMA IF NOT EXISTS \(quotedIdentifier(session.location.schema))")
            }
            for migration in migrations[Int(found)...] {
                for statement in migration { try session.execute(statement) }
            }
            if found == 0 {
                try session.execute("CREATE TABLE schema_version (version bigint NOT NULL)")
                try session.execute("INSERT INTO schema_version VALUES ($1)", [.int(currentVersion)])
            } else {
                try session.execute("UPDATE schema_version SET version = $1", [.int(currentVersion)])
            }
            try session.execute("COMMIT")
        } catch {
            _ = try? session.execute("ROLLBACK")
            throw unlikeItsVersion(error, in: session.location.schema)
        }
    }

    /// A migration that meets what it makes already there, or misses what it changes: the
    /// schema is not what its version says, set back by hand, or another program's objects
    /// have flashsale's names (found by probing: exit 1, "relation already exists", as if
    /// a bug).
    private static func unlikeItsVersion(_ error: any Error, in schema: String) -> any Error {
        // duplicate_table, _object, _column, _function; undefined_object, _column, _table
        let states: Set = ["42P07", "42710", "42701", "42723", "42704", "42703", PostgresError.undefinedTable]
        guard let state = (error as? PostgresError)?.sqlState, states.contains(state) else { return error }
        return StoreFailure.unusable(detail: "schema \(schema) is not what its version says, so its migration failed (\(error)): "
                                     + "the version was changed by hand, or another program's objects have flashsale's names")
    }

    /// The advisory lock class of migrations (the other key is the schema's name).
    static let lockClass = 0x666C_7368  // "flsh"

    /// The schema's version, from its table (the search path is the schema) where it has
    /// one: a process's first query, which on a new connection costs a few catalog look-ups,
    /// not the 3 ms of `version`'s look in `pg_tables`. Outside a transaction, which the
    /// error of a missing table would end.
    private static func quickVersion(_ session: PostgresSession) throws -> Int64 {
        do {
            return try storedVersion(session)
        } catch let error as PostgresError where error.sqlState == PostgresError.undefinedTable {
            return try version(session)
        }
    }

    /// The schema's version: 0 for none; a schema with objects but no version is another
    /// program's, and a newer version a newer flashsale's, neither ours to change. Any
    /// object a schema holds (every catalog with a namespace): a view, a sequence or a
    /// type under one of flashsale's names failed the migration as a bug (exit 1), and
    /// one under another name, or a collation, was used beside it (found by probing).
    private static func version(_ session: PostgresSession) throws -> Int64 {
        let schema = session.location.schema
        let (versioned, objects) = try session.firstRow(
            """
            SELECT to_regclass(format('%I.schema_version', $1::text)) IS NOT NULL AS versioned,
                   (SELECT count(*) FROM (
                       SELECT relnamespace AS schema FROM pg_class
                       UNION ALL SELECT typnamespace FROM pg_type WHERE typrelid = 0
                       UNION ALL SELECT pronamespace FROM pg_proc
                       UNION ALL SELECT collnamespace FROM pg_collation
                       UNION ALL SELECT oprnamespace FROM pg_operator
                       UNION ALL SELECT opcnamespace FROM pg_opclass
                       UNION ALL SELECT opfnamespace FROM pg_opfamily
                       UNION ALL SELECT connamespace FROM pg_conversion
                       UNION ALL SELECT stxnamespace FROM pg_statistic_ext
                       UNION ALL SELECT cfgnamespace FROM pg_ts_config
                       UNION ALL SELECT dictnamespace FROM pg_ts_dict
                       UNION ALL SELECT prsnamespace FROM pg_ts_parser
                       UNION ALL SELECT tmplnamespace FROM pg_ts_template
                   ) AS named WHERE schema = n.oid) AS objects
            FROM pg_namespace n WHERE nspname = $1::text
            """, [.text(schema)]) { (try $0.bool("versioned"), try $0.int64("objects")) } ?? (false, 0)
        guard versioned else {
            if objects > 0 {
                throw StoreFailure.unusable(
                    detail: "schema \(schema) holds another program's objects, not flashsale's (--pg-schema chooses another schema)")
            }
            return 0
        }
        return try storedVersion(session)
    }

    /// The version's query, which a store opened for a command that makes nothing sends
    /// ahead of its first statements (`PostgresSession.askSchemaVersion`), with the
    /// schema's identity beside it (see `identityQuery`), which the store's first
    /// transaction then need not ask for.
    static let versionQuery = """
        SELECT version, (SELECT oid::bigint FROM pg_namespace WHERE nspname = current_schema()),
               current_setting('server_encoding') AS encoding FROM schema_version
        """

    /// A database whose encoding cannot hold every text (UTF-8) is refused when it is
    /// opened, before anything is made in it: text it cannot hold failed each group it
    /// was in (a whole stream, every request of a server's group), and read filters on
    /// such text failed too (found by probing). SQL_ASCII keeps bytes as given.
    static func requireEncoding(_ encoding: String, of location: PostgresLocation) throws {
        guard encoding != "UTF8", encoding != "SQL_ASCII" else { return }
        throw StoreFailure.unusable(detail: "database \(location.database) on \(location.server) is encoded in \(encoding), which "
                                    + "cannot hold every text flashsale keeps (UTF-8); make it with ENCODING 'UTF8'")
    }

    /// The schema's identity, its oid (`id`), by its name (`$1`): NULL when there is none.
    /// A schema dropped and made again has another. With it, asked inside a transaction,
    /// the server process that runs the transaction and when the transaction began (in
    /// microseconds), which together name it in `pg_stat_activity`.
    static let identityQuery = """
        SELECT (SELECT oid::bigint FROM pg_namespace WHERE nspname = $1) AS id, pg_backend_pid() AS backend,
               (extract(epoch FROM now()) * 1000000)::bigint AS started
        """

    /// A version no flashsale writes (none, or below 1: the table changed by hand) makes the
    /// schema unusable, as a newer one does: migrating from it would run what it already has.
    private static func storedVersion(_ session: PostgresSession) throws -> Int64 {
        let row = try session.firstRow(versionQuery) { (try $0.int64("version"), try $0.text("encoding")) }
        if let encoding = row?.1 { try requireEncoding(encoding, of: session.location) }
        let stored = row?.0
        guard let version = stored, version >= 1 else {
            throw StoreFailure.unusable(detail: "schema \(session.location.schema) has "
                                        + (stored.map { "version \($0)" } ?? "no version in its schema_version table")
                                        + ", which no flashsale writes")
        }
        if version > currentVersion {
            throw StoreFailure.unusable(detail: "schema \(session.location.schema) has version \(version), made by a newer flashsale; this one knows \(currentVersion)")
        }
        return version
    }
}
