import Foundation
import Testing
import FlashSaleTestSupport

/// `sslmode` and `sslrootcert` as libpq takes them, against a cluster of the test's own that
/// offers TLS with a certificate for localhost and 127.0.0.1 signed by an authority of its
/// own (.ci/postgres, FLASHSALE_TEST_PG_TLS), which no system trusts. A cluster a test:
/// every case of one runs on it in turn.
@Suite(.enabled(if: TestPostgres.isConfigured && installed("pg_ctl", in: postgresBinaries) != nil
                && FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl"),
                "needs PostgreSQL's programs and openssl"))
struct TLSTests {
    private let cluster: OwnCluster
    private let authority: String

    init() throws {
        cluster = try OwnCluster(tls: true)
        authority = try #require(cluster.certificateAuthority)
    }

    private func initialize(host: String = "127.0.0.1", _ parameters: String,
                            environment: [String: String] = [:]) throws -> Result {
        let url = cluster.url(schema: TestPostgres.newSchema(), host: host) + "&" + parameters
        return try Sandbox().spawn(["--db", url, "init"], database: false, environment: environment)
    }

    @Test func whatConnects() throws {
        // verify-full with the authority that signed the server's certificate, by name and
        // by address (which cannot go in the handshake's server name, RFC 6066: it failed
        // with NIOSSL's "cannotUseIPAddressInSNI" whatever the certificate).
        for host in ["127.0.0.1", "localhost"] {
            let result = try initialize(host: host, "sslmode=verify-full&sslrootcert=\(authority)")
            #expect(result.status == 0, "\(host): \(result.stderr)")
        }
        // The authority from PGSSLROOTCERT, or libpq's default file in the home directory.
        #expect(try initialize("sslmode=verify-full", environment: ["PGSSLROOTCERT": authority]).status == 0)
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("home-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: home) }
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".postgresql"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: authority, toPath: home.appendingPathComponent(".postgresql/root.crt").path)
        #expect(try initialize("sslmode=verify-full", environment: ["HOME": home.path]).status == 0)
        // require encrypts without checking, or checks the chain (libpq's verify-ca) when
        // a root certificate is given.
        #expect(try initialize("sslmode=require").status == 0)
        #expect(try initialize("sslmode=require&sslrootcert=\(authority)").status == 0)
        // verify-ca checks the chain only.
        #expect(try initialize("sslmode=verify-ca&sslrootcert=\(authority)").status == 0)
    }

    /// verify-full checks the host as libpq does: a name against the certificate's DNS
    /// names, an address against its addresses. A certificate for the address connected
    /// to is not one for a name that led there (NIOSSL's own check took it); and a key
    /// usage marked critical is understood.
    @Test func aCertificateForTheAddressIsNotOneForTheName() throws {
        let tls = cluster.directory + "/tls"
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _ = try runTool("/usr/bin/openssl", ["req"] + key + ["-subj", "/CN=elsewhere.example", "-keyout", tls + "/server.key",
                                                           "-out", tls + "/server.csr"], environment: [:])
        try "subjectAltName=IP:127.0.0.1\nkeyUsage=critical,digitalSignature\n".write(toFile: tls + "/server.ext", atomically: true,
                                                                                       encoding: .utf8)
        _ = try runTool("/usr/bin/openssl", ["x509", "-req", "-in", tls + "/server.csr", "-CA", authority, "-CAkey", tls + "/ca.key",
                                             "-CAcreateserial", "-days", "1", "-extfile", tls + "/server.ext",
                                             "-out", tls + "/server.crt"], environment: [:])
        if runningAsRoot { _ = try runTool("/bin/chown", ["-R", "postgres:", tls], environment: [:]) }
        try cluster.restart()
        let byAddress = try initialize(host: "127.0.0.1", "sslmode=verify-full&sslrootcert=\(authority)")
        #expect(byAddress.status == 0, "\(byAddress.stderr)")
        let byName = try initialize(host: "localhost", "sslmode=verify-full&sslrootcert=\(authority)")
        #expect(byName.status == 73)
        #expect(byName.stderr.contains(": the server's certificate is not for that host;"), "\(byName.stderr)")
        // verify-ca checks no name.
        #expect(try initialize(host: "localhost", "sslmode=verify-ca&sslrootcert=\(authority)").status == 0)
    }

    @Test func whatIsRefused() throws {
        // The system's authorities do not vouch for the server: exit 73, in words, not
        // BoringSSL's codes and source paths.
        let unverified = try initialize("sslmode=verify-full")
        #expect(unverified.status == 73)
        #expect(unverified.stderr.contains(": the TLS handshake failed: the server's certificate is not signed by an "
                                           + "authority trusted here (sslrootcert names them); "), "\(unverified.stderr)")
        // Another authority's certificate, with require: the chain is checked.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ca-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let other = directory.appendingPathComponent("other.crt").path
        try runTool("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                         "-days", "1", "-subj", "/CN=another authority",
                                         "-keyout", directory.appendingPathComponent("other.key").path, "-out", other],
                    environment: [:])
        for mode in ["require", "verify-ca"] {
            let otherAuthority = try initialize("sslmode=\(mode)&sslrootcert=\(other)")
            #expect(otherAuthority.status == 73, "\(mode)")
            #expect(otherAuthority.stderr.contains("the server's certificate is not signed by an authority trusted here"),
                    "\(mode): \(otherAuthority.stderr)")
        }
        // verify-ca checks no name: with the system's authorities it would take anyone's
        // certificate, so it needs a root certificate, as with libpq.
        let withoutRoot = try initialize("sslmode=verify-ca")
        #expect(withoutRoot.status == 73)
        #expect(withoutRoot.stderr.contains(": sslmode=verify-ca needs the authority that signs the server's certificate"),
                "\(withoutRoot.stderr)")
        // A root certificate file that holds none: said in words, not BoringSSL's codes.
        let notACertificate = directory.appendingPathComponent("garbage.crt").path
        try "garbage\n".write(toFile: notACertificate, atomically: true, encoding: .utf8)
        let garbage = try initialize("sslmode=verify-full&sslrootcert=\(notACertificate)")
        #expect(garbage.status == 73)
        #expect(garbage.stderr.contains(": cannot read the root certificate file \(notACertificate) (sslrootcert): "
                                        + "it holds no PEM certificate;"), "\(garbage.stderr)")
        let missing = try initialize("sslmode=verify-full&sslrootcert=/nonexistent/root.crt")
        #expect(missing.status == 73)
        #expect(missing.stderr.contains(": cannot read the root certificate file /nonexistent/root.crt (sslrootcert): "
                                        + "no such file or directory;"), "\(missing.stderr)")
    }
}
