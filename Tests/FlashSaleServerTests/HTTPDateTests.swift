import Testing
@testable import FlashSaleServer

/// The `Date` of the answers serve writes itself.
struct HTTPDateTests {
    @Test func itIsRFC9110sIMFFixdate() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(1_796_329_376) == "Thu, 03 Dec 2026 20:22:56 GMT")
    }
}
