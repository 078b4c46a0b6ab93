import struct Crypto.HMAC
import struct Crypto.SHA256
import struct Crypto.SymmetricKey
import Foundation
import JWTKit
import FlashSaleTestSupport

/// The claims a test puts in a token; nil ones are left out. By default a token of
/// `alice`'s that expires in an hour: the server checks it at the real clock, and in a full
/// `swift test` on two loaded cores a token made at a test's start has waited over five
/// minutes to be sent.
struct TestClaims: JWTPayload {
    var sub: SubjectClaim? = "alice"
    var exp: ExpirationClaim? = ExpirationClaim(value: Date().addingTimeInterval(3600))
    var nbf: NotBeforeClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?

    /// The server checks the claims; a test signs whatever it wants it to see.
    func verify(using algorithm: some JWTAlgorithm) async throws {}

    /// Seconds from now, for `exp` and `nbf`.
    static func at(_ seconds: TimeInterval) -> Date { Date().addingTimeInterval(seconds) }
}

/// Tokens signed in the test with jwt-kit, as an issuer would sign them.
enum Tokens {
    static func hs256(_ claims: TestClaims = TestClaims(), secret: String) async throws -> String {
        try await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256).sign(claims)
    }

    /// HS384: the same secret, another algorithm.
    static func hs384(_ claims: TestClaims = TestClaims(), secret: String) async throws -> String {
        try await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha384).sign(claims)
    }

    /// With `kid`, the header names the key as identity providers' tokens do.
    static func es256(_ claims: TestClaims = TestClaims(), key: ES256PrivateKey, kid: String? = nil) async throws -> String {
        let identifier = kid.map { JWKIdentifier(string: $0) }
        return try await JWTKeyCollection().add(ecdsa: key, kid: identifier).sign(claims, kid: identifier)
    }

    static func rs256(_ claims: TestClaims = TestClaims(), key: Insecure.RSA.PrivateKey) async throws -> String {
        try await JWTKeyCollection().add(rsa: key, digestAlgorithm: .sha256).sign(claims)
    }

    /// HS256 over a header and claims written out as given, for what jwt-kit will not
    /// write: a claim named twice, a `crit` header.
    static func hs256(header: String, claims: String, secret: String) -> String {
        func base64URL(_ bytes: some DataProtocol) -> String {
            Data(bytes).base64EncodedString().replacing("+", with: "-").replacing("/", with: "_").replacing("=", with: "")
        }
        let input = base64URL(Array(header.utf8)) + "." + base64URL(Array(claims.utf8))
        let signature = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return input + "." + base64URL(Array(signature))
    }

    /// `alg: none`, no signature.
    static func unsigned(_ claims: TestClaims = TestClaims()) async throws -> String {
        try await JWTKeyCollection().addUnsecuredNone().sign(claims)
    }

    /// An RSA private key from openssl (jwt-kit takes RSA keys but does not make them), PEM.
    static func rsaPrivateKeyPEM(in directory: String) throws -> String {
        guard let openssl = installed("openssl") else { throw Failed("no openssl") }
        let path = directory + "/rsa-private.pem"
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(null) }
        let made = try ChildProcess(openssl, ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path],
                                    environment: [:], stdin: null, stdout: null, stderr: null).wait()
        guard made == .exit(0), let pem = FileManager.default.contents(atPath: path) else { throw Failed("openssl genpkey: \(made)") }
        return String(decoding: pem, as: UTF8.self)
    }
}

/// `Authorization: Bearer TOKEN`.
func bearer(_ token: String) -> [(String, String)] {
    [("Authorization", "Bearer \(token)")]
}
