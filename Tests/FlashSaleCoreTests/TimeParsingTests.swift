import Testing
@testable import FlashSaleCore

@Suite struct SpanParsingTests {
    @Test(arguments: [
        ("90s", 90_000), ("5m", 300_000), ("1h30m", 5_400_000), ("250ms", 250),
        ("300", 300_000), ("0", 0), ("1m30s", 90_000), ("2h", 7_200_000), ("1s500ms", 1500),
    ] as [(String, Int64)])
    func parsesTheContractsSpellings(text: String, milliseconds: Int64) {
        #expect(Span.parse(text)?.milliseconds == milliseconds)
    }

    @Test(arguments: ["", "-5s", "5x", "m", "1.5s", "5 m", "s5", "99999999999999999999s", "1000000h", "5m-", "+5m"] as [String])
    func refusesAnythingElse(text: String) {
        #expect(Span.parse(text) == nil)
    }

    @Test func refusesSpansBeyondTenYears() {
        #expect(Span.parse("87840h") != nil)
        #expect(Span.parse("87841h") == nil)
    }

    @Test(arguments: [(300_000, "5m"), (5_400_000, "1h30m"), (250, "250ms"), (0, "0s"), (90_500, "1m30s500ms")] as [(Int64, String)])
    func printsWhatItParses(milliseconds: Int64, text: String) {
        let span = Span(milliseconds: milliseconds)
        #expect(span.description == text)
        #expect(Span.parse(text) == span)
    }

    @Test func printsSecondsAsAJSONNumber() {
        #expect(Span(milliseconds: 300_000).secondsText == "300")
        #expect(Span(milliseconds: 250).secondsText == "0.25")
        #expect(Span(milliseconds: 1005).secondsText == "1.005")
    }
}

@Suite struct InstantParsingTests {
    let now = Instant(milliseconds: 1_795_000_000_000)

    @Test(arguments: [
        ("2026-11-24T15:00:00Z", 1_795_532_400_000),
        ("2026-11-24T15:00:00.250Z", 1_795_532_400_250),
        ("2026-11-24T15:00:00.2509999Z", 1_795_532_400_250),
        ("2026-11-24T15:00:00.250999999999Z", 1_795_532_400_250),
        ("1795532400.123456789012", 1_795_532_400_123),
        ("2026-11-24t15:00:00z", 1_795_532_400_000),
        ("2026-11-24 15:00:00Z", 1_795_532_400_000),
        ("2026-11-24T16:30:00+01:30", 1_795_532_400_000),
        ("2026-11-24T10:00:00-05:00", 1_795_532_400_000),
        ("1970-01-01T00:00:00Z", 0),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),
        ("1795532400", 1_795_532_400_000),
        ("1795532400.5", 1_795_532_400_500),
    ] as [(String, Int64)])
    func parsesRFC3339AndUnixSeconds(text: String, milliseconds: Int64) {
        #expect(Instant.parse(text, now: now)?.milliseconds == milliseconds)
    }

    @Test(arguments: [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_795_532_400_250, "2026-11-24T15:00:00.250Z"),
        (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
        (1_709_251_199_999, "2024-02-29T23:59:59.999Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        (253_402_300_800_000, "10000-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        // The far ends, which only a time set by hand reaches (found by probing: a crash).
        (.min, "-292275055-05-16T16:47:04.192Z"),
        (.max, "292278994-08-17T07:12:55.807Z"),
    ] as [(Int64, String)])
    func printsRFC3339WithMilliseconds(milliseconds: Int64, text: String) {
        #expect(Instant(milliseconds: milliseconds).description == text)
    }

    @Test func parsesAnOffsetFromNow() {
        #expect(Instant.parse("+5m", now: now) == now.adding(.seconds(300)))
        #expect(Instant.parse("+", now: now) == nil)
    }

    @Test(arguments: [
        "", "2026-11-24", "2026-11-24T15:00:00", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
        "2026-11-31T00:00:00Z", "2026-11-24T24:00:00Z", "2026-11-24T15:60:00Z", "2026-11-24T15:00:60Z",
        "2026-11-24T15:00:00+24:00", "2026-11-24T15:00:00.Z", "2026-11-24T15:00:00ZZ", "1969-12-31T23:59:59Z",
        "-5", "12a", "1795532400.", "99999999999999999999", "2026-11-24T15:00:00 Z", "tomorrow",
    ] as [String])
    func refusesMalformedTimes(text: String) {
        #expect(Instant.parse(text, now: now) == nil)
    }

    @Test func printsRFC3339WithMillisecondsInUTC() {
        #expect(Instant(milliseconds: 1_795_532_400_250).description == "2026-11-24T15:00:00.250Z")
        #expect(Instant(milliseconds: 0).description == "1970-01-01T00:00:00.000Z")
        #expect(Instant.latest.description == "9999-12-31T23:59:59.999Z")
    }

    @Test func roundTripsEveryDayOfALeapYear() {
        let start = Instant.parse("2024-01-01T00:00:00Z", now: now)!.milliseconds
        for day in 0..<366 {
            let instant = Instant(milliseconds: start + Int64(day) * 86_400_000 + 3_723_004)
            #expect(Instant.parse(instant.description, now: now) == instant)
        }
    }

    @Test func noTimeIsAcceptedSoLateThatAHoldCouldNotEnd() {
        #expect(Instant.parse("9999-11-30T23:59:59.999Z", now: now) != nil)
        #expect(Instant.parse("9999-12-31T23:59:59.999Z", now: now) == nil)
        #expect(Instant.parse("+10h", now: Instant.latestInput) == nil)
        let latestHold = SaleDefinition.maximumHold
        #expect(Instant.latestInput.adding(latestHold) < Instant.latest)
    }

    @Test func addingSaturatesAtTheLastRepresentableInstant() {
        #expect(Instant.latest.adding(.seconds(60)) == Instant.latest)
        // Past Int64 itself, from a time or a hold set there by hand (found by review: a crash).
        #expect(Instant(milliseconds: .max).adding(.seconds(60)) == Instant.latest)
        #expect(Instant.earliest.adding(Span(milliseconds: .max)) == Instant.latest)
    }
}
