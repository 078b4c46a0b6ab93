import Foundation
import Glibc
import Testing
@testable import FlashSaleCLI
import FlashSaleCore

/// Where `--json` puts the error object of a command that fails.
@Suite struct ErrorObjectTests {
    private let error = FlashSaleError.io("disk I/O error")
    private let object = #"{"error":{"code":"io","message":"disk I/O error"}}"#

    /// Found by probing: a read failing after `bookings --json` had printed a page glued the
    /// object to the last element, which was then neither the list nor an error. It goes on
    /// a line of its own, after the document left unclosed.
    @Test func afterPartOfADocumentTheObjectHasALineOfItsOwn() {
        let stdout = Captured()
        let output = Output(json: true, quiet: false, stdout: stdout, stderr: Captured())
        stdout.write(#"[{"id":"bk_1"},{"id":"bk_2"}"#)
        output.failure(error)
        #expect(stdout.text == #"[{"id":"bk_1"},{"id":"bk_2"}"# + "\n" + object + "\n")
    }

    /// The same through the sink that writes a descriptor, which keeps its own account of
    /// where its last text ended.
    @Test func aFileSinkKnowsItEndsMidLine() throws {
        let written = try writtenThroughFileSink { stdout in
            let output = Output(json: true, quiet: false, stdout: stdout, stderr: Captured())
            stdout.write("[{\"id\":\"bk_1\"}\n")
            #expect(!stdout.endsMidLine)
            stdout.write(utf8: Array(",{\"id\":\"bk_2\"}".utf8))
            #expect(stdout.endsMidLine)
            output.failure(error)
        }
        #expect(written == "[{\"id\":\"bk_1\"}\n,{\"id\":\"bk_2\"}\n" + object + "\n")
    }

    @Test(arguments: ["", "{\"line\":1,\"ok\":true}\n"])
    func otherwiseItIsTheNextLine(printed: String) {
        let stdout = Captured()
        let output = Output(json: true, quiet: false, stdout: stdout, stderr: Captured())
        stdout.write(printed)
        output.failure(error)
        #expect(stdout.text == printed + object + "\n")
    }
}
