import Testing
import FlashSaleCore
import FlashSalePostgres

/// `--db postgresql://…` read as libpq reads it, with no server.
struct PostgresLocationTests {
    private func location(_ url: String, _ environment: [String: String] = [:], user: String? = "osuser",
                          schema: String? = nil) throws -> PostgresLocation {
        try PostgresLocation(url: url, environment: environment, operatingSystemUser: user, schema: schema)
    }

    /// The usage error's message, which must never hold `secret`.
    private func refusal(_ url: String, _ environment: [String: String] = [:], user: String? = "osuser",
                         schema: String? = nil) -> String? {
        do {
            _ = try location(url, environment, user: user, schema: schema)
            return nil
        } catch {
            guard case .usage(let message)? = error as? FlashSaleError else { return "not a usage error: \(error)" }
            #expect(!message.contains("s3cret"), "the message shows the password: \(message)")
            return message
        }
    }

    @Test func everyPartOfTheURLIsRead() throws {
        let found = try location("postgresql://ann:s3cret@db.example:6543/shop?sslmode=require&schema=sale1")
        #expect(found == PostgresLocation(endpoint: .tcp(host: "db.example", port: 6543), user: "ann", password: "s3cret",
                                          database: "shop", tls: .require, schema: "sale1"))
    }

    /// libpq's root certificate: the URL's `sslrootcert`, else `PGSSLROOTCERT`; shown in the
    /// URL that messages print (a path, no secret).
    @Test func theRootCertificateComesFromTheURLOrTheEnvironment() throws {
        let named = try location("postgresql://ann@db.example/shop?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
                                 ["PGSSLROOTCERT": "/ignored.pem"])
        #expect(named.rootCertificate == "/etc/ca.pem")
        #expect(named.description == "postgresql://ann@db.example:5432/shop?sslmode=verify-full&sslrootcert=/etc/ca.pem")
        #expect(try location("postgresql://ann@db.example/shop", ["PGSSLROOTCERT": "system"]).rootCertificate == "system")
        #expect(try location("postgresql://ann@db.example/shop").rootCertificate == nil)
        // The system's authorities vouch for any public name: only verify-full, as libpq.
        #expect(try location("postgresql://ann@db.example/shop?sslrootcert=system").tls == .verifyFull)
        #expect(refusal("postgresql://ann@db.example/shop?sslrootcert=system&sslmode=require")
                == "database URL: sslrootcert=system takes sslmode=verify-full, not 'require'")
    }

    @Test func postgresSchemeIsTheSame() throws {
        #expect(try location("postgres://ann@h/d") == location("postgresql://ann@h/d"))
    }

    @Test func anEmptyURLTakesLibpqDefaults() throws {
        let found = try location("postgresql://")
        #expect(found == PostgresLocation(endpoint: .unixSocket(directory: "/var/run/postgresql", port: 5432), user: "osuser",
                                          password: nil, database: "osuser", tls: .prefer, schema: "flashsale"))
    }

    @Test func environmentFillsWhatTheURLLeavesOut() throws {
        let environment = ["PGHOST": "10.0.0.5", "PGPORT": "5433", "PGUSER": "bob", "PGPASSWORD": "s3cret",
                           "PGDATABASE": "sales", "PGSSLMODE": "verify-full"]
        #expect(try location("postgresql://", environment)
                == PostgresLocation(endpoint: .tcp(host: "10.0.0.5", port: 5433), user: "bob", password: "s3cret",
                                    database: "sales", tls: .verifyFull))
        // What the URL says wins over the environment.
        #expect(try location("postgresql://ann:pw@h:7000/d?sslmode=disable", environment)
                == PostgresLocation(endpoint: .tcp(host: "h", port: 7000), user: "ann", password: "pw", database: "d",
                                    tls: .disable))
    }

    /// What a URL copied from a hosting console or a libpq program often carries: the
    /// connection's name on the server, how long to wait for it, and verify-ca.
    @Test func libpqsApplicationNameConnectTimeoutAndVerifyCA() throws {
        let defaults = try location("postgresql://h/d")
        #expect(defaults.applicationName == "flashsale")
        #expect(defaults.connectTimeout == .seconds(10))
        let given = try location("postgresql://h/d?application_name=checkout%20web&connect_timeout=30&sslmode=verify-ca")
        #expect(given.applicationName == "checkout web")
        #expect(given.connectTimeout == .seconds(30))
        #expect(given.tls == .verifyCA)
        #expect(given.description == "postgresql://osuser@h:5432/d?sslmode=verify-ca&application_name=checkout%20web&connect_timeout=30")
        // From the environment, as libpq's PGAPPNAME and PGCONNECT_TIMEOUT.
        let environment = try location("postgresql://h/d", ["PGAPPNAME": "worker", "PGCONNECT_TIMEOUT": "7"])
        #expect(environment.applicationName == "worker")
        #expect(environment.connectTimeout == .seconds(7))
        // libpq's rules: 0 or less waits as long as the system does, and 1 is 2.
        #expect(try location("postgresql://h/d?connect_timeout=0").connectTimeout == nil)
        #expect(try location("postgresql://h/d?connect_timeout=-3").connectTimeout == nil)
        #expect(try location("postgresql://h/d?connect_timeout=1").connectTimeout == .seconds(2))
        #expect(try location("postgresql://h/d?connect_timeout=0").description == "postgresql://osuser@h:5432/d?connect_timeout=0")
        #expect(try #require(refusal("postgresql://h/d", ["PGCONNECT_TIMEOUT": "soon"])).contains("from PGCONNECT_TIMEOUT"))
    }

    @Test func databaseDefaultsToTheUser() throws {
        #expect(try location("postgresql://ann@h").database == "ann")
        #expect(try location("postgresql://h", ["PGUSER": "bob"]).database == "bob")
    }

    @Test func anEmptyVariableCountsAsUnset() throws {
        #expect(try location("postgresql://h", ["PGPORT": "", "PGUSER": ""]).endpoint == .tcp(host: "h", port: 5432))
        #expect(try location("postgresql://h", ["PGUSER": ""]).user == "osuser")
    }

    @Test func queryParametersOverrideTheURLsParts() throws {
        let found = try location("postgresql://ann@h:1/d?host=other&port=2&user=bob&password=s3cret&dbname=e")
        #expect(found == PostgresLocation(endpoint: .tcp(host: "other", port: 2), user: "bob", password: "s3cret",
                                          database: "e", tls: .prefer))
    }

    /// An empty parameter clears the authority's part and takes libpq's default, not the
    /// environment's: psql reads `?host=` as the local socket (found by probing, where
    /// flashsale kept the authority's host).
    @Test func anEmptyParameterTakesLibpqsDefaultNotTheAuthorityOrTheEnvironment() throws {
        let environment = ["PGHOST": "envhost", "PGPORT": "7777", "PGUSER": "envuser", "PGDATABASE": "envdb"]
        let found = try location("postgresql://ann@h:1/d?host=&port=&user=&dbname=", environment)
        #expect(found.endpoint == .unixSocket(directory: PostgresLocation.defaultSocketDirectory, port: 5432))
        #expect(found.user == "osuser" && found.database == "osuser")
        // Given again, not empty, the last one counts.
        #expect(try location("postgresql://ann@h:1/d?host=&host=other", environment).endpoint == .tcp(host: "other", port: 1))
        // libpq refuses an empty sslmode or connect_timeout: taken for the default, `?sslmode=`
        // made PGSSLMODE=verify-full a connection in clear.
        #expect(refusal("postgresql://ann@h/d?sslmode=", ["PGSSLMODE": "verify-full"])
                == "database URL: sslmode '' from the URL's sslmode parameter is not one of disable, prefer, require, verify-ca, verify-full")
        #expect(refusal("postgresql://ann@h/d?connect_timeout=")
                == "database URL: connect_timeout '' from the URL's connect_timeout parameter is not a whole number of seconds")
    }

    @Test func aHostStartingWithASlashIsASocketDirectory() throws {
        #expect(try location("postgresql:///shop?host=/run/pg").endpoint == .unixSocket(directory: "/run/pg", port: 5432))
        #expect(try location("postgresql://%2Ftmp%2Fpg:5444/shop").endpoint == .unixSocket(directory: "/tmp/pg", port: 5444))
        #expect(try location("postgresql:///shop", ["PGHOST": "/tmp/sock"]).endpoint == .unixSocket(directory: "/tmp/sock", port: 5432))
    }

    @Test func anIPv6HostIsBracketed() throws {
        #expect(try location("postgresql://[::1]:5433/d").endpoint == .tcp(host: "::1", port: 5433))
        #expect(try location("postgresql://[2001:db8::7]/d").endpoint == .tcp(host: "2001:db8::7", port: 5432))
    }

    @Test func partsArePercentDecoded() throws {
        let found = try location("postgresql://an%40n:p%40ss%2Fw%3Ard+x@h/sh%C3%B6p")
        #expect(found.user == "an@n")
        #expect(found.password == "p@ss/w:rd+x")
        #expect(found.database == "shöp")
    }

    /// The credentials end at the '@' before the host, as libpq finds them: a '?' or ':' in
    /// the password is the password's (a '?' split it, and the message showed its end).
    @Test func aPasswordMayHoldWhatEndsOtherParts() throws {
        let found = try location("postgresql://app:Xy9?k:L2w@127.0.0.1:55991/shop?sslmode=disable")
        #expect(found == PostgresLocation(endpoint: .tcp(host: "127.0.0.1", port: 55991), user: "app",
                                          password: "Xy9?k:L2w", database: "shop", tls: .disable, schema: "flashsale"))
        #expect(try location("postgresql://app:p@ss@h/d").password == "p@ss")
        // An '@' after the first '/' is not the credentials'.
        #expect(try location("postgresql:///d?host=/tmp&user=me@corp").user == "me@corp")
    }

    @Test func schemaComesFromTheOptionThenTheURL() throws {
        #expect(try location("postgresql://h/d?schema=from_url").schema == "from_url")
        #expect(try location("postgresql://h/d?schema=from_url", schema: "from_option").schema == "from_option")
        #expect(try location("postgresql://h/d").schema == "flashsale")
    }

    @Test(arguments: ["Upper", "1abc", "pg_catalog", "has-dash", "", String(repeating: "a", count: 64), "sch\u{e9}ma"])
    func aSchemaNameThatNeedsQuotingIsRefused(name: String) {
        #expect(refusal("postgresql://h/d", schema: name)?.contains("is not a schema name") == true)
    }

    @Test(arguments: [
        ("postgresql://u@h:99999/d", "port '99999' from the URL is not a number from 1 to 65535"),
        ("postgresql://u:p@h:5x/d", "port '5x'"),
        ("postgresql://h:99999/d", "the port after the host is not a number from 1 to 65535 (a user name and password go before"),
        ("postgresql://h/d?sslmode=allow", "sslmode 'allow' from the URL's sslmode parameter is not one of disable, prefer, require, verify-ca, verify-full"),
        ("postgresql://h/d?options=-cwork_mem%3D1MB", "unknown parameter 'options'"),
        ("postgresql://h/d?connect_timeout=5s", "connect_timeout '5s' from the URL's connect_timeout parameter is not a whole number of seconds"),
        ("postgresql://h/d?sslmode=verify-ca&sslrootcert=system", "sslrootcert=system takes sslmode=verify-full, not 'verify-ca'"),
        ("postgresql://h/d?sslmode", "has no '='"),
        ("postgresql://h/d?schema=", "schema '' is not a schema name"),
        ("postgresql://h1,h2/d", "several hosts"),
        ("postgresql:///d?host=h1,h2", "several hosts in the URL's host parameter are not supported"),
        ("postgresql://[::1/d", "closing ]"),
        ("postgresql://u@h/d%2", "the dbname has a malformed %-escape"),
        ("postgresql://u@h/d%00", "NUL"),
        ("mysql://h/d", "not a postgresql:// or postgres:// URL"),
    ])
    func aMalformedURLIsAUsageError(url: String, expected: String) throws {
        let message = try #require(refusal(url))
        #expect(message.contains(expected), "\(message)")
    }

    @Test func aBadVariableIsNamed() throws {
        #expect(try #require(refusal("postgresql:///d", ["PGHOST": "h1,h2"])).contains("several hosts in PGHOST"))
        let message = try #require(refusal("postgresql://h/d", ["PGPORT": "none"]))
        #expect(message.contains("from PGPORT"), "\(message)")
        #expect(try #require(refusal("postgresql://h/d", ["PGSSLMODE": "allow"])).contains("from PGSSLMODE"))
    }

    /// Found by probing: what reads as a port, a parameter with no '=' or an unknown
    /// parameter may be a password's text, and was shown.
    @Test(arguments: [
        "postgresql://ann:s3cret/shop",
        "postgresql://ann@h/shop?password:s3cret",
        "postgresql://ann@h/shop?password%3Ds3cret",
        "postgresql://ann@h/shop?password=hun&s3cret",
        "postgresql://ann@h/shop?password=hun&s3cret=2",
        "postgresql://ann@h/shop?password=hun&port=s3cret",
        "postgresql://ann@h/shop?password=hun&sslmode=s3cret",
        "postgresql://ann@h/shop?password=hun&connect_timeout=s3cret",
        "postgresql://ann@h/shop?password=hun&schema=s3cret!",
    ])
    func aPasswordMistypedIsNeverEchoed(url: String) throws {
        let message = try #require(refusal(url))
        #expect(!message.contains("s3cret"), "\(message)")
    }

    @Test func aMalformedPasswordIsNeverEchoed() throws {
        let message = try #require(refusal("postgresql://ann:s3cret%zz@h/d"))
        #expect(message == "database URL: the password has a malformed %-escape (use %XX, e.g. %40 for @)")
        // In the query as in the authority.
        #expect(try #require(refusal("postgresql://ann@h/d?password=s3cret%G1")).contains("the password"))
    }

    /// A '/' ends the credentials (libpq's rule too), so an unencoded one in a password
    /// left its start where the port goes; libpq shows it in its error.
    @Test(arguments: ["postgresql://ann:s3/cret@h/d", "postgresql://ann:s3cret/x@h:5432/d", "postgresql://ann:12/34@h/d"])
    func aPasswordWithAnUnencodedSlashIsNeverEchoed(url: String) throws {
        let message = try #require(refusal(url))
        #expect(message == "database URL: an '@' after the host; write a '/' in the user name or password as %2F, "
                + "and an '@' in the database name as %40")
        #expect(try location("postgresql://ann:s3%2Fcret@h/d").password == "s3/cret")
    }

    /// With no /dbname, an '@' in the parameters was taken for the end of the credentials:
    /// the host became the rest of the query, password and all, and the message showed it
    /// (found by probing). After credentials and a host without a port, too: the host was
    /// taken from after the query's '@', and the password from the host and the query
    /// (found by probing again). A '?' in a password, with nothing like a parameter after
    /// it, is still a password's.
    @Test(arguments: ["postgresql://127.0.0.1:5432?dbname=d&user=ann@corp&password=s3cret",
                      "postgresql://127.0.0.1:5432?user=ann@corp/x&password=s3cret&dbname=d",
                      "postgresql://ann:s3cret@db.example?application_name=x@127.0.0.1",
                      "postgresql://ann:s3cret@127.0.0.1?application_name=x@127.0.0.1:1",
                      "postgresql://ann:s3cret@[::1]?x=@y",
                      "postgresql://ann:s3?cret@127.0.0.1?application_name=x@127.0.0.1:1",
                      "postgresql://ann:s3?cret@127.0.0.1:5432?application_name=x@127.0.0.1"])
    func anAtInTheParametersOfAURLWithoutADatabaseIsRefusedWithoutEcho(url: String) throws {
        let message = try #require(refusal(url))
        #expect(message == "database URL: an '@' in the parameters after '?'; write it as %40 "
                + "(or a '?' in the user name or password as %3F)")
        let encoded = try location("postgresql://127.0.0.1:5432?dbname=d&user=ann%40corp&password=s3cret")
        #expect(encoded.user == "ann@corp" && encoded.password == "s3cret")
        #expect(try location("postgresql://ann:s3?cret@h").password == "s3?cret")
        // A password with a '?' and a '=' is still a password's after a user name.
        let found = try location("postgresql://ann:pa?ss=w@127.0.0.1:1/d")
        #expect(found.user == "ann" && found.password == "pa?ss=w" && found.endpoint == .tcp(host: "127.0.0.1", port: 1))
    }

    /// PGSERVICE (a service file's entry) and PGHOSTADDR would have libpq, and psql,
    /// connect elsewhere than flashsale did when it ignored them (found by probing).
    @Test(arguments: ["PGSERVICE", "PGHOSTADDR"])
    func aVariableThatLibpqWouldFollowElsewhereIsRefused(variable: String) throws {
        #expect(refusal("postgresql://ann@h/d", [variable: "prod"]) == "database URL: \(variable) is set, which flashsale does "
                + "not follow (psql would connect where it says); name the server in the URL or in PGHOST and PGPORT, "
                + "and unset \(variable)")
        #expect(try location("postgresql://ann@h/d", [variable: ""]).user == "ann", "empty is unset")
    }

    @Test func withoutAnyUserNameItSaysWhereToGiveOne() throws {
        #expect(refusal("postgresql://h/d", user: nil) == "database URL: no user name; give one in the URL or in PGUSER")
    }

    @Test func descriptionNeverHoldsThePassword() throws {
        let found = try location("postgresql://ann:s3cret@db.example:6543/shop?sslmode=require&schema=sale1")
        #expect(found.description == "postgresql://ann@db.example:6543/shop?sslmode=require&schema=sale1")
        #expect("\(found)" == found.description)
        #expect(String(reflecting: found) == found.description)
    }

    @Test func descriptionReadsBackToTheSameLocationButThePassword() throws {
        for url in ["postgresql://", "postgresql://[::1]:7/d", "postgresql://an%40n:x@h/sh%C3%B6p?sslmode=disable",
                    "postgresql:///d?host=/run/my%20pg&port=6000&schema=s1",
                    "postgresql://h/d?application_name=a%26b&connect_timeout=0&sslmode=verify-ca"] {
            var found = try location(url)
            found.password = nil
            #expect(try location(found.description) == found, "\(url) → \(found.description)")
        }
    }

    @Test func endpointIsNamedAsHostAndPortOrSocket() throws {
        #expect(try location("postgresql://h:6000").endpoint.description == "h:6000")
        #expect(try location("postgresql://[::1]").endpoint.description == "[::1]:5432")
        #expect(try location("postgresql://").endpoint.description == "/var/run/postgresql/.s.PGSQL.5432")
    }
}
