import FlashSaleCore

/// Where a PostgreSQL database is and how to reach it: what `--db postgresql://…` says,
/// with the standard `PG*` environment variables filling in what the URL leaves out.
public struct PostgresLocation: Sendable, Equatable {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// The server's socket `.s.PGSQL.<port>` in `directory`, as libpq names it.
        case unixSocket(directory: String, port: Int)
    }

    /// libpq's `sslmode`, the values flashsale supports.
    public enum TLSMode: String, Sendable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var endpoint: Endpoint
    public var user: String
    /// Never shown: messages and logs use `description`.
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// libpq's `sslrootcert`: a file of the certificate authorities that sign the server's
    /// certificate, or `system` for the system's; nil for libpq's default,
    /// `~/.postgresql/root.crt` if it is there (`PostgresLocation.opening`), else the system's.
    public var rootCertificate: String?
    /// libpq's `application_name`: what the server's `pg_stat_activity` and logs call the
    /// connection.
    public var applicationName: String
    /// libpq's `connect_timeout`: how long making the connection (and logging in) may take;
    /// nil waits as long as the system does, as libpq's 0 does.
    public var connectTimeout: Span?
    /// flashsale's tables live in this schema (`flashsale` unless `?schema=` or
    /// `--pg-schema` says otherwise).
    public var schema: String

    public static let defaultSchema = "flashsale"
    public static let defaultApplicationName = "flashsale"
    /// Where libpq waits as long as the system does (minutes, for a host that drops the
    /// connection's packets): a one-shot command should not hang for that long.
    public static let defaultConnectTimeout = Span.seconds(10)

    public init(endpoint: Endpoint, user: String, password: String?, database: String,
                tls: TLSMode, rootCertificate: String? = nil, schema: String = PostgresLocation.defaultSchema,
                applicationName: String = PostgresLocation.defaultApplicationName,
                connectTimeout: Span? = PostgresLocation.defaultConnectTimeout) {
        self.endpoint = endpoint
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
        self.rootCertificate = rootCertificate
        self.schema = schema
        self.applicationName = applicationName
        self.connectTimeout = connectTimeout
    }
}
