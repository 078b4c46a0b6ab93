import Testing
import FlashSaleCore

/// `UInt64(ascii:radix:)`: the numbers of /proc/locks' lines and of samples' JSON.
@Suite struct ASCIINumberTests {
    @Test(arguments: [
        ("0", 10, 0), ("6841377", 10, 6_841_377), ("18446744073709551615", 10, UInt64.max),
        ("fe", 16, 254), ("00", 16, 0), ("1b", 16, 27),
    ] as [(String, UInt64, UInt64)])
    func digitsSpellTheirValue(_ digits: String, radix: UInt64, value: UInt64) {
        #expect(UInt64(ascii: Array(digits.utf8), radix: radix) == value)
    }

    /// Nothing, a sign, a space, upper-case or out-of-radix hex, and a value past 64 bits
    /// are no number.
    @Test(arguments: [
        ("", 10), ("-1", 10), (" 1", 10), ("1a", 10), ("FE", 16), ("g", 16), ("18446744073709551616", 10),
    ] as [(String, UInt64)])
    func anythingElseIsNone(_ digits: String, radix: UInt64) {
        #expect(UInt64(ascii: Array(digits.utf8), radix: radix) == nil)
    }
}
