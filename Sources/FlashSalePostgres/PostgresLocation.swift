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
    /// flashsale's tables live in this schema (`flashsale` unless `?schema=` or
    /// `--pg-schema` says otherwise).
    public var schema: String

    public static let defaultSchema = "flashsale"

    public init(endpoint: Endpoint, user: String, password: String?, database: String,
                tls: TLSMode, rootCertificate: String? = nil, schema: String = PostgresLocation.defaultSchema) {
        self.endpoint = endpoint
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
        self.rootCertificate = rootCertificate
        self.schema = schema
    }
}
