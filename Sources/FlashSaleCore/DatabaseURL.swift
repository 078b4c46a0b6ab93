/// What tells a database server's URL from a SQLite file's path in `--db` and `FLASHSALE_DB`:
/// the schemes libpq takes, matched as libpq matches them (case-sensitively). Anything else
/// is a path, as it always was (`./postgres://x` is a file).
public enum DatabaseURL {
    public static let schemes = ["postgresql://", "postgres://"]
    /// The variables libpq reads for what a URL leaves out: `PG` and its parameter's name,
    /// but for `PGDATABASE` (dbname) and `PGAPPNAME` (application_name).
    public static let environmentVariables = ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE",
                                              "PGSSLROOTCERT", "PGAPPNAME", "PGCONNECT_TIMEOUT"]
    /// The variables that find libpq's files in the user's home: the password file
    /// (`PGPASSFILE`, else `~/.pgpass`) and the root certificate (`~/.postgresql/root.crt`).
    public static let homeFileVariables = ["PGPASSFILE", "HOME"]

    /// The scheme `text` starts with, nil for a path.
    public static func scheme(of text: String) -> String? {
        schemes.first { text.hasPrefix($0) }
    }
}
