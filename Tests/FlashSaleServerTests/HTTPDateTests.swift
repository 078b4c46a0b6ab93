import Glibc
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import FlashSaleServer

/// The `Date` of every answer.
struct HTTPDateTests {
    /// Hummingbird's `Date`, copied once a second by a timer off the second, lagged the
    /// clock up to 1.35 s (found by probing): HTTP1Rules writes the second an answer is
    /// written in over whatever the answer had.
    @Test func anAnswersDateIsTheSecondItIsWrittenIn() throws {
        let channel = EmbeddedChannel(handler: HTTP1Rules())
        let sent = time(nil)
        let stale = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Date": HTTPDate.format(sent - 2)])
        try channel.writeOutbound(HTTPServerResponsePart.head(stale))
        let received = time(nil)
        guard case .head(let head)? = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("no head written")
            return
        }
        #expect(head.headers["Date"].count == 1)
        #expect((sent...received).map(HTTPDate.format).contains(head.headers["Date"].first ?? ""), "\(head.headers)")
        _ = try channel.finish()
    }

    @Test func itIsRFC9110sIMFFixdate() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(1_796_329_376) == "Thu, 03 Dec 2026 20:22:56 GMT")
    }
}
