import Testing
@testable import FlashSaleServer

/// `trimmingSpaces` reads Content-Type, Accept and X-Forwarded-For on every request.
@Suite struct TrimmingTests {
    private func trimmed(_ text: String) -> String { Substring(text).trimmingSpaces() }

    @Test func spacesAndTabsAroundAreDroppedAndInsideKept() {
        #expect(trimmed(" \tapplication/json \t") == "application/json")
        #expect(trimmed("a b") == "a b")
        #expect(trimmed("2001:db8::1") == "2001:db8::1")
        #expect(trimmed(" é ") == "é")
    }

    @Test func onlySpacesOrNothingIsEmpty() {
        #expect(trimmed(" \t ") == "")
        #expect(trimmed("") == "")
    }

    @Test func otherWhitespaceIsKept() {
        #expect(trimmed("\u{A0}x\n") == "\u{A0}x\n")
    }
}
