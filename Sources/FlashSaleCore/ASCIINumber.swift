extension UInt64 {
    /// The number that ASCII `digits` spell in `radix` (10, or 16 in lower case, as the
    /// kernel writes device numbers); nil for no digits, any other byte, or a value past 64
    /// bits. Inlinable, so that a caller's loop over its own buffer is specialized.
    @inlinable
    public init?(ascii digits: some Collection<UInt8>, radix: UInt64 = 10) {
        guard !digits.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in digits {
            let digit: UInt64
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f") where radix == 16: digit = UInt64(byte - UInt8(ascii: "a")) + 10
            default: return nil
            }
            let (shifted, overflow) = value.multipliedReportingOverflow(by: radix)
            let (sum, carry) = shifted.addingReportingOverflow(digit)
            guard !overflow, !carry else { return nil }
            value = sum
        }
        self = value
    }
}
