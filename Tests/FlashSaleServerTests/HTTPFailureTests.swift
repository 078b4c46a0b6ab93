import FlashSaleEngine
@testable import FlashSaleServer
import Testing

/// The store's failures in a buyer's words.
@Suite struct HTTPFailureTests {
    /// Found by review: a commit whose answer was lost with the connection (PostgreSQL) was
    /// "cannot be written just now; retry", and a request retried without its key would be
    /// queued twice. It says the change may have been made, and how to retry safely.
    @Test func aCommitWhoseAnswerWasLostSaysTheChangeMayHaveBeenMade() {
        let lost = HTTPFailure(StoreFailure.commitUnanswered(detail: "lost the connection to PostgreSQL at db:5432"))
        #expect(lost.status == .serviceUnavailable && lost.code == "io")
        #expect(lost.message.contains("the change may have been made") && lost.message.contains("retry with the same key"), "\(lost.message)")
        #expect(lost.detail?.contains("db:5432") == true, "the operator's log names the server")
        let before = HTTPFailure(StoreFailure.connectionLost(detail: "lost the connection to PostgreSQL at db:5432"))
        #expect(before.message == "the database cannot be reached or written just now; retry")
    }
}
