import FuzzSupport
@testable import FlashSaleCore

/// Durations and times as a user types them (`--hold`, `--starts`, `FLASHSALE_NOW`), and
/// the RFC 3339 text flashsale prints. Properties: whatever parses is in range and prints
/// as text that parses back to the same value.
@main enum FuzzTime {
    static func main() { runFuzzer(fuzzTime) }
}

func fuzzTime(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    checkPrinting(bytes)
    // The CLI refuses invalid UTF-8 before any of this parsing sees it.
    guard let text = String(validating: bytes, as: UTF8.self) else { return 0 }
    checkSpan(text)
    for now in [Instant(milliseconds: 1_795_100_400_000), Instant.earliest, Instant.latestInput] {
        checkInstant(text, now: now)
    }
    return 0
}

private func checkSpan(_ text: String) {
    guard let span = Span.parse(text) else { return }
    require((0...Span.maximum.milliseconds).contains(span.milliseconds), "span '\(text)' = \(span.milliseconds) ms is out of range")
    require(Span.parse(span.description) == span, "span '\(text)' prints as '\(span)', which does not parse back")
}

private func checkInstant(_ text: String, now: Instant) {
    guard let instant = Instant.parse(text, now: now) else { return }
    require(instant >= Instant.earliest && instant <= Instant.latestInput,
            "'\(text)' = \(instant.milliseconds) ms is outside 1970...latestInput")
    require(Instant.parse(instant.description, now: now) == instant,
            "'\(text)' prints as '\(instant)', which does not parse back to \(instant.milliseconds) ms")
    if text.hasPrefix("+") {
        require(Span.parse(String(text.dropFirst())).map { now.adding($0) } == instant, "'\(text)' is not now + its span")
    }
}

/// Any instant flashsale can store prints as 24 bytes of RFC 3339 that read back to it.
private func checkPrinting(_ bytes: UnsafeBufferPointer<UInt8>) {
    guard bytes.count >= 8 else { return }
    let raw = bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    let instant = Instant(milliseconds: Int64(raw % UInt64(Instant.latest.milliseconds + 1)))
    let text = instant.description
    require(text.utf8.count == 24, "\(instant.milliseconds) ms prints as '\(text)'")
    if instant <= Instant.latestInput {
        require(Instant.parse(text, now: .earliest) == instant, "\(instant.milliseconds) ms prints as '\(text)', which does not parse back")
    }
}
