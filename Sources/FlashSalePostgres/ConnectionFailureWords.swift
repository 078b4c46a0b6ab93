import Glibc
import PostgresNIO

/// Why a connection to the server could not be made, or was lost, in words like psql's
/// ("connection refused", "the server closed the connection"), never in the client
/// library's type names, and never the configuration, which holds the password.
enum ConnectionFailureWords {
    static func reason(_ error: any Error) -> String {
        switch error {
        case let psql as PSQLError:
            if let message = psql.serverInfo?[.message] { return message }
            if psql.code == .sslUnsupported { return "the server does not offer TLS" }
            // A message the decoder could not read comes with its report, in postgres-nio's
            // type names and the bytes received: the code says it.
            let undecoded = psql.code == .messageDecodingFailure || psql.code == .unexpectedBackendMessage
            if let underlying = psql.underlying, !undecoded { return reason(underlying) }
            return words(for: psql.code)
        case let io as IOError:
            return sentence(String(cString: strerror(io.errnoCode)))
        case ChannelError.connectTimeout:
            return "the connection timed out"
        // A server (or a proxy before it) that accepts the connection and closes it at once
        // (found by probing: "Already closed", NIO's words).
        case ChannelError.alreadyClosed, ChannelError.ioOnClosedChannel, ChannelError.eof:
            return words(for: .serverClosedConnection)
        case NIOSSLError.handshakeFailed(.sslError(let errors)):
            return "the TLS handshake failed: " + errors.map(tlsWords).joined(separator: "; ")
        case let tls as NIOSSLExtraError where tls == .failedToValidateHostname:
            return "the server's certificate is not for that host"
        // What postgres-nio's own code says (found by probing: a server restarted with
        // `-m immediate` under a follower on TLS was "uncleanShutdown").
        case NIOSSLError.uncleanShutdown:
            return words(for: .uncleanShutdown)
        default:
            return "\(error)"
        }
    }

    private static func words(for code: PSQLError.Code) -> String {
        switch code {
        case .serverClosedConnection: "the server closed the connection"
        case .clientClosedConnection: "the connection was closed"
        case .uncleanShutdown: "the connection ended without TLS's closing message"
        case .unsupportedAuthMechanism: "the server asks for an authentication method flashsale does not support"
        case .authMechanismRequiresPassword:
            "the server asks for a password and none was given (in ~/.pgpass or PGPASSFILE's file, mode 0600, PGPASSWORD or the URL)"
        case .saslError: "SCRAM authentication failed"
        case .messageDecodingFailure, .unexpectedBackendMessage: "the server's answer could not be understood"
        case .receivedUnencryptedDataAfterSSLRequest: "the server answered the TLS request unencrypted"
        default: "\(code)"
        }
    }

    /// BoringSSL's reason, without its error code and source file: `error:1000007d:SSL
    /// routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at …/handshake.cc:320`.
    private static func tlsWords(_ error: BoringSSLInternalError) -> String {
        let message = "\(error)".split(separator: " at ").first ?? ""
        let reason = message.split(separator: ":").last.map(String.init) ?? ""
        if reason == "CERTIFICATE_VERIFY_FAILED" {
            return "the server's certificate is not signed by an authority trusted here (sslrootcert names them)"
        }
        return String(reason.lowercased().map { $0 == "_" ? " " : $0 })
    }

    /// The C library's "Connection refused" as a clause: "connection refused".
    private static func sentence(_ text: String) -> String {
        text.prefix(1).lowercased() + text.dropFirst()
    }
}
