import Testing
import FlashSaleEngine
@testable import FlashSalePostgres
import PostgresNIO  // NIOSSLError, which it exports

/// What the server's SQLSTATEs mean to the store: a session the server ends, whatever
/// the reason, is a lost connection (followers connect again; a command says to run it
/// again), never an I/O error that ends a follower.
@Suite struct PostgresErrorTests {
    /// Found by probing: with `idle_session_timeout` set, a follower whose statement met
    /// the server's FATAL 57P05 exited 74 instead of connecting again.
    @Test(arguments: ["57P01", "57P02", "57P03", "57P05", "25P03"])
    func aSessionTheServerEndsIsALostConnection(state: String) {
        let error = PostgresError.from(state: state, message: "terminating connection", server: "127.0.0.1:5432")
        guard case .connectionLost(let detail)? = error.failure else {
            Issue.record("\(state): \(String(describing: error.failure))")
            return
        }
        #expect(detail == "lost the connection to PostgreSQL at 127.0.0.1:5432: terminating connection (SQLSTATE \(state))")
    }

    /// Found by probing: a server restarted with `-m immediate` under a follower on TLS
    /// was "lost the connection ...: uncleanShutdown", postgres-nio's name for it.
    @Test func aTLSConnectionCutWithoutItsClosingMessageIsSaidInWords() {
        #expect(ConnectionFailureWords.reason(NIOSSLError.uncleanShutdown) == "the connection ended without TLS's closing message")
    }

    /// Found by probing: a server (or a proxy) that accepted the connection and closed it
    /// before the client's first message was "Already closed", NIO's words.
    @Test(arguments: [ChannelError.alreadyClosed, .ioOnClosedChannel, .eof])
    func aConnectionClosedBeforeItsFirstMessageIsSaidInPsqlsWords(error: ChannelError) {
        #expect(ConnectionFailureWords.reason(error) == "the server closed the connection")
    }

    /// Found by probing: a column dropped by hand was an internal error (exit 1).
    @Test func aColumnOfTheSchemaGoneIsAnUnusableDatabase() {
        let error = PostgresError.from(state: "42703", message: "column \"user_agent\" does not exist", server: "h:1")
        #expect(error.failure == .unusable(detail: "PostgreSQL at h:1: column \"user_agent\" does not exist (SQLSTATE 42703): "
                                           + "a table of the schema was changed by hand"))
    }

    @Test func otherOperatorInterventionsAreIOErrors() {
        guard case .io? = PostgresError.from(state: "57P04", message: "database dropped", server: "h:1").failure else {
            Issue.record("57P04 is not an I/O error")
            return
        }
    }
}
