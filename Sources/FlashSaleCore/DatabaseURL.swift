/// What tells a database server's URL from a SQLite file's path in `--db` and `FLASHSALE_DB`:
/// the schemes libpq takes, matched as libpq matches them (case-sensitively). Anything else
/// is a path, as it always was (`./postgres://x` is a file).
public enum DatabaseURL {
    public static let schemes = ["postgresql://", "postgres://"]
    /// The variables libpq reads for what a URL leaves out: `PG` and its parameter's name,
    /// but for `PGDATABASE` (dbname) and `PGAPPNAME` (application_name).
    public static let environmentVariables = ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE",
                                              "PGSSLROOTCERT", "PGAPPNAME", "PGCONNECT_TIMEOUT"]
    /// The variables by which libpq would connect elsewhere than the URL and the variables
    /// above say, which flashsale does not follow (a service file's entry; an address
    /// taken instead of the host's): refused when set, where ignored they would have
    /// flashsale work on another database than psql does.
    public static let unfollowedVariables = ["PGSERVICE", "PGHOSTADDR"]
    /// The variables that find libpq's files in the user's home: the password file
    /// (`PGPASSFILE`, else `~/.pgpass`) and the root certificate (`~/.postgresql/root.crt`).
    public static let homeFileVariables = ["PGPASSFILE", "HOME"]

    /// The scheme `text` starts with, nil for a path.
    public static func scheme(of text: String) -> String? {
        schemes.first { text.hasPrefix($0) }
    }

    /// Why `text`, which is no URL flashsale takes, is refused as a path too: it is plainly
    /// a mistyped URL (another scheme, as a typo of postgresql:// or its capitals, or one
    /// before it (`jdbc:postgresql://`), its colon or slashes short, or spaces or quotes
    /// before it) or libpq's `keyword=value` form. Taken for a path, it named a database
    /// that is not there, password and all, or made a file so named. The words (for after
    /// a colon) show nothing of the text past its scheme.
    public static func refusal(of text: String) -> String? {
        guard scheme(of: text) == nil else { return nil }
        // Quotes kept in the value by an env file's reader (`docker --env-file`) or a shell
        // script's doubled quoting (found by probing).
        let before = text.prefix { " \t\"'`".contains($0) }
        let trimmed = text.dropFirst(before.count)
        let hidden = "(the rest is not shown: it may hold a password)"
        if scheme(of: String(trimmed)) != nil {
            return before.contains { " \t".contains($0) } && !before.contains { "\"'`".contains($0) }
                ? "spaces come before its postgresql:// \(hidden)" : "quotes come before its postgresql:// \(hidden)"
        }
        if let end = trimmed.firstRange(of: "://")?.lowerBound, let first = trimmed.first, first.isASCII, first.isLetter,
           trimmed[..<end].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+.-:".contains($0)) }) {
            return "it begins '\(trimmed[..<end])://' \(hidden)"
        }
        // Its scheme with a slash short or none (found by probing: `postgresql:/ann:pw@h/db`),
        // or its colon (`postgres//ann:pw@h/db`).
        if let scheme = ["postgresql:", "postgres:", "postgresql//", "postgres//"].first(where: { trimmed.lowercased().hasPrefix($0) }) {
            let missing = scheme.hasSuffix(":") ? "the //" : "the colon"
            let name = scheme.prefix { $0.isLetter }
            return "it begins '\(trimmed.prefix(scheme.count))' without \(missing) of \(name)://" + " \(hidden)"
        }
        if let equals = trimmed.firstIndex(of: "=") {
            let word = trimmed[..<equals]
            let keyword = word.prefix { $0 != " " }
            guard connectionKeywords.contains(String(keyword)), word.dropFirst(keyword.count).allSatisfy({ $0 == " " }) else {
                return nil
            }
            return "it is in libpq's keyword=value form \(hidden)"
        }
        return nil
    }

    /// Whether `text` may be a PostgreSQL URL or connection string, password and all: one
    /// flashsale takes, its scheme mistyped (capitals, a letter or slashes short, spaces
    /// or quotes before it), another scheme before it (`jdbc:`), anything with a user and
    /// password before a host (`user:password@host`, with a scheme or without, as a URL
    /// missing or misspelling its scheme has them), or libpq's `password=`. An error that
    /// echoes a value never shows such a one (`Quoted`); anything else, `http://…` or a
    /// user `user=bob`, it shows.
    public static func mayHoldPassword(_ text: String) -> Bool {
        let trimmed = text.drop { " \t\"'`".contains($0) }.lowercased()
        return trimmed.hasPrefix("postgres") && trimmed.contains(":") || trimmed.contains("password=")
            || trimmed.lastIndex(of: "@").map { trimmed[..<$0].contains(":") } == true
    }

    /// libpq's connection keywords that begin a `keyword=value` string.
    private static let connectionKeywords: Set<String> = [
        "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "sslmode", "service", "connect_timeout",
        "application_name", "options",
    ]
}
