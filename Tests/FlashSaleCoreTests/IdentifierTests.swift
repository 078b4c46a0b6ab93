import Testing
@testable import FlashSaleCore

@Suite struct SaleIDTests {
    @Test(arguments: ["s1", "Spring-2026_drop.v2", "9", String(repeating: "a", count: 64)])
    func acceptsTheContractsAlphabet(text: String) throws {
        #expect(try SaleID(text).text == text)
    }

    @Test(arguments: ["", "-s1", ".s1", "_s1", "s 1", "s1;DROP TABLE sale", "s/1", "é", String(repeating: "a", count: 65), "s1\n"])
    func refusesEverythingElseAsUsage(text: String) {
        #expect(throws: FlashSaleError.self) { try SaleID(text) }
        #expect((try? SaleID(text)) == nil)
    }
}

@Suite struct BookingIDTests {
    /// Many pools of random bytes' worth, all made in the same millisecond.
    @Test func newIDsAreWellFormedAndDistinct() throws {
        let generator = BookingIDGenerator()
        var seen = Set<String>()
        for _ in 0..<4000 {
            let id = generator.make(at: T)
            #expect(try BookingID(id.text) == id)
            #expect(id.text.utf8.count == 25)
            seen.insert(id.text)
        }
        #expect(seen.count == 4000)
        // 16 characters of 6 random bits each: every one of the 64 turns up at every place.
        for place in 9..<25 {
            #expect(Set(seen.map { Array($0.utf8)[place] }).count == 64)
        }
    }

    /// Ids sort as the times they were made (by text, byte by byte, as SQLite's index does),
    /// a millisecond apart or a year.
    @Test func newIDsSortByTheTimeTheyWereMade() {
        let generator = BookingIDGenerator()
        let times = (0..<200).map { T.adding(Span(milliseconds: Int64($0 * $0 * $0 * 5))) }
        let ids = times.map { generator.make(at: $0).text }
        #expect(ids == ids.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
    }

    /// Ids of earlier versions, 128 random bits in base64's own order, stay valid.
    @Test func olderIDsStayValid() throws {
        #expect(try BookingID("bk_N4diA7I30qNF0HJWfCVaKw").text == "bk_N4diA7I30qNF0HJWfCVaKw")
    }

    @Test(arguments: ["", "bk_", "bk_short", "xx_7Q2Mabcdefghijklmnopqr", "bk_7Q2Mabcdefghijklmnop+r", "bk_7Q2Mabcdefghijklmnopqrs"])
    func refusesMalformedIDs(text: String) {
        #expect((try? BookingID(text)) == nil)
    }
}

@Suite struct TextFieldTests {
    @Test func emptyOptionalValueMeansAbsent() throws {
        #expect(try TextField.key.validate("", required: false) == nil)
        #expect(throws: FlashSaleError.self) { try TextField.user.validate("", required: true) }
    }

    @Test func limitsAreInBytesNotCharacters() throws {
        let twoByte = String(repeating: "é", count: 128)  // 256 bytes
        #expect(try TextField.user.validate(twoByte, required: true) == twoByte)
        #expect(throws: FlashSaleError.self) { try TextField.user.validate(twoByte + "e", required: true) }
        #expect(throws: FlashSaleError.self) { try TextField.userAgent.validate(String(repeating: "a", count: 1025), required: false) }
    }

    @Test func textIsKeptByteForByte() throws {
        let nfc = "caf\u{E9}"
        let nfd = "cafe\u{301}"
        #expect(try TextField.user.validate(nfc, required: true)?.utf8.elementsEqual(nfc.utf8) == true)
        #expect(try TextField.user.validate(nfd, required: true)?.utf8.elementsEqual(nfd.utf8) == true)
    }

    @Test func refusesNULBytes() {
        #expect(throws: FlashSaleError.self) { try TextField.user.validate("a\u{0}b", required: true) }
    }

    @Test func quotedValuesStayOnOneLine() {
        #expect(Quoted("a\nb").description == "a\\nb")
        #expect(Quoted(String(repeating: "x", count: 100)).description.count == 43)
    }

    /// A PostgreSQL URL or connection string is never echoed (a password may be in it);
    /// other values that only look like URLs or keywords are (found by a review: a bot's
    /// agent `http://…` was hidden from the suspects table).
    @Test func quotedValuesNeverShowAPostgreSQLURL() {
        let hidden = "<a database URL, not shown: it may hold a password>"
        for text in ["postgresql://a:pw@h/db", "POSTGRES://a:pw@h", " postgresql:/a:pw@h", "postgres:pw@h", "postgresq://a:pw@h",
                     "host=h password=pw", "\"postgresql://a:pw@h\"", "jdbc:postgresql://h/db?password=pw", "a:pw@h:5432/db",
                     "mysql://a:pw@h/db"] {
            #expect(Quoted(text).description == hidden, "\(text)")
        }
        for text in ["http://bot.example/ua", "user=bob", "postgres", "postgresfan", "bob@example.com", "./postgresql://h/db"] {
            #expect(Quoted(text).description == text)
        }
    }

    /// C1 controls too: U+009B is a terminal's CSI, U+0085 a line break to some programs.
    @Test func everyControlCharacterIsEscapedAndNothingElse() {
        #expect(Quoted("a\u{9B}2J\u{85}b").description == #"a\u{009B}2J\u{0085}b"#)
        #expect(Quoted("\t\r\u{1B}[31m\u{7F}").description == #"\t\r\u{1B}[31m\u{7F}"#)
        #expect(Quoted("caf\u{E9} \u{1F600}\u{200D}\u{1F525} \u{A0}\\n").description == "caf\u{E9} \u{1F600}\u{200D}\u{1F525} \u{A0}\\n")
    }
}

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("203.0.113.7", [203, 0, 113, 7]), ("0.0.0.0", [0, 0, 0, 0]), ("255.255.255.255", [255, 255, 255, 255]),
    ] as [(String, [UInt8])])
    func parsesIPv4(text: String, bytes: [UInt8]) {
        #expect(IPAddress(text)?.bytes == bytes)
    }

    @Test func parsesIPv6Forms() {
        #expect(IPAddress("::")?.bytes == Array(repeating: 0, count: 16))
        #expect(IPAddress("::1")?.bytes == Array(repeating: 0, count: 15) + [1])
        #expect(IPAddress("2001:db8::8a2e:370:7334")?.bytes == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x34])
        #expect(IPAddress("::ffff:192.0.2.1")?.bytes == Array(repeating: 0, count: 10) + [0xff, 0xff, 192, 0, 2, 1])
        #expect(IPAddress("1:2:3:4:5:6:7:8") != nil)
        #expect(IPAddress("FE80::1") != nil)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", "a.b.c.d", ":", ":::", "1::2::3",
        "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", "12345::", "g::1", "::1.2.3", "1.2.3.4::", "fe80::1%eth0", " 1.2.3.4",
    ])
    func refusesWhatIsNotAnAddress(text: String) {
        #expect(IPAddress(text) == nil)
    }
}

@Suite struct ErrorCodeTests {
    @Test func everyErrorHasTheContractsExitAndCode() {
        let table: [(FlashSaleError, Int32, String)] = [
            (.internalFailure(""), 1, "internal"), (.usage(""), 2, "usage"), (.notFound(""), 3, "not_found"),
            (.conflict(""), 4, "conflict"), (.holdExpired(""), 5, "hold_expired"), (.soldOut(""), 6, "sold_out"),
            (.userLimit(""), 7, "user_limit"), (.notOpen(""), 8, "not_open"), (.blocked(""), 9, "blocked"),
            (.invariant(""), 10, "invariant"), (.badInput(""), 65, "bad_input"), (.cantOpen(""), 73, "cant_open"),
            (.io(""), 74, "io"), (.busy(""), 75, "busy"),
        ]
        for (error, exit, code) in table {
            #expect(error.exitCode == exit)
            #expect(error.code == code)
        }
    }
}

/// Users are compared byte for byte, as the contract and SQLite compare them: Swift's own
/// `String ==` would take two spellings of `é` for one user (and one owner of a key).
@Suite struct UserIDTests {
    @Test func twoSpellingsOfOneLetterAreTwoUsers() {
        let composed = UserID(trusted: "\u{E9}")
        let decomposed = UserID(trusted: "e\u{301}")
        #expect(composed.text == decomposed.text)  // String's canonical equivalence
        #expect(composed != decomposed)
        #expect(Set([composed, decomposed]).count == 2)
    }
}

/// A request id as the command line and the HTTP API take it: digits only, above zero.
@Suite struct RequestIDTests {
    @Test(arguments: [("1", Int64(1)), ("42", 42), ("007", 7), ("9223372036854775807", .max)])
    func digitsAreAnId(text: String, value: Int64) {
        #expect(RequestID(parsing: text) == RequestID(value))
    }

    @Test(arguments: ["", "0", "+1", "-1", " 1", "1 ", "1.0", "1e3", "0x1", "١", "9223372036854775808"])
    func anythingElseIsNone(text: String) {
        #expect(RequestID(parsing: text) == nil)
    }
}
