import FlashSaleCLI
import FlashSaleCore
import FoundationEssentials
import Glibc
import HTTPTypes
import JWTKit

/// Who the buyer is (http.md, "Keys for JWT"): the `sub` of a bearer JWT checked against
/// the one key given, or a header set by a gateway in front. Never anyone by default.
struct Authenticator: Sendable {
    private enum Scheme: Sendable {
        case jwt(JWTKeyCollection, algorithm: String, issuer: String?, audience: String?)
        case header(HTTPField.Name)
    }

    private let scheme: Scheme
    /// What serve's log warns of as it starts: an HS256 secret that every user of this host
    /// can read, and so sign any buyer's tokens with (found by probing: nothing was said).
    /// A warning, not a refusal, as libpq's for a readable password file: a public key is
    /// no secret, and a file shared with a group may be meant.
    let warning: String?
    /// Clocks of issuers and of this host differ by a little.
    static let leeway: TimeInterval = 30
    /// A token's time left, as far as a stream cares: `exp` may be centuries away, past
    /// what a `Duration` or a timer holds.
    static let longestHold: TimeInterval = 365 * 24 * 3600
    /// An HS256 secret's bytes at least: the hash's length.
    static let hs256SecretBytes = 32

    /// Reads and parses the key: a key that cannot be read or parsed is a usage error (2).
    init(_ settings: ServeSettings.Authentication) async throws {
        switch settings {
        case .header(let name):
            guard let field = HTTPField.Name(name) else { throw FlashSaleError.usage("'\(Quoted(name))' is not a header name") }
            scheme = .header(field)
            warning = nil
        case .jwt(let path, let issuer, let audience):
            let (keys, algorithm) = try await Authenticator.keys(from: path)
            scheme = .jwt(keys, algorithm: algorithm, issuer: issuer, audience: audience)
            warning = algorithm == "HS256" ? Authenticator.exposure(of: path) : nil
        }
    }

    /// The warning for a secret file that others may read (`o+r`), if it is one.
    private static func exposure(of path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IROTH != 0 else { return nil }
        let mode = String(info.st_mode & 0o777, radix: 8)
        return "--jwt-key '\(Quoted(path))' holds an HS256 secret that every user of this host can read (mode 0\(mode)), "
            + "and so sign tokens for any buyer with: chmod o-r '\(Quoted(path))'"
    }

    /// A PEM public key allows its own type's algorithm (ES256 for P-256, RS256 for RSA);
    /// any other file is an HS256 secret, less one trailing newline.
    private static func keys(from path: String) async throws -> (JWTKeyCollection, String) {
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw FlashSaleError.usage("cannot read --jwt-key '\(Quoted(path))': \(reason(cannotRead: path))")
        }
        let keys = JWTKeyCollection()
        if let file = String(data: contents, encoding: .utf8), file.contains("-----BEGIN") {
            // Found by probing: only the first block was read, so a second key (two put in
            // one file to rotate them) was ignored, and a private key after a public one
            // went unseen. serve verifies with one key.
            let blocks = file.ranges(of: "-----BEGIN").count
            guard blocks == 1 else {
                throw FlashSaleError.usage("--jwt-key '\(Quoted(path))' holds \(blocks) PEM blocks; give serve one, the public key "
                                           + "its tokens are signed for")
            }
            let text = firstPEMBlock(of: file)
            if let key = try? ES256PublicKey(pem: text) {
                await keys.add(ecdsa: key)
                return (keys, "ES256")
            }
            if let key = try? Insecure.RSA.PublicKey(pem: text) {
                await keys.add(rsa: key, digestAlgorithm: .sha256)
                return (keys, "RS256")
            }
            // A private key is the issuer's to keep: serve verifies with the public half.
            if text.contains("PRIVATE KEY-----") {
                throw FlashSaleError.usage("--jwt-key '\(Quoted(path))' is a private key; give serve its public half "
                                           + "(openssl pkey -in KEY -pubout)")
            }
            // Found by probing: a P-256 key with its point compressed was said to be none.
            throw FlashSaleError.usage("--jwt-key '\(Quoted(path))' is a PEM file but not a P-256 public key with its point "
                                       + "uncompressed (openssl ec -pubin -in KEY -pubout -conv_form uncompressed) "
                                       + "or an RSA public key of 2048 bits or more")
        }
        var secret = [UInt8](contents)
        if secret.last == UInt8(ascii: "\n") { secret.removeLast() }
        guard !secret.isEmpty else { throw FlashSaleError.usage("--jwt-key '\(Quoted(path))' is empty") }
        // RFC 7518 3.2: a shorter secret is weaker than the hash; jwt-kit asserts it too.
        guard secret.count >= hs256SecretBytes else {
            throw FlashSaleError.usage("--jwt-key '\(Quoted(path))' holds a secret of \(secret.count) bytes; HS256 needs \(hs256SecretBytes) or more")
        }
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return (keys, "HS256")
    }

    /// The file's first PEM block, without the explanatory text RFC 7468 (section 2)
    /// allows around it, which the key parsers refused (found by probing: the output of
    /// `openssl pkey -pubin -text`, a key with its dump after it, was "not a P-256 public
    /// key").
    static func firstPEMBlock(of text: String) -> String {
        guard let begin = text.firstRange(of: "-----BEGIN "),
              let end = text[begin.upperBound...].firstRange(of: "-----END "),
              let close = text[end.upperBound...].firstRange(of: "-----") else { return text }
        return String(text[begin.lowerBound..<close.upperBound]) + "\n"
    }

    /// Header mode's user (or 401); nil in JWT mode, where `userFromToken` says. Header
    /// mode needs no await: most requests of a server behind a gateway take this path, and
    /// each async call's frame stays in the request's task until the task ends (see
    /// `BuyerAPI`).
    func userFromHeader(_ headers: HTTPFields) throws -> UserID? {
        guard case .header(let name) = scheme else { return nil }
        // Read as one, two fields would be one user "a, b": a gateway that adds its own
        // without removing the client's must not make a user of both.
        let values = headers[values: name]
        guard values.count <= 1 else {
            throw HTTPFailure.unauthenticated("more than one \(name) header: the gateway in front must send exactly one")
        }
        guard let value = values.first, !value.isEmpty else {
            throw HTTPFailure.unauthenticated("no \(name) header: the gateway in front names the user")
        }
        guard let text = Limits.text(value) else { throw HTTPFailure.unauthenticated("the \(name) header is not valid UTF-8 \(Limits.replacementNote)") }
        return try checkedUser(text, from: "the \(name) header")
    }

    /// A claim's time as every other time flashsale writes: RFC 3339 UTC, within the years
    /// it writes (1970 to 9999). A signed token may carry any number (an issuer that writes
    /// nanoseconds): made an `Int64` as it came, a time past its range trapped, and took the
    /// server down with every connection (found by probing).
    private static func instant(_ date: Date) -> Instant {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded(.down)
        guard milliseconds > Double(Instant.earliest.milliseconds) else { return .earliest }
        guard milliseconds < Double(Instant.latest.milliseconds) else { return .latest }
        return Instant(milliseconds: Int64(milliseconds))
    }

    /// Why `path` could not be read, in the system's words (found by probing: a missing
    /// file was "cannot read" and no more).
    private static func reason(cannotRead path: String) -> String {
        var status = stat()
        guard stat(path, &status) == 0 else { return String(cString: strerror(errno)) }
        if status.st_mode & S_IFMT == S_IFDIR { return String(cString: strerror(EISDIR)) }
        guard access(path, R_OK) == 0 else { return String(cString: strerror(errno)) }
        return "it could not be read"
    }

    /// JWT mode's user, or 401, and how long the token still holds (with the leeway): a
    /// stream of the user's events ends then, as a request made then would be refused.
    func userFromToken(_ headers: HTTPFields) async throws -> (user: UserID, holdsFor: Duration) {
        switch scheme {
        case .header:
            throw FlashSaleError.internalFailure("header mode has no token")
        case .jwt(let keys, let algorithm, let issuer, let audience):
            let claims = try await verified(headers, keys: keys, algorithm: algorithm)
            let now = Date()
            guard let expiry = claims.exp?.value else { throw HTTPFailure.unauthenticated("the token has no exp") }
            guard now < expiry.addingTimeInterval(Authenticator.leeway) else {
                throw HTTPFailure.unauthenticated("the token expired at \(Self.instant(expiry))")
            }
            if let notBefore = claims.nbf?.value, now < notBefore.addingTimeInterval(-Authenticator.leeway) {
                throw HTTPFailure.unauthenticated("the token is not valid before \(Self.instant(notBefore))")
            }
            if let issuer, claims.iss?.value != issuer {
                throw HTTPFailure.unauthenticated("the token's iss is not \(issuer)")
            }
            if let audience, !(claims.aud?.value.contains(audience) ?? false) {
                throw HTTPFailure.unauthenticated("the token's aud does not name \(audience)")
            }
            guard let subject = claims.sub?.value else { throw HTTPFailure.unauthenticated("the token has no sub") }
            let holdsFor = expiry.addingTimeInterval(Authenticator.leeway).timeIntervalSince(now)
            return (try checkedUser(subject, from: "the token's sub"), .milliseconds(Int64(min(holdsFor, Authenticator.longestHold) * 1000)))
        }
    }

    /// The token's claims, once its header names the key's own algorithm (never `none`,
    /// never another) and its signature holds.
    private func verified(_ headers: HTTPFields, keys: JWTKeyCollection, algorithm: String) async throws -> BuyerClaims {
        guard let authorization = headers.value(.authorization) else {
            throw HTTPFailure.unauthenticated("no credentials: send Authorization: Bearer <JWT>")
        }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw HTTPFailure.unauthenticated("Authorization is not Bearer <JWT>")
        }
        // One or more spaces after the scheme (RFC 9110, 11.4).
        let token = Array(parts[1].drop { $0 == " " }.utf8)
        guard let (header, _, _) = try? DefaultJWTParser().parse(token, as: BuyerClaims.self) else {
            // Found by probing: a token whose exp was a string was "not a JWT".
            guard (try? DefaultJWTParser().parse(token, as: AnyClaims.self)) != nil else {
                throw HTTPFailure.unauthenticated("the bearer token is not a JWT")
            }
            throw HTTPFailure.unauthenticated("the token's claims are not of their types: exp and nbf are NumericDates, "
                                              + "sub and iss strings, aud a string or an array of strings")
        }
        guard header.alg == algorithm else {
            throw HTTPFailure.unauthenticated("the token's alg is not \(algorithm), the key's")
        }
        let claims: BuyerClaims
        do {
            claims = try await keys.verify(token, as: BuyerClaims.self)
        } catch {
            throw HTTPFailure.unauthenticated("the token's signature does not verify")
        }
        // RFC 7515, 4.1.11: extensions marked critical that the recipient does not
        // implement (serve implements none) make the token invalid.
        guard header[dynamicMember: "crit"] == nil else {
            throw HTTPFailure.unauthenticated("the token's header names critical extensions (crit), which serve does not implement")
        }
        // RFC 7519, 4 and RFC 7515, 4: a claim or header parameter named twice must be
        // refused, or the last one taken; the decoder takes the first, so that a reader of
        // the last would see another token. Read by the strict reader the bodies go
        // through, which refuses that and any JSON another reader could take differently.
        if let problem = Authenticator.strictnessProblem(token) {
            throw HTTPFailure.unauthenticated("the token is not strictly encoded: \(problem)")
        }
        return claims
    }

    /// Why `token` (verified, so three parts of base64url) is not strictly encoded, or nil:
    /// each part in base64url's one spelling of its bytes (no padding, no stray bits: two
    /// spellings of one signature are two tokens to a cache or a deny list), its header
    /// and claims each one strict JSON object.
    private static func strictnessProblem(_ token: [UInt8]) -> String? {
        let parts = token.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { return "not three parts" }
        for (index, name) in ["header", "claims", "signature"].enumerated() {
            let text = String(decoding: parts[index], as: UTF8.self)
            var base64 = text.replacing("-", with: "+").replacing("_", with: "/")
            base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
            guard let bytes = Data(base64Encoded: base64),
                  bytes.base64EncodedString().replacing("+", with: "-").replacing("/", with: "_").replacing("=", with: "") == text
            else { return "its \(name) is not base64url in its one spelling" }
            guard index < 2 else { continue }
            do {
                try bytes.withUnsafeBytes { try JSONStringObject.check($0.assumingMemoryBound(to: UInt8.self)) }
            } catch let refusal as FlashSaleError {
                return "its \(name): \(refusal.message)"
            } catch {
                return "its \(name): \(error)"
            }
        }
        return nil
    }

    /// A user as the command line would take it (1–256 bytes of UTF-8, no NUL), else 401.
    private func checkedUser(_ text: String, from source: String) throws -> UserID {
        guard let user = try? TextField.user.validate(text, required: true) else {
            throw HTTPFailure.unauthenticated("\(source) is not a valid user")
        }
        return UserID(trusted: user)
    }
}

/// The claims serve reads; their rules are checked by `Authenticator` (with its leeway),
/// not by jwt-kit's `verify`, which has none.
private struct BuyerClaims: JWTPayload {
    let sub: SubjectClaim?
    let exp: ExpirationClaim?
    let nbf: NotBeforeClaim?
    let iss: IssuerClaim?
    let aud: AudienceClaim?

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Claims of any types: a token that is a JWT whatever its claims hold.
private struct AnyClaims: JWTPayload {
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
