import FlashSaleCore

extension PostgresLocation {
    /// Where Debian's (and libpq's default build's) server puts its socket.
    public static let defaultSocketDirectory = "/var/run/postgresql"
    public static let defaultPort = 5432
    /// The query parameters understood: libpq's names for the URL's parts, and flashsale's schema.
    static let parameters = ["host", "port", "user", "password", "dbname", "sslmode", "sslrootcert", "application_name",
                             "connect_timeout", "schema"]

    /// Reads a URL as libpq does: `postgresql://[user[:password]@][host][:port][/dbname][?param=value&...]`
    /// (or `postgres://`), percent-decoded, a query parameter overriding the part it names,
    /// then `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`,
    /// `PGAPPNAME` and `PGCONNECT_TIMEOUT` from `environment` for what is still missing, then
    /// libpq's defaults: the Unix socket in /var/run/postgresql, port 5432,
    /// `operatingSystemUser` (asked only then: a look-up in the password database costs a
    /// static binary a millisecond), a database named as the user, sslmode prefer; and
    /// flashsale's: application name `flashsale`, 10 s to connect. A host that starts with `/` is a socket directory. `schema`
    /// (`--pg-schema`) overrides `?schema=`. A URL that does not parse is a usage error whose
    /// message never holds the password.
    public init(url text: String, environment: [String: String], operatingSystemUser: @autoclosure () -> String?,
                schema schemaOverride: String? = nil) throws(FlashSaleError) {
        guard let scheme = DatabaseURL.scheme(of: text) else {
            throw .usage("database URL: not a postgresql:// or postgres:// URL")
        }
        var parts = try URLParts(Array(text.utf8.dropFirst(scheme.utf8.count))[...])
        if let variable = DatabaseURL.unfollowedVariables.first(where: { !(environment[$0] ?? "").isEmpty }) {
            throw .usage("database URL: \(variable) is set, which flashsale does not follow (psql would connect where it "
                         + "says); name the server in the URL or in PGHOST and PGPORT, and unset \(variable)")
        }
        for variable in DatabaseURL.environmentVariables {
            let name = switch variable {
            case "PGDATABASE": "dbname"
            case "PGAPPNAME": "application_name"
            default: variable.dropFirst(2).lowercased()
            }
            if parts[name] == nil, !parts.emptied.contains(name), let value = environment[variable], !value.isEmpty {
                parts[name] = value
                parts.source[name] = variable
            }
        }
        let user = parts["user"] ?? operatingSystemUser()
        guard let user, !user.isEmpty else {
            throw .usage("database URL: no user name; give one in the URL or in PGUSER")
        }
        let host = parts["host"] ?? PostgresLocation.defaultSocketDirectory
        // libpq's list of hosts to try in turn, however it came (the authority's is refused as it is parsed).
        if host.contains(",") {
            throw .usage("database URL: several hosts in \(parts.source["host"] ?? "the URL") are not supported; name one")
        }
        let port = try parts.port()
        let schema = if let schemaOverride { try PostgresLocation.checkedSchema(schemaOverride) } else { try parts.checkedSchema() }
        self.init(
            endpoint: host.hasPrefix("/") ? .unixSocket(directory: host, port: port) : .tcp(host: host, port: port),
            user: user,
            password: parts["password"],
            database: parts["dbname"] ?? user,
            tls: try parts.tlsMode(rootCertificate: parts["sslrootcert"]),
            rootCertificate: parts["sslrootcert"],
            schema: schema,
            applicationName: parts["application_name"] ?? PostgresLocation.defaultApplicationName,
            connectTimeout: try parts.connectTimeout())
    }

    /// A schema name that needs no quoting in psql either: lower-case letters, digits and
    /// `_`, not starting with a digit, at most PostgreSQL's 63 bytes, and not `pg_...`,
    /// which PostgreSQL keeps for itself.
    public static func checkedSchema(_ name: String) throws(FlashSaleError) -> String {
        try checkedSchema(name, named: "schema '\(Quoted(name))'")
    }

    /// `checkedSchema(_:)`, its message naming the schema as `named` says.
    fileprivate static func checkedSchema(_ name: String, named: String) throws(FlashSaleError) -> String {
        let bytes = Array(name.utf8)
        let allowed = bytes.allSatisfy { $0 == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        guard allowed, (1...63).contains(bytes.count), !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[0]),
              !name.hasPrefix("pg_")
        else {
            throw .usage("\(named) is not a schema name: 1 to 63 of a-z, 0-9 and _, "
                         + "not starting with a digit or pg_")
        }
        return name
    }
}

extension PostgresLocation: CustomStringConvertible {
    /// The location as a URL without its password, for messages and logs: given with
    /// `PGPASSWORD` (or its URL) it reaches the same database.
    public var description: String {
        var query: [(String, String)] = []
        var authority = percentEncoded(user) + "@"
        switch endpoint {
        case .tcp(let host, let port):
            authority += (host.contains(":") ? "[\(host)]" : percentEncoded(host)) + ":\(port)"
        case .unixSocket(let directory, let port):
            query += [("host", directory), ("port", String(port))]
        }
        if tls != .prefer { query.append(("sslmode", tls.rawValue)) }
        if let rootCertificate { query.append(("sslrootcert", rootCertificate)) }
        if applicationName != PostgresLocation.defaultApplicationName { query.append(("application_name", applicationName)) }
        if connectTimeout != PostgresLocation.defaultConnectTimeout {
            query.append(("connect_timeout", String((connectTimeout?.milliseconds ?? 0) / 1000)))
        }
        if schema != PostgresLocation.defaultSchema { query.append(("schema", schema)) }
        let parameters = query.map { "\($0)=\(percentEncoded($1, keeping: "/"))" }.joined(separator: "&")
        return "postgresql://\(authority)/\(percentEncoded(database))" + (parameters.isEmpty ? "" : "?" + parameters)
    }
}

extension PostgresLocation.Endpoint: CustomStringConvertible {
    /// `host:port`, or the socket's path: what a message about reaching the server names.
    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unixSocket(let directory, let port): "\(directory)/.s.PGSQL.\(port)"
        }
    }
}

/// The URL's parts and parameters, decoded, by libpq's parameter names; `source` says
/// where each came from, for messages.
private struct URLParts {
    private var values: [String: String] = [:]
    var source: [String: String] = [:]
    /// The parameters given empty, which take libpq's default rather than the environment.
    private(set) var emptied: Set<String> = []
    /// The parameters libpq takes empty for its default.
    private static let defaultWhenEmpty: Set = ["host", "port", "user", "password", "dbname", "sslrootcert", "application_name"]
    /// `source` of a part before the '/' (host, port, user, password) or the database's.
    private static let sourceInAuthority = "the URL"
    /// Whether an '@' ended the credentials, so that the port after the host is not a
    /// password whose '@' was left out.
    private var credentialsEnded = false

    subscript(name: String) -> String? {
        get { values[name] }
        set { values[name] = newValue }
    }

    init(_ url: ArraySlice<UInt8>) throws(FlashSaleError) {
        var rest = url
        // The credentials first, as libpq finds them: up to an '@' before the first '/', so
        // that a password may hold '?' and ':' unencoded. The last such '@', where libpq
        // takes the first: a password with an '@' is read whole, not half of it as the host.
        if let at = rest.prefix(while: { $0 != UInt8(ascii: "/") }).lastIndex(of: UInt8(ascii: "@")) {
            let userInfo = rest[..<at]
            // A host (and port) then a '?' and a '=' before it: the '@' is in the query of a
            // URL with no /dbname (`h:5432?user=name@corp&password=...`), and what came
            // before it no user name. libpq misreads it too, and would show the query,
            // password and all, as the host. With credentials before the host
            // (`ann:pw@h?application_name=x@y`), libpq takes the first '@' and connects to
            // `h`; read from the last, the host was `y`, sent a password made of the real one
            // and the query (found by probing), whatever '?' the password holds itself
            // (`ann:p?w@h?...`, found by review). Refused without echoing any of it. (A
            // password with a '?' and a '=' after a user name, `ann:pa?s=s@h/d`, is a password's.)
            if URLParts.hasAHostBeforeAQuery(userInfo) {
                throw .usage("database URL: an '@' in the parameters after '?'; write it as %40 "
                             + "(or a '?' in the user name or password as %3F)")
            }
            rest = rest[rest.index(after: at)...]
            credentialsEnded = true
            let colon = userInfo.firstIndex(of: UInt8(ascii: ":"))
            try set("user", userInfo[..<(colon ?? userInfo.endIndex)])
            if let colon {
                try set("password", userInfo[userInfo.index(after: colon)...])
            }
        }
        let afterQuery = rest.firstIndex(of: UInt8(ascii: "?"))
        let path = rest[..<(afterQuery ?? rest.endIndex)]
        let slash = path.firstIndex(of: UInt8(ascii: "/"))
        // An '@' after the host is most likely a password's '/' left unencoded, which ended
        // the credentials early: libpq would take the password's start for a port and show
        // it, or try a host named as the user. Refused without echoing any of it.
        if let slash, path[slash...].contains(UInt8(ascii: "@")) {
            throw .usage("database URL: an '@' after the host; write a '/' in the user name or password as %2F, "
                         + "and an '@' in the database name as %40")
        }
        try setHostAndPort(path[..<(slash ?? path.endIndex)])
        if let slash {
            try set("dbname", path[path.index(after: slash)...])
        }
        if let afterQuery {
            for (index, parameter) in rest[rest.index(after: afterQuery)...].split(separator: UInt8(ascii: "&")).enumerated() {
                try setParameter(parameter, number: index + 1)
            }
        }
    }

    /// Whether some '?' in `userInfo`, with a '=' after it, follows what reads as a host and
    /// port, after the last '@' before it if there is one: a query, its '@' taken for the
    /// credentials' end.
    private static func hasAHostBeforeAQuery(_ userInfo: ArraySlice<UInt8>) -> Bool {
        userInfo.indices.contains { question in
            guard userInfo[question] == UInt8(ascii: "?"), userInfo[question...].contains(UInt8(ascii: "=")) else { return false }
            let before = userInfo[..<question]
            return readsAsHostAndPort(before.lastIndex(of: UInt8(ascii: "@")).map { before[before.index(after: $0)...] } ?? before)
        }
    }

    /// Whether `text` is shaped as a host and port (`h`, `h:5432`, `[::1]:5432`) rather than
    /// as credentials with a password (`ann:pa`): no ':', or digits alone after the last.
    private static func readsAsHostAndPort(_ text: ArraySlice<UInt8>) -> Bool {
        if text.first == UInt8(ascii: "[") { return true }
        guard let colon = text.lastIndex(of: UInt8(ascii: ":")) else { return true }
        return text[text.index(after: colon)...].allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// `host`, `host:port`, `[::1]:port`, `:port`, or nothing.
    private mutating func setHostAndPort(_ authority: ArraySlice<UInt8>) throws(FlashSaleError) {
        guard !authority.contains(UInt8(ascii: ",")) else {
            throw .usage("database URL: several hosts are not supported; name one")
        }
        var hostEnd = authority.endIndex
        var host = authority
        if authority.first == UInt8(ascii: "[") {
            guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else {
                throw .usage("database URL: an IPv6 host needs its closing ]")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            hostEnd = authority.index(after: close)
            guard hostEnd == authority.endIndex || authority[hostEnd] == UInt8(ascii: ":") else {
                throw .usage("database URL: ']' must end the host or come before ':PORT'")
            }
        } else if let colon = authority.firstIndex(of: UInt8(ascii: ":")) {
            hostEnd = colon
            host = authority[..<colon]
        }
        try set("host", host)
        if hostEnd < authority.endIndex {
            try set("port", authority[authority.index(after: hostEnd)...])
        }
    }

    /// The `number`th parameter after '?'. One that is not a known `name=value` is named by
    /// its number, not its text, which may be a password's: `password:s3cret` mistyped, or
    /// the rest of `password=s3&cret` after an unencoded '&' (found by probing). An unknown
    /// name is shown only when no password came before it in the query.
    private mutating func setParameter(_ parameter: ArraySlice<UInt8>, number: Int) throws(FlashSaleError) {
        guard let equals = parameter.firstIndex(of: UInt8(ascii: "=")) else {
            throw .usage("database URL: parameter \(number) after '?' has no '='; write an '&' in a value, a password's "
                         + "too, as %26")
        }
        let name = try URLParts.decoded(parameter[..<equals], part: "a parameter name")
        guard PostgresLocation.parameters.contains(name) else {
            let shown = source["password"] == URLParts.sourceInQuery("password") ? "\(number) after '?'" : "'\(Quoted(name))'"
            throw .usage("database URL: unknown parameter \(shown) (flashsale takes "
                         + PostgresLocation.parameters.joined(separator: ", ") + "; an '&' in a value is written %26)")
        }
        try set(name, parameter[parameter.index(after: equals)...], fromQuery: true)
    }

    private static func sourceInQuery(_ name: String) -> String { "the URL's \(name) parameter" }

    /// The schema the URL names (flashsale's default if none), checked; not shown when it
    /// may hold the rest of a password (`shown`: found by probing).
    func checkedSchema() throws(FlashSaleError) -> String {
        guard let name = self["schema"] else { return PostgresLocation.defaultSchema }
        let shown = shown("schema", name)
        return try PostgresLocation.checkedSchema(
            name, named: shown.isEmpty ? "database URL: the schema parameter (not shown: it may be the rest of a password "
                + "whose '&' was not written %26)" : "schema\(shown)")
    }

    /// `name`'s value `text` as a message shows it, ` 'text'`; nothing when it came from the
    /// query, as a password did: an unencoded '&' in the password may have cut its rest
    /// into this parameter (`password=s3&port=cret`: found by probing).
    private func shown(_ name: String, _ text: String) -> String {
        let mayBePassword = source[name] == URLParts.sourceInQuery(name) && source["password"] == URLParts.sourceInQuery("password")
        return mayBePassword ? "" : " '\(Quoted(text))'"
    }

    /// Stores a part. An empty one in the authority is left out, as libpq leaves it to the
    /// environment. libpq stores an empty parameter (`?host=`), so neither the authority nor
    /// the environment fills it in: one of `defaultWhenEmpty` clears what the authority gave
    /// and is `emptied`, its built-in default applying (`?host=` is the local socket,
    /// whatever PGHOST says); any other is kept empty for its check to refuse, as libpq
    /// refuses an empty `sslmode` (where the environment's would have required TLS) or
    /// `connect_timeout`, and flashsale an empty `schema`.
    private mutating func set<Bytes: Collection<UInt8>>(_ name: String, _ bytes: Bytes, fromQuery: Bool = false) throws(FlashSaleError) {
        let value = try URLParts.decoded(bytes, part: name == "password" ? "the password" : "the \(name)")
        if value.isEmpty, !fromQuery, name != "schema" { return }
        if value.isEmpty, URLParts.defaultWhenEmpty.contains(name) {
            values[name] = nil
            source[name] = nil
            emptied.insert(name)
            return
        }
        values[name] = value
        source[name] = fromQuery ? URLParts.sourceInQuery(name) : URLParts.sourceInAuthority
        emptied.remove(name)
    }

    /// Percent-decoded, as libpq does: `+` stays `+`, and a malformed escape, `%00` or bytes
    /// that are not UTF-8 are refused. The message names the part, never its text: it may
    /// be the password.
    private static func decoded<Bytes: Collection<UInt8>>(_ bytes: Bytes, part: String) throws(FlashSaleError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            index = bytes.index(after: index)
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                continue
            }
            guard index != bytes.endIndex, let high = hexValue(bytes[index]),
                  bytes.index(after: index) != bytes.endIndex, let low = hexValue(bytes[bytes.index(after: index)])
            else {
                throw .usage("database URL: \(part) has a malformed %-escape (use %XX, e.g. %40 for @)")
            }
            index = bytes.index(index, offsetBy: 2)
            out.append(high << 4 | low)
        }
        guard !out.contains(0), let text = String(validating: out, as: UTF8.self) else {
            throw .usage("database URL: \(part) decodes to a NUL byte or to bytes that are not UTF-8")
        }
        return text
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    func port() throws(FlashSaleError) -> Int {
        guard let text = values["port"] else { return PostgresLocation.defaultPort }
        guard (1...5).contains(text.utf8.count), text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let port = Int(text), (1...65_535).contains(port)
        else {
            // A port after the host may be a password whose user name and '@' are missing
            // (`postgresql://ann:s3cret/db`: found by probing), so it is not shown.
            guard source["port"] != URLParts.sourceInAuthority || credentialsEnded else {
                throw .usage("database URL: the port after the host is not a number from 1 to 65535 (a user name and "
                             + "password go before an '@': postgresql://USER:PASSWORD@HOST:PORT/DBNAME)")
            }
            throw .usage("database URL: port\(shown("port", text)) from \(source["port"] ?? "the URL") is not a number from 1 to 65535")
        }
        return port
    }

    /// libpq's `connect_timeout`: whole seconds, at least 2 (libpq's minimum: 1 is 2), and
    /// 0 or less for no limit; flashsale's 10 s when not given.
    func connectTimeout() throws(FlashSaleError) -> Span? {
        guard let text = values["connect_timeout"] else { return PostgresLocation.defaultConnectTimeout }
        guard let seconds = Int(text), seconds < 1_000_000_000 else {
            throw .usage("database URL: connect_timeout\(shown("connect_timeout", text)) from \(source["connect_timeout"] ?? "the URL") "
                         + "is not a whole number of seconds")
        }
        return seconds <= 0 ? nil : .seconds(Int64(max(2, seconds)))
    }

    /// `prefer` by default, `verify-full` with `sslrootcert=system`, which takes no weaker
    /// mode: the system's authorities vouch for any public name, so only checking the name
    /// means anything (libpq's rule).
    func tlsMode(rootCertificate: String?) throws(FlashSaleError) -> PostgresLocation.TLSMode {
        let system = rootCertificate == "system"
        guard let text = values["sslmode"] else { return system ? .verifyFull : .prefer }
        guard let mode = PostgresLocation.TLSMode(rawValue: text) else {
            throw .usage("database URL: sslmode\(shown("sslmode", text)) from \(source["sslmode"] ?? "the URL") is not one of "
                         + PostgresLocation.TLSMode.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard !system || mode == .verifyFull else {
            // `text` is one of the modes here, never another's text.
            throw .usage("database URL: sslrootcert=system takes sslmode=verify-full, not '\(Quoted(text))'")
        }
        return mode
    }
}

/// `text` with every byte outside RFC 3986's unreserved characters (and `keeping`)
/// percent-encoded: a URL's part that decodes back to `text`.
private func percentEncoded(_ text: String, keeping kept: Character? = nil) -> String {
    var out = ""
    for byte in text.utf8 {
        let character = Character(Unicode.Scalar(byte))
        if byte < 0x80, character.isLetter || character.isNumber || "-._~".contains(character) || character == kept {
            out.append(character)
        } else {
            out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
        }
    }
    return out
}

private extension String {
    func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
