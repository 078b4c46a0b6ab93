import Foundation
import Glibc
import JWTKit
import Testing
import FlashSaleTestSupport

/// Who the buyer is (http.md, `--auth` and "Keys for JWT"): tokens signed in the test
/// with jwt-kit against each kind of key; every token the contract refuses is 401; the
/// start-up refusals are exit 2 with one line; header mode on a Unix socket.
@Suite struct AuthenticationTests {
    static let bookings = "/booking-service/book-item/s1"

    /// A sale and `serve --auth jwt --jwt-key FILE` with `key` written to FILE.
    static func served(key: String, _ more: [String] = []) throws -> ServedDatabase {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        let path = served.directory + "/jwt.key"
        try Data(key.utf8).write(to: URL(fileURLWithPath: path))
        try served.start(["--auth", "jwt", "--jwt-key", path] + more)
        return served
    }

    /// Found by probing: an HS256 secret that every user of the host could read, and so
    /// sign any buyer's tokens with, was taken without a word. The log warns of it as serve
    /// starts; a secret only its owner (and group) reads, or a public key, is not warned of.
    @Test func aSecretOthersCanReadIsWarnedOf() async throws {
        let secret = "s3cret-s3cret-s3cret-s3cret-0001"
        for (mode, warned): (mode_t, Bool) in [(0o644, true), (0o640, false), (0o600, false)] {
            let served = try ServedDatabase()
            try served.createSale(inventory: 5)
            let path = served.directory + "/jwt.key"
            try Data(secret.utf8).write(to: URL(fileURLWithPath: path))
            try #require(chmod(path, mode) == 0)
            try served.start(["--auth", "jwt", "--jwt-key", path])
            #expect(try await Self.status(served, Tokens.hs256(secret: secret)) == 200)
            // Logged before the listener opened, so before the request's own line.
            _ = try await served.logged(1) { $0["status"] as? Int == 200 }
            #expect(served.log.contains("every user of this host can read (mode 0\(String(mode, radix: 8)))") == warned, "\(served.log)")
        }
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        let path = served.directory + "/jwt.pub"
        try Data(ES256PrivateKey().publicKey.pemRepresentation.utf8).write(to: URL(fileURLWithPath: path))
        try #require(chmod(path, 0o644) == 0)
        try served.start(["--auth", "jwt", "--jwt-key", path])
        #expect(try await Self.status(served, Tokens.unsigned()) == 401)
        _ = try await served.logged(1) { $0["status"] as? Int == 401 }
        #expect(!served.log.contains("can read"), "\(served.log)")
    }

    /// The status of the user's bookings list with this token.
    static func status(_ served: ServedDatabase, _ token: String) async throws -> Int {
        let answer = try await served.send(.GET, bookings, headers: bearer(token))
        if answer.status == 401 {
            #expect(answer[header: "WWW-Authenticate"] == "Bearer")
            #expect(answer.errorCode == "unauthenticated")
        }
        return answer.status
    }

    @Test func anHS256SecretIsTheFilesBytesLessOneTrailingNewline() async throws {
        for file in ["s3cret-s3cret-s3cret-s3cret-0001\n", "s3cret-s3cret-s3cret-s3cret-0001"] {
            let served = try Self.served(key: file)
            let secret = "s3cret-s3cret-s3cret-s3cret-0001"
            #expect(try await Self.status(served, Tokens.hs256(secret: secret)) == 200, "\(file.count) bytes")
            #expect(try await Self.status(served, Tokens.hs256(secret: secret + "\n")) == 401)
        }
        let twoNewlines = try Self.served(key: "s3cret-s3cret-s3cret-s3cret-0001\n\n")
        #expect(try await Self.status(twoNewlines, Tokens.hs256(secret: "s3cret-s3cret-s3cret-s3cret-0001\n")) == 200)
    }

    /// The user is `sub`: alice's token books for alice and sees only her bookings.
    @Test func theUserIsTheTokensSubject() async throws {
        let secret = "another-secret-another-secret-01"
        let served = try Self.served(key: secret)
        let held = try await served.send(.POST, Self.bookings, headers: bearer(Tokens.hs256(secret: secret)))
        #expect(held.status == 201, "\(held.body)")
        #expect(held[field: "user"] == "alice")
        var bob = TestClaims()
        bob.sub = "bob"
        let bobs = try await served.send(.GET, Self.bookings, headers: bearer(Tokens.hs256(bob, secret: secret)))
        #expect(bobs.body == "[]")
    }

    @Test func timesAreCheckedWithThirtySecondsOfLeewayAndExpIsRequired() async throws {
        let secret = "time-secret-time-secret-time-001"
        let served = try Self.served(key: secret)
        func claims(exp: TimeInterval?, nbf: TimeInterval? = nil) -> TestClaims {
            var claims = TestClaims()
            claims.exp = exp.map { ExpirationClaim(value: TestClaims.at($0)) }
            claims.nbf = nbf.map { NotBeforeClaim(value: TestClaims.at($0)) }
            return claims
        }
        // Each token is made just before it is sent: made all at once, the later ones aged
        // past the leeway on a loaded machine before the server saw them.
        let cases: [(() -> TestClaims, Int, String)] = [
            ({ claims(exp: 300) }, 200, "valid"),
            ({ claims(exp: -10) }, 200, "expired within the leeway"),
            ({ claims(exp: -60) }, 401, "expired beyond the leeway"),
            ({ claims(exp: nil) }, 401, "no exp"),
            ({ claims(exp: 300, nbf: 10) }, 200, "not before, within the leeway"),
            ({ claims(exp: 300, nbf: 60) }, 401, "not before, in the future"),
            ({ claims(exp: 300, nbf: -60) }, 200, "not before, in the past"),
        ]
        for (claims, expected, what) in cases {
            #expect(try await Self.status(served, Tokens.hs256(claims(), secret: secret)) == expected, "\(what)")
        }
        // Its time as flashsale writes every time, RFC 3339 UTC (not Foundation's description).
        let expired = try await served.send(.GET, Self.bookings,
                                            headers: [("Authorization", "Bearer " + Tokens.hs256(claims(exp: -60), secret: secret))])
        let message = try #require(expired.errorMessage)
        #expect(message.range(of: #"^the token expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil,
                "\(message)")
        // And the log says it too (found by probing: a 401's line gave no reason).
        let logged = try await served.logged(1) { $0["status"] as? Int == 401 && $0["error"] as? String == message }
        #expect(logged.count == 1, "\(served.log)")
    }

    /// Times past what an `Int64` of milliseconds holds (an issuer writing nanoseconds)
    /// are 401s that name the years' bounds; converting them trapped and took the server
    /// down (found by probing).
    @Test func aTokenWithATimeOutOfRangeIs401AndTheServerGoesOn() async throws {
        let secret = "range-secret-range-secret-range1"
        let served = try Self.served(key: secret)
        let now = Int(Date().timeIntervalSince1970)
        let cases: [(String, String)] = [
            (#"{"sub":"alice","exp":\#(now + 600),"nbf":1e18}"#, "the token is not valid before 9999-12-31T23:59:59.999Z"),
            (#"{"sub":"alice","exp":\#(now + 600),"nbf":1e300}"#, "the token is not valid before 9999-12-31T23:59:59.999Z"),
            (#"{"sub":"alice","exp":-1e300}"#, "the token expired at 1970-01-01T00:00:00.000Z"),
        ]
        for (claims, message) in cases {
            let token = Tokens.hs256(header: #"{"alg":"HS256","typ":"JWT"}"#, claims: claims, secret: secret)
            let answer = try await served.send(.GET, Self.bookings, headers: bearer(token))
            #expect(answer.status == 401, "\(claims): \(answer.body)")
            #expect(answer.errorMessage == message, "\(claims)")
        }
        #expect(try await Self.status(served, Tokens.hs256(secret: secret)) == 200)
    }

    @Test func issuerAndAudienceAreCheckedWhenGivenAndRequiredThen() async throws {
        let secret = "claims-secret-claims-secret-0001"
        let served = try Self.served(key: secret, ["--jwt-issuer", "https://id.example", "--jwt-audience", "flashsale"])
        func claims(iss: String?, aud: [String]?) -> TestClaims {
            var claims = TestClaims()
            claims.iss = iss.map { IssuerClaim(value: $0) }
            claims.aud = aud.map { AudienceClaim(value: $0) }
            return claims
        }
        let cases: [(TestClaims, Int, String)] = [
            (claims(iss: "https://id.example", aud: ["flashsale"]), 200, "both, aud a string"),
            (claims(iss: "https://id.example", aud: ["shop", "flashsale"]), 200, "aud an array naming it"),
            (claims(iss: "https://id.example", aud: ["shop", "flashsale-x"]), 401, "aud an array not naming it"),
            (claims(iss: "https://id.example", aud: nil), 401, "no aud"),
            (claims(iss: "https://evil.example", aud: ["flashsale"]), 401, "another issuer"),
            (claims(iss: "https://id.example/", aud: ["flashsale"]), 401, "a near issuer"),
            (claims(iss: nil, aud: ["flashsale"]), 401, "no iss"),
        ]
        for (claims, expected, what) in cases {
            #expect(try await Self.status(served, Tokens.hs256(claims, secret: secret)) == expected, "\(what)")
        }
        // Without the options, neither claim is looked at.
        let open = try Self.served(key: secret)
        #expect(try await Self.status(open, Tokens.hs256(claims(iss: "https://evil.example", aud: ["shop"]), secret: secret)) == 200)
    }

    @Test func badSignaturesNoneOtherAlgorithmsAndBadSubjectsAre401() async throws {
        // Long enough for HS384 too (jwt-kit wants a key as long as the hash).
        let secret = "sign-secret-sign-secret-sign-secret-sign-secret-1"
        let served = try Self.served(key: secret)
        var long = TestClaims()
        long.sub = SubjectClaim(value: String(repeating: "u", count: 300))
        var empty = TestClaims()
        empty.sub = ""
        var none = TestClaims()
        none.sub = nil
        var nul = TestClaims()
        nul.sub = "ali\u{0}ce"
        let valid = try await Tokens.hs256(secret: secret)
        let parts = valid.split(separator: ".").map(String.init)
        let cases: [(String, String)] = [
            (try await Tokens.hs256(secret: "sign-secret-sign-secret-sign-secret-sign-secret-2"), "another secret"),
            (parts[0] + "." + parts[1] + "." + String(parts[2].reversed()), "a mangled signature"),
            (parts[0] + "." + parts[1] + ".", "no signature"),
            (try await Tokens.unsigned(), "alg none"),
            (try await Tokens.es256(key: ES256PrivateKey()), "ES256 against an HS256 secret"),
            (try await Tokens.hs384(secret: secret), "HS384 with the secret"),
            (try await Tokens.hs256(long, secret: secret), "a 300-byte sub"),
            (try await Tokens.hs256(empty, secret: secret), "an empty sub"),
            (try await Tokens.hs256(none, secret: secret), "no sub"),
            (try await Tokens.hs256(nul, secret: secret), "a NUL in sub"),
            ("not-a-jwt", "not a JWT"),
            ("", "nothing"),
        ]
        for (token, what) in cases {
            #expect(try await Self.status(served, token) == 401, "\(what)")
        }
        for authorization in ["Basic YWxpY2U6eA==", valid, "Bearer", "Bearer  "] {
            let answer = try await served.send(.GET, Self.bookings, headers: [("Authorization", authorization)])
            #expect(answer.status == 401, "\(authorization)")
        }
        let anonymous = try await served.send(.GET, Self.bookings)
        #expect(anonymous.status == 401)
        #expect(anonymous[header: "WWW-Authenticate"] == "Bearer")
        #expect(try await Self.status(served, valid) == 200)
        // Found by probing: one or more spaces may follow the scheme (RFC 9110, 11.4).
        #expect(try await served.send(.GET, Self.bookings, headers: [("Authorization", "Bearer   " + valid)]).status == 200)
    }

    /// What jwt-kit lets through and the RFCs refuse: a claim named twice (RFC 7519, 4:
    /// the decoder took the first, `exp` in the future, where a reader of the last sees
    /// an expired token) and a critical extension serve does not implement (RFC 7515,
    /// 4.1.11). Both signed with the right key; the same token without them is taken.
    @Test func aClaimNamedTwiceAndCriticalExtensionsAre401() async throws {
        let secret = "sign-secret-sign-secret-sign-secret-sign-secret-1"
        let served = try Self.served(key: secret)
        let later = Int(Date().timeIntervalSince1970) + 3600
        let header = #"{"alg":"HS256","typ":"JWT"}"#
        let plain = Tokens.hs256(header: header, claims: #"{"sub":"alice","exp":\#(later)}"#, secret: secret)
        #expect(try await Self.status(served, plain) == 200)
        let twice = Tokens.hs256(header: header, claims: #"{"sub":"alice","exp":\#(later),"exp":1}"#, secret: secret)
        let critical = Tokens.hs256(header: #"{"alg":"HS256","typ":"JWT","crit":["x-ext"],"x-ext":1}"#,
                                    claims: #"{"sub":"alice","exp":\#(later)}"#, secret: secret)
        // Found by probing: a header parameter named twice (jwt-kit took the first alg), and
        // a signature spelled two ways (padded, or with its last character's unused bits set).
        let headerTwice = Tokens.hs256(header: #"{"alg":"HS256","alg":"none"}"#, claims: #"{"sub":"alice","exp":\#(later)}"#,
                                       secret: secret)
        var respelled = Array(plain.utf8)
        let last = try #require(respelled.last)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        // An HS256 signature is 32 bytes: 43 characters, the last carrying 2 unused bits.
        respelled[respelled.count - 1] = alphabet[(try #require(alphabet.firstIndex(of: last))) ^ 1]
        for (token, expected) in [(twice, #"the token is not strictly encoded: its claims: duplicate key "exp""#),
                                  (headerTwice, #"the token is not strictly encoded: its header: duplicate key "alg""#),
                                  (plain + "=", "the token is not strictly encoded: its signature is not base64url in its one spelling"),
                                  (String(decoding: respelled, as: UTF8.self),
                                   "the token is not strictly encoded: its signature is not base64url in its one spelling"),
                                  (critical, "the token's header names critical extensions (crit), which serve does not implement"),
                                  // Found by probing: said to be no JWT.
                                  (Tokens.hs256(header: header, claims: #"{"sub":"alice","exp":"\#(later)"}"#, secret: secret),
                                   "the token's claims are not of their types: exp and nbf are NumericDates, sub and iss strings, "
                                   + "aud a string or an array of strings"),
                                  (Tokens.hs256(header: header, claims: #"{"sub":7,"exp":\#(later)}"#, secret: secret),
                                   "the token's claims are not of their types: exp and nbf are NumericDates, sub and iss strings, "
                                   + "aud a string or an array of strings")] {
            let answer = try await served.send(.GET, Self.bookings, headers: bearer(token))
            #expect(answer.status == 401)
            #expect(answer.errorMessage == expected, "\(answer.body)")
        }
    }

    /// An ES256 public key takes ES256 tokens of its private key only: not HS256 signed
    /// with the PEM text as the secret (the classic confusion), not another key's.
    @Test func anES256KeyTakesOnlyES256TokensOfItsOwnKey() async throws {
        let key = ES256PrivateKey()
        let pem = key.publicKey.pemRepresentation
        let served = try Self.served(key: pem + "\n")
        #expect(try await Self.status(served, Tokens.es256(key: key)) == 200)
        #expect(try await Self.status(served, Tokens.es256(key: key, kid: "2026-11")) == 200, "a kid is no other key")
        #expect(try await Self.status(served, Tokens.es256(key: ES256PrivateKey())) == 401)
        #expect(try await Self.status(served, Tokens.es256(key: ES256PrivateKey(), kid: "2026-11")) == 401)
        #expect(try await Self.status(served, Tokens.hs256(secret: pem)) == 401)
        #expect(try await Self.status(served, Tokens.hs256(secret: pem + "\n")) == 401)
        #expect(try await Self.status(served, Tokens.unsigned()) == 401)
        var expired = TestClaims()
        expired.exp = ExpirationClaim(value: TestClaims.at(-120))
        #expect(try await Self.status(served, Tokens.es256(expired, key: key)) == 401)
    }

    /// RFC 7468 allows text around a PEM block, as `openssl pkey -text` writes after it
    /// (found by probing: such a key was refused as no public key).
    @Test func aPEMKeyWithTextAroundItIsTheKey() async throws {
        let key = ES256PrivateKey()
        let served = try Self.served(key: "# the issuer's key, 2026-12\n" + key.publicKey.pemRepresentation
                                     + "\nPublic-Key: (256 bit)\npub:\n    04:8e:...\nASN1 OID: prime256v1\n")
        #expect(try await Self.status(served, Tokens.es256(key: key)) == 200)
        #expect(try await Self.status(served, Tokens.es256(key: ES256PrivateKey())) == 401)
    }

    @Test(.enabled(if: installed("openssl") != nil, "needs openssl to make an RSA key"))
    func anRSAKeyTakesOnlyRS256TokensOfItsOwnKey() async throws {
        let scratch = try ServedDatabase()
        let key = try Insecure.RSA.PrivateKey(pem: Tokens.rsaPrivateKeyPEM(in: scratch.directory))
        let pem = key.publicKey.pemRepresentation
        let served = try Self.served(key: pem)
        #expect(try await Self.status(served, Tokens.rs256(key: key)) == 200)
        #expect(try await Self.status(served, Tokens.hs256(secret: pem)) == 401)
        #expect(try await Self.status(served, Tokens.es256(key: ES256PrivateKey())) == 401)
        #expect(try await Self.status(served, Tokens.unsigned()) == 401)
    }

    /// Each start-up refusal: exit 2 and one line on stderr, before anything listens.
    @Test func serveRefusesToStartWithoutAuthOrAKeyOrWithAHeaderOnAnOpenListener() throws {
        let probe = try ServedDatabase()
        let missing = probe.directory + "/no-such.key"
        let garbage = probe.directory + "/garbage.pem"
        let empty = probe.directory + "/empty.key"
        try Data("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".utf8).write(to: URL(fileURLWithPath: garbage))
        try Data("\n".utf8).write(to: URL(fileURLWithPath: empty))
        let short = probe.directory + "/short.key"
        try Data((String(repeating: "s", count: 31) + "\n").utf8).write(to: URL(fileURLWithPath: short))
        let good = probe.directory + "/good.key"
        try Data((String(repeating: "s", count: 32) + "\n").utf8).write(to: URL(fileURLWithPath: good))
        let cases: [([String], String)] = [
            ([], "no --auth"),
            (["--auth", "jwt", "--jwt-key", missing], "a key that cannot be read"),
            (["--auth", "jwt", "--jwt-key", garbage], "a PEM key that does not parse"),
            (["--auth", "jwt", "--jwt-key", empty], "an empty secret"),
            (["--auth", "jwt", "--jwt-key", short], "a secret shorter than HS256's hash"),
            (["--auth", "jwt"], "no key"),
            (["--auth", "jwt", "--jwt-key", good, "--jwt-issuer", ""], "an empty issuer"),
            (["--auth", "jwt", "--jwt-key", good, "--jwt-audience", ""], "an empty audience"),
            (ServedDatabase.headerAuth + ["--listen", "0.0.0.0:\(try freePort())"], "header mode on every address"),
            (ServedDatabase.headerAuth + ["--listen", "[::]:\(try freePort())"], "header mode on every IPv6 address"),
            (["--auth", "basic"], "an unknown mode"),
        ]
        for (arguments, what) in cases {
            let served = try ServedDatabase()
            try served.createSale(inventory: 1)
            #expect(throws: Failed.self, "\(what)") { try served.start(arguments) }
            #expect(served.server?.wait() == .exit(2), "\(what): \(served.log)")
            #expect(served.log.hasPrefix("flashsale: ") && served.log.filter { $0 == "\n" }.count == 1, "\(what): \(served.log)")
        }
    }

    /// Found by probing: localhost was trusted as loopback by its name, and bound wherever
    /// /etc/hosts put it: one naming another address for it made the header mode listen
    /// there, believing anyone's user header. serve binds localhost as 127.0.0.1 (RFC 6761)
    /// whatever the file says: here a mount namespace's /etc/hosts names a documentation
    /// address for it.
    @Test(.enabled(if: runningAsRoot && installed("unshare") != nil && installed("mount") != nil,
                   "needs root, unshare(1) and mount(8), to give serve an /etc/hosts of its own"))
    func localhostIsBoundAsLoopbackWhateverEtcHostsSays() throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 1)
        let hosts = served.directory + "/hosts"
        try "192.0.2.2 localhost\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        let logPath = served.directory + "/unshared.log"
        var answer: String?
        // Started again on other ports when one was taken meanwhile, as `ServedDatabase.start`.
        for _ in 0..<3 where answer == nil {
            let port = try freePort()
            var admin = port
            while admin == port { admin = try freePort() }
            let null = open("/dev/null", O_RDWR)
            let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            let server = try ChildProcess(try #require(installed("unshare")), ["-m", "/bin/sh", "-c", """
                mount --bind \(hosts) /etc/hosts && exec \(flashsaleBinary) --db \(served.database) serve --auth header \
                    --user-header X-User --listen LOCALHOST:\(port) --admin-listen 127.0.0.1:\(admin)
                """], environment: ["PATH": "/usr/bin:/bin:/usr/sbin:/sbin"], stdin: null, stdout: log, stderr: log)
            close(null)
            close(log)
            // Asked through a blocking socket, not the async client, which a full run's
            // load starved of the concurrency pool's threads (CI: no answer in 30 s from a
            // server that listened all that time), as `ServedDatabase.start` asks.
            let deadline = ContinuousClock.now + .seconds(30)
            while answer == nil, server.isRunning, ContinuousClock.now < deadline {
                if let connection = try? BlockingConnection(port: port),
                   (try? connection.write("GET /booking-service/sales/s1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) != nil {
                    answer = connection.readToEnd(within: 10)
                } else {
                    usleep(50_000)
                }
            }
            server.send(SIGTERM)
            _ = server.wait()
            if answer == nil, !ServedDatabase.text(logPath).contains("address already in use") { break }
        }
        #expect(answer?.hasPrefix("HTTP/1.1 200 ") == true, "serve did not answer on 127.0.0.1: \(ServedDatabase.text(logPath))")
    }

    /// Found by probing: a key that cannot be read was refused without the reason.
    @Test func aKeyThatCannotBeReadIsRefusedWithTheReason() throws {
        for (path, reason) in [("/no-such.key", "No such file or directory"), ("", "Is a directory")] {
            let served = try ServedDatabase()
            try served.createSale(inventory: 1)
            #expect(throws: Failed.self) { try served.start(["--auth", "jwt", "--jwt-key", served.directory + path]) }
            #expect(served.server?.wait() == .exit(2))
            #expect(served.log == "flashsale: cannot read --jwt-key '\(served.directory + path)': \(reason)\n", "\(served.log)")
        }
    }

    /// Found by probing: only a file's first PEM block was read, so a second public key
    /// was ignored, and a private key after a public one went unseen.
    @Test(arguments: [false, true])
    func aFileOfTwoPEMBlocksIsRefused(secondIsPrivate: Bool) throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 1)
        let path = served.directory + "/keys.pem"
        let key = ES256PrivateKey()
        let second = secondIsPrivate ? key.pemRepresentation : ES256PrivateKey().publicKey.pemRepresentation
        try Data((key.publicKey.pemRepresentation + "\n" + second).utf8).write(to: URL(fileURLWithPath: path))
        // Started, the server would serve until the test's end: waited for only if refused.
        let refused = (try? served.start(["--auth", "jwt", "--jwt-key", path])) == nil
        #expect(refused)
        #expect(!refused || served.server?.wait() == .exit(2))
        #expect(served.log.contains("holds 2 PEM blocks; give serve one, the public key its tokens are signed for\n"), "\(served.log)")
    }

    /// Found by probing: a private key was "not a P-256 or RSA public key", which it is;
    /// the refusal says to give its public half.
    @Test func aPrivateKeyIsRefusedSayingToGiveItsPublicHalf() throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 1)
        let path = served.directory + "/issuer.pem"
        try Data(ES256PrivateKey().pemRepresentation.utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: Failed.self) { try served.start(["--auth", "jwt", "--jwt-key", path]) }
        #expect(served.server?.wait() == .exit(2))
        #expect(served.log.contains("is a private key; give serve its public half (openssl pkey -in KEY -pubout)\n"), "\(served.log)")
    }

    /// `--auth header` on a Unix socket: the socket is 0660, and a gateway on it names the
    /// user with the header and the buyer's address with `X-Forwarded-For`.
    @Test func headerModeServesAUnixSocketCreated0660() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        let socket = served.directory + "/buyers.sock"
        try served.start(ServedDatabase.headerAuth + ["--socket", socket])
        var status = stat()
        #expect(lstat(socket, &status) == 0)
        #expect(status.st_mode & S_IFMT == S_IFSOCK)
        #expect(status.st_mode & 0o777 == 0o660)

        let held = try await HTTPClient.send(.POST, "/booking-service/book-item/s1", unixSocket: socket,
                                             headers: [("X-User", "alice"), ("X-Forwarded-For", "203.0.113.7")])
        #expect(held.status == 201, "\(held.body)")
        #expect(held[field: "user"] == "alice")
        #expect(held[field: "ip"] == "203.0.113.7")
        let anonymous = try await HTTPClient.send(.POST, "/booking-service/book-item/s1", unixSocket: socket)
        #expect(anonymous.status == 401)

        // A second server on the same path is refused (it removed the socket, and the first
        // server went on unreachable); a socket left by a server that is gone is replaced.
        let second = try ServedDatabase(sharing: served)
        #expect(throws: Failed.self) { try second.start(ServedDatabase.headerAuth + ["--socket", socket]) }
        #expect(second.server?.wait() == .exit(73), "\(second.log)")
        #expect(second.log.contains("cannot listen on \(socket): a server listens on it already"), "\(second.log)")
        let stillServed = try await HTTPClient.send(.GET, "/booking-service/sales/s1", unixSocket: socket,
                                                    headers: [("X-User", "alice")])
        #expect(stillServed.status == 200)
        #expect(served.stop(SIGKILL) != nil)
        let replacing = try ServedDatabase(sharing: served)
        try replacing.start(ServedDatabase.headerAuth + ["--socket", socket])
        let afterRestart = try await HTTPClient.send(.GET, "/booking-service/sales/s1", unixSocket: socket,
                                                     headers: [("X-User", "alice")])
        #expect(afterRestart.status == 200)

    }

    /// Found by probing: a socket path of 97 to 100 bytes (with a pid of five digits) failed
    /// the start, 73: the name beside it that the socket is bound under first came to 104
    /// to 107 bytes, past NIO's 103. Every path up to 103 bytes serves.
    @Test func everySocketPathUpTo103BytesServes() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        for length in 94...103 {
            let name = String(repeating: "s", count: length - served.directory.utf8.count - 1)
            let socket = served.directory + "/" + name
            try served.start(ServedDatabase.headerAuth + ["--socket", socket])
            let answer = try await HTTPClient.send(.GET, "/booking-service/sales/s1", unixSocket: socket, headers: [("X-User", "alice")])
            #expect(answer.status == 200, "\(length) bytes")
            #expect(served.stop() == .exit(0), "\(served.log)")
        }
    }

    /// Found by probing: a server whose socket file was deleted while it ran removed, on
    /// stopping, the socket a second server had made at the same path since. It removes
    /// only its own, and its own when it stops.
    @Test func aServerStoppingLeavesAnotherServersSocketAtItsPath() async throws {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        let socket = served.directory + "/buyers.sock"
        try served.start(ServedDatabase.headerAuth + ["--socket", socket])
        #expect(unlink(socket) == 0)
        let second = try ServedDatabase(sharing: served)
        try second.start(ServedDatabase.headerAuth + ["--socket", socket])
        #expect(served.stop() == .exit(0), "\(served.log)")
        let answer = try await HTTPClient.send(.GET, "/booking-service/sales/s1", unixSocket: socket, headers: [("X-User", "alice")])
        #expect(answer.status == 200)
        #expect(second.stop() == .exit(0), "\(second.log)")
        var status = stat()
        #expect(lstat(socket, &status) == -1 && errno == ENOENT)
        #expect(try FileManager.default.contentsOfDirectory(atPath: served.directory).filter { $0.contains("buyers.sock") } == [])
    }
}
