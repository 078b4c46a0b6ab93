import Testing
@testable import FlashSaleCore

/// Every outcome of reading `input`, handed to the reader `chunkSize` bytes at a time.
private func readAll(_ input: [UInt8], format: RequestFormat? = nil, chunkSize: Int = .max) throws -> [ReadOutcome] {
    var offset = 0
    var reader = RequestReader(format: format) {
        guard offset < input.count else { return nil }
        let end = input.count - offset <= chunkSize ? input.count : offset + chunkSize
        defer { offset = end }
        return Array(input[offset..<end])
    }
    var outcomes: [ReadOutcome] = []
    while let outcome = try reader.next() {
        outcomes.append(outcome)
    }
    return outcomes
}

private func readAll(_ input: String, format: RequestFormat? = nil, chunkSize: Int = .max) throws -> [ReadOutcome] {
    try readAll(Array(input.utf8), format: format, chunkSize: chunkSize)
}

private func record(_ line: Int, _ user: String, ip: String? = nil, userAgent: String? = nil, key: String? = nil) -> ReadOutcome {
    .record(RequestRecord(line: line, user: user, ip: ip, userAgent: userAgent, key: key))
}

/// The reason of a single malformed outcome (a record or a header), or nil if the input
/// read otherwise.
private func reason(_ input: String, format: RequestFormat? = nil) throws -> String? {
    let outcomes = try readAll(input, format: format)
    guard outcomes.count == 1 else { return nil }
    switch outcomes[0] {
    case .malformed(_, let reason), .malformedHeader(_, let reason): return reason
    case .record: return nil
    }
}

private let tooLong = "line is longer than 65536 bytes"

@Suite struct RequestReaderSniffingTests {
    @Test func leadingBraceMeansNDJSONEvenAfterBlankLines() throws {
        var reader = RequestReader(format: nil, nextChunk: chunks(["\n  \t\r\n", #"  {"user": "u1"}"#, "\n"]))
        #expect(reader.format == nil)
        #expect(try reader.next() == record(3, "u1"))
        #expect(reader.format == .ndjson)
    }

    @Test func anyOtherFirstByteMeansCSV() throws {
        var reader = RequestReader(format: nil, nextChunk: chunks(["\nuser,ip\nu1,::1\n"]))
        #expect(try reader.next() == record(3, "u1", ip: "::1"))
        #expect(reader.format == .csv)
    }

    @Test func onlyBlankInputLeavesTheFormatUnknown() throws {
        var reader = RequestReader(format: nil, nextChunk: chunks([" \n\t\r\n  "]))
        #expect(try reader.next() == nil)
        #expect(reader.format == nil)
    }

    @Test func aGivenFormatIsNotSniffed() throws {
        #expect(try readAll("user\nu1\n", format: .ndjson) == [
            .malformed(line: 1, reason: "not a JSON object"), .malformed(line: 2, reason: "not a JSON object"),
        ])
        #expect(try readAll("user\nu1\n", format: .csv) == [record(2, "u1")])
    }

    @Test func aByteOrderMarkAtTheStartIsDropped() throws {
        #expect(try readAll([0xEF, 0xBB, 0xBF] + Array(#"{"user":"u1"}"#.utf8)) == [record(1, "u1")])
        #expect(try readAll([0xEF, 0xBB, 0xBF] + Array("user\nu1\n".utf8), chunkSize: 1) == [record(2, "u1")])
    }
}

@Suite struct RequestReaderNDJSONTests {
    @Test func readsAllFourFields() throws {
        let line = #"{"user": "u1", "ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11)", "key": "req-1"}"#
        #expect(try readAll(line) == [record(1, "u1", ip: "203.0.113.7", userAgent: "Mozilla/5.0 (X11)", key: "req-1")])
    }

    @Test func onlyUserIsRequired() throws {
        #expect(try readAll(#"{"user":"u1"}"#) == [record(1, "u1")])
    }

    @Test func missingUserIsMalformed() throws {
        #expect(try reason(#"{"ip":"::1"}"#) == "user is missing")
        #expect(try reason("{}") == "user is missing")
    }

    @Test func emptyOrNullUserIsMalformed() throws {
        #expect(try reason(#"{"user":""}"#) == "user must not be empty")
        #expect(try reason(#"{"user":null}"#) == "user must not be empty")
    }

    @Test func emptyOrNullOptionalValueMeansAbsent() throws {
        #expect(try readAll(#"{"user":"u1","ip":null,"user_agent":"","key":null}"#) == [record(1, "u1")])
    }

    @Test func decodesTheShortEscapes() throws {
        #expect(try readAll(#"{"user":"a\"b\\c\/d\b\f\n\r\te"}"#) == [record(1, "a\"b\\c/d\u{8}\u{C}\n\r\te")])
    }

    @Test func decodesUnicodeEscapesAndSurrogatePairs() throws {
        #expect(try readAll(#"{"user":"caf\u00e9 \u00E9 \ud83d\ude00 \u20AC"}"#) == [record(1, "café é 😀 €")])
    }

    @Test(arguments: [#"{"user":"\ud83d"}"#, #"{"user":"\ud83dx"}"#, #"{"user":"\ud83dxude00"}"#, #"{"user":"\ud83d\u0041"}"#, #"{"user":"\ude00"}"#])
    func loneSurrogateIsMalformed(line: String) throws {
        #expect(try reason(line)?.hasPrefix("unpaired surrogate at byte 10") == true)
    }

    @Test(arguments: [#"{"user":"\x"}"#, #"{"user":"\u12G4"}"#, #"{"user":"\u12"}"#, #"{"user":"a\"}"#])
    func invalidEscapeIsMalformed(line: String) throws {
        #expect(try reason(line)?.hasPrefix("invalid JSON at byte") == true)
    }

    @Test func escapedNULIsMalformed() throws {
        #expect(try reason(#"{"user":"a\u0000b"}"#) == "user contains a NUL byte")
    }

    @Test func rawControlCharacterInAStringIsMalformed() throws {
        #expect(try reason("{\"user\":\"a\tb\"}") == "invalid JSON at byte 11")
    }

    /// A quote, an escape or a control character is found at any place of a long value.
    @Test func aSpecialByteIsFoundAtEveryPlaceOfALongString() throws {
        let plain = Array("abcdefghijklmnopqrs\u{E9}tuvwxyz~".utf8)
        for place in 0...plain.count where place == plain.count || plain[place] & 0xC0 != 0x80 {
            func line(inserting special: String) -> String {
                String(decoding: plain[..<place], as: UTF8.self) + special + String(decoding: plain[place...], as: UTF8.self)
            }
            let value = String(decoding: plain, as: UTF8.self)
            #expect(try readAll("{\"user\":\"\(line(inserting: "\\\""))\"}") == [record(1, line(inserting: "\""))])
            #expect(try readAll("{\"user\":\"\(line(inserting: "\\\\"))\"}") == [record(1, line(inserting: "\\"))])
            #expect(try reason("{\"user\":\"\(line(inserting: "\u{1F}"))\"}") == "invalid JSON at byte \(10 + place)")
            #expect(try readAll("{\"user\":\"\(line(inserting: "\u{7F}"))\"}") == [record(1, line(inserting: "\u{7F}"))])
            #expect(try readAll("{\"user\":\"\(value)\",\"key\":\"k\"}") == [record(1, value, key: "k")])
        }
    }

    @Test func unknownKeysAreSkippedWhateverTheyHold() throws {
        let line = #"{"a": {"b": [1, {"c": "}]\""}, [], {}], "d": -1.5e+3}, "e": [true, false, null, 0, 2E-2], "user": "u1", "f\u0041": "x"}"#
        #expect(try readAll(line) == [record(1, "u1")])
    }

    @Test(arguments: [
        #"{"user":"u1","x":[1,]}"#, #"{"user":"u1","x":01}"#, #"{"user":"u1","x":tru}"#, #"{"user":"u1","x":{"a" 1}}"#,
        #"{"user":"u1","x":1.}"#, #"{"user":"u1","x":-}"#, #"{"user":"u1","x":[1}"#, #"{"user":"u1","x":{"a":1]}"#,
        #"{"user":"u1","x":{1:2}}"#, #"{"user":"u1","x":'a'}"#, #"{"user":"u1","x":}"#, #"{"user":"u1","x":1e}"#,
    ])
    func unknownValuesMustStillBeValidJSON(line: String) throws {
        #expect(try reason(line)?.hasPrefix("invalid JSON at byte") == true)
    }

    @Test func deepNestingIsSkippedWithoutRecursion() throws {
        let depth = 30_000
        let line = #"{"user":"u1","x":"# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
        #expect(try readAll(line) == [record(1, "u1")])
    }

    @Test(arguments: [
        (#"{"user":"a","user":"b"}"#, #"duplicate key "user""#),
        (#"{"user":"a","\u0075ser":"b"}"#, #"duplicate key "user""#),
        (#"{"user":"a","x":1,"x":[2]}"#, #"duplicate key "x""#),
        (#"{"user":"a","x":1,"\u0078":2}"#, #"duplicate key "x""#),
    ])
    func duplicateKeysAreMalformed(line: String, expected: String) throws {
        #expect(try reason(line) == expected)
    }

    @Test func duplicateKeysInsideSkippedValuesAreAllowed() throws {
        #expect(try readAll(#"{"user":"u1","x":{"a":1,"a":2}}"#) == [record(1, "u1")])
    }

    @Test func escapedKnownKeyIsRecognised() throws {
        #expect(try readAll(#"{"\u0075ser":"u1","user\u005fagent":"UA"}"#) == [record(1, "u1", userAgent: "UA")])
    }

    @Test(arguments: [(#"{"user":"u1"} x"#, 15), (#"{"user":"u1"}{}"#, 14), (#"{"user":"u1"},"#, 14)])
    func textAfterTheObjectIsMalformed(line: String, byte: Int) throws {
        #expect(try reason(line) == "unexpected text after the object at byte \(byte)")
    }

    @Test func whitespaceAroundTokensIsAllowed() throws {
        #expect(try readAll(" \t{ \"user\" :\t\"u1\" ,  \"ip\"\t: \"::1\"\t } \t\r\n") == [record(1, "u1", ip: "::1")])
    }

    @Test(arguments: [#"[1]"#, #""x""#, "42", "null"])
    func lineThatIsNotAnObjectIsMalformed(line: String) throws {
        #expect(try reason(line, format: .ndjson) == "not a JSON object")
    }

    @Test(arguments: ["{", #"{"user":"u1""#, #"{"user":"u1",}"#, "{,}", #"{"user" "u1"}"#, #"{"user":"u1"#, #"{user:"u1"}"#])
    func truncatedOrBrokenObjectIsMalformed(line: String) throws {
        #expect(try reason(line)?.hasPrefix("invalid JSON at byte") == true)
    }

    @Test(arguments: [
        (#"{"user":1}"#, "user must be a string"), (#"{"user":"u1","ip":true}"#, "ip must be a string"),
        (#"{"user":"u1","key":{}}"#, "key must be a string"), (#"{"user":"u1","user_agent":["UA"]}"#, "user_agent must be a string"),
        (#"{"user":false}"#, "user must be a string"), (#"{"user":-1}"#, "user must be a string"),
    ])
    func nonStringValueForAKnownKeyIsMalformed(line: String, expected: String) throws {
        #expect(try reason(line) == expected)
    }

    @Test func valuesAreKeptByteForByte() throws {
        let nfd = "cafe\u{301}"
        let outcomes = try readAll(#"{"user":" u1 ","key":""# + nfd + #""}"#)
        #expect(outcomes == [record(1, " u1 ", key: nfd)])
        guard case .record(let read) = outcomes.first else { return }
        #expect(read.key?.utf8.elementsEqual(nfd.utf8) == true)
    }

    @Test func ipMustParse() throws {
        #expect(try reason(#"{"user":"u1","ip":"203.0.113.256"}"#) == "'203.0.113.256' is not an IPv4 or IPv6 address")
    }

    @Test func crlfLineEndingsWork() throws {
        #expect(try readAll("{\"user\":\"u1\"}\r\n{\"user\":\"u2\"}\r\n") == [record(1, "u1"), record(2, "u2")])
    }
}

@Suite struct RequestReaderCSVTests {
    @Test func headerColumnsMayComeInAnyOrder() throws {
        let input = "key,user_agent,ip,user\nreq-1,Mozilla/5.0,203.0.113.7,u1\n"
        #expect(try readAll(input) == [record(2, "u1", ip: "203.0.113.7", userAgent: "Mozilla/5.0", key: "req-1")])
    }

    @Test func headerAloneYieldsNothing() throws {
        #expect(try readAll("user,ip\n").isEmpty)
        #expect(try readAll("user,ip").isEmpty)
    }

    @Test func emptyInputYieldsNothing() throws {
        #expect(try readAll("").isEmpty)
        #expect(try readAll("", format: .csv).isEmpty)
        #expect(try readAll("", format: .ndjson).isEmpty)
    }

    @Test func unknownColumnsAreIgnored() throws {
        #expect(try readAll("ts,user,note\n1700000000,u1,\"hello, world\"\n") == [record(2, "u1")])
    }

    @Test func spacesAroundHeaderNamesAreForgiven() throws {
        #expect(try readAll("user , ip\nu1,::1\n") == [record(2, "u1", ip: "::1")])
    }

    @Test func headerWithoutUserIsMalformedAndSoIsEveryRecordAfterIt() throws {
        #expect(try readAll("ip,key\n::1,k1\n\n::2,k2\n") == [
            .malformedHeader(line: 1, reason: "the header has no user column"),
            .malformed(line: 2, reason: "the CSV header on line 1 is malformed"),
            .malformed(line: 4, reason: "the CSV header on line 1 is malformed"),
        ])
    }

    /// Found by probing: a header too long was a malformed line like any other, so that
    /// the next line was taken for the header, and with --skip-invalid a file exited 0
    /// having dropped its first record; and a file of CR line endings was one header line
    /// of unknown names, and queued nothing without a word.
    @Test func aHeaderTooLongOrEndedByCRAloneIsAMalformedHeader() throws {
        let long = "user," + String(repeating: "x", count: RequestReader.maximumRecordBytes) + "\nuser\nalice\n"
        for chunkSize in [.max, 4096] {
            #expect(try readAll(long, chunkSize: chunkSize) == [
                .malformedHeader(line: 1, reason: RequestReader.tooLong),
                .malformed(line: 2, reason: "the CSV header on line 1 is malformed"),
                .malformed(line: 3, reason: "the CSV header on line 1 is malformed"),
            ])
        }
        #expect(try readAll("user,ip\ralice,192.0.2.1\rbob,192.0.2.2\r") == [
            .malformedHeader(line: 1, reason: "the header has a carriage return inside a name: lines end with LF or CRLF, not CR alone"),
        ])
        let longRecord = "user\n" + String(repeating: "y", count: RequestReader.maximumRecordBytes + 1) + "\nbob\n"
        #expect(try readAll(longRecord) == [.malformed(line: 2, reason: RequestReader.tooLong), record(3, "bob")])
    }

    @Test func headerNamingAColumnTwiceIsMalformed() throws {
        #expect(try reason("user,ip,user\n") == #"the header names "user" twice"#)
    }

    /// Found by probing: `user,Key` ignored its key column as any unknown one, and every
    /// key of the file was dropped unseen; so did NDJSON's `"Key"` and CSV's `User-Agent`.
    /// A known name written otherwise is malformed; an unknown one is still ignored.
    @Test func aKnownNameWrittenOtherwiseIsMalformed() throws {
        #expect(try reason("user,Key\n") == #"the header names "Key": column names are lowercase, with _ (key)"#)
        #expect(try reason("USER_AGENT,user\n") == #"the header names "USER_AGENT": column names are lowercase, with _ (user_agent)"#)
        #expect(try reason("user,User-Agent\n") == #"the header names "User-Agent": column names are lowercase, with _ (user_agent)"#)
        #expect(try reason("user,useragent\n") == #"the header names "useragent": column names are lowercase, with _ (user_agent)"#)
        #expect(try reason("User\n") == #"the header names "User": column names are lowercase, with _ (user)"#)
        #expect(try readAll("user,Order\nu1,7\n") == [record(2, "u1")])
        #expect(try reason(#"{"user":"u1","Key":"k1"}"# + "\n") == #"key "Key" is not read: keys are lowercase, with _ (key)"#)
        #expect(try reason(#"{"user":"u1","user-agent":"x"}"# + "\n") == #"key "user-agent" is not read: keys are lowercase, with _ (user_agent)"#)
        #expect(try readAll(#"{"user":"u1","order":7}"# + "\n") == [record(1, "u1")])
    }

    /// Spreadsheets export empty header cells after the last named column (`user,ip,,`):
    /// columns without a name, whose values must be empty too, so nothing is dropped unseen.
    @Test func emptyHeaderCellsAreColumnsThatMustStayEmpty() throws {
        #expect(try readAll("user,ip,,\r\nu1,::1,,\r\nu2,,\"\",\r\nu3\r\n") == [
            record(2, "u1", ip: "::1"), record(3, "u2"), record(4, "u3"),
        ])
        #expect(try readAll("user,,\nu1,,x\nu2, ,\n") == [
            .malformed(line: 2, reason: "a value in column 3, which the header leaves without a name"),
            .malformed(line: 3, reason: "a value in column 2, which the header leaves without a name"),
        ])
    }

    @Test func quotedFieldsHoldCommasQuotesAndLineBreaks() throws {
        let input = "user,user_agent,key\n\"u,1\",\"say \"\"hi\"\"\",\"a\r\nb\nc\"\n"
        #expect(try readAll(input) == [record(2, "u,1", userAgent: "say \"hi\"", key: "a\r\nb\nc")])
    }

    /// Quoted fields are read eight bytes at a time: a doubled quote, a comma or a line
    /// break at any place of a long one is still found there, whole or cut into chunks.
    @Test func aSpecialByteIsFoundAtEveryPlaceOfALongQuotedField() throws {
        let plain = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101"
        for place in 0...plain.count {
            let index = plain.index(plain.startIndex, offsetBy: place)
            for (written, read) in [("\"\"", "\""), (",", ","), ("\n", "\n"), ("\r\n", "\r\n")] {
                let field = plain[..<index] + written + plain[index...]
                let value = plain[..<index] + read + plain[index...]
                let input = "user,user_agent\nu1,\"\(field)\"\nu2,x\n"
                let expected = [record(2, "u1", userAgent: String(value)), record(read.utf8.contains(UInt8(ascii: "\n")) ? 4 : 3, "u2", userAgent: "x")]
                #expect(try readAll(input) == expected, "\(written.debugDescription) at \(place)")
                #expect(try readAll(input, chunkSize: 7) == expected, "\(written.debugDescription) at \(place), in chunks")
            }
        }
    }

    @Test func lineNumbersCountTheLineBreaksInsideQuotes() throws {
        let input = "user,key\nu1,\"one\ntwo\nthree\"\nu2,k2\n\nu3,\"\n\"\nu4\n"
        #expect(try readAll(input) == [
            record(2, "u1", key: "one\ntwo\nthree"), record(5, "u2", key: "k2"), record(7, "u3", key: "\n"), record(9, "u4"),
        ])
    }

    @Test func crlfLineEndingsWork() throws {
        #expect(try readAll("user,ip\r\nu1,::1\r\n\"u2\",\"::2\"\r\nu3\r\n") == [
            record(2, "u1", ip: "::1"), record(3, "u2", ip: "::2"), record(4, "u3"),
        ])
    }

    @Test func lastRecordNeedsNoLineEnding() throws {
        #expect(try readAll("user\nu1\nu2") == [record(2, "u1"), record(3, "u2")])
    }

    @Test func moreFieldsThanTheHeaderIsMalformed() throws {
        #expect(try readAll("user,ip\nu1,::1,x\nu2,::2,\nu3\n") == [
            .malformed(line: 2, reason: "more fields than the header's 2"),
            .malformed(line: 3, reason: "more fields than the header's 2"),
            record(4, "u3"),
        ])
    }

    @Test func missingTrailingFieldsAreAbsent() throws {
        #expect(try readAll("user,ip,key\nu1\nu2,::1\n") == [record(2, "u1"), record(3, "u2", ip: "::1")])
    }

    @Test func recordTooShortToReachTheUserColumnIsMalformed() throws {
        #expect(try readAll("ip,user\n::1\n") == [.malformed(line: 2, reason: "user is missing")])
    }

    @Test func emptyFieldMeansAbsent() throws {
        #expect(try readAll("user,ip,user_agent,key\nu1,,\"\",\n") == [record(2, "u1")])
        #expect(try readAll("ip,user\n::1,\"\"\n") == [.malformed(line: 2, reason: "user must not be empty")])
    }

    @Test func valuesAreNotTrimmed() throws {
        #expect(try readAll("user,key\n u1 , k1\t\n") == [record(2, " u1 ", key: " k1\t")])
    }

    @Test func quoteInsideAnUnquotedFieldIsMalformed() throws {
        #expect(try readAll("user,key\nu1,ab\"c\nu2\n") == [
            .malformed(line: 2, reason: "quote inside an unquoted field at byte 6"), record(3, "u2"),
        ])
    }

    @Test func textAfterAClosingQuoteIsMalformed() throws {
        #expect(try readAll("user,key\n\"u1\"x,k\nu2\n") == [
            .malformed(line: 2, reason: "text after a closing quote at byte 5"), record(3, "u2"),
        ])
    }

    @Test func quoteLeftOpenAtTheEndOfInputIsMalformed() throws {
        #expect(try readAll("user,key\nu1,\"k\nu2\n") == [
            .malformed(line: 2, reason: "quoted field opened at byte 4 is never closed"),
        ])
    }

    @Test func ipMustParse() throws {
        #expect(try readAll("user,ip\nu1,localhost\n") == [.malformed(line: 2, reason: "'localhost' is not an IPv4 or IPv6 address")])
    }
}

@Suite struct RequestReaderTextTests {
    @Test func blankLinesAreSkippedButCounted() throws {
        #expect(try readAll("\n \t\n{\"user\":\"u1\"}\n\r\n\n{\"user\":\"u2\"}\n") == [record(3, "u1"), record(6, "u2")])
        #expect(try readAll("\nuser\n \n\t\r\nu1\n") == [record(5, "u1")])
    }

    @Test(arguments: [("user", "user", 256), ("user_agent", "user agent", 1024), ("key", "key", 256), ("ip", "ip", 64)])
    func tenKilobyteNDJSONFieldIsRefusedWithTheLimit(key: String, name: String, limit: Int) throws {
        let big = String(repeating: "a", count: 10_000)
        let line = key == "user" ? #"{"user":""# + big + #""}"# : #"{"user":"u1",""# + key + #"":""# + big + #""}"#
        #expect(try reason(line) == "\(name) is 10000 bytes; the limit is \(limit)")
    }

    @Test func tenKilobyteCSVFieldIsRefusedWithTheLimit() throws {
        let big = String(repeating: "é", count: 5_000)
        #expect(try readAll("user,user_agent\nu1,\(big)\n") == [.malformed(line: 2, reason: "user agent is 10000 bytes; the limit is 1024")])
    }

    @Test func fieldsAtTheirLimitsAreAccepted() throws {
        let user = String(repeating: "u", count: 256)
        let agent = String(repeating: "a", count: 1024)
        let ip = "0000:0000:0000:0000:0000:0000:192.168.100.200"
        #expect(try readAll("user,user_agent,ip\n\(user),\(agent),\(ip)\n") == [record(2, user, ip: ip, userAgent: agent)])
    }

    @Test(arguments: [RequestFormat.ndjson, .csv])
    func hundredKilobyteLineIsMalformedAndTheNextLineIsRead(format: RequestFormat) throws {
        let long = String(repeating: "x", count: 100_000)
        let input = format == .ndjson
            ? "\n" + #"{"user":""# + long + #""}"# + "\n" + #"{"user":"u3"}"# + "\n"
            : "user\n" + long + "\nu3\n"
        for chunkSize in [Int.max, 65_536, 1_000] {
            #expect(try readAll(input, chunkSize: chunkSize) == [.malformed(line: 2, reason: tooLong), record(3, "u3")])
        }
    }

    @Test func lineOfExactlyTheLimitIsRead() throws {
        let prefix = #"{"user":"u1"}"#
        let line = prefix + String(repeating: " ", count: 65_536 - prefix.utf8.count)
        // 65,537: a chunk ends between the CR and the LF of the first line.
        for chunkSize in [Int.max, 4_096, 65_537] {
            #expect(try readAll(line + "\r\n" + line + "\n" + line + " \n" + line + " ", chunkSize: chunkSize) == [
                record(1, "u1"), record(2, "u1"), .malformed(line: 3, reason: tooLong), .malformed(line: 4, reason: tooLong),
            ])
        }
    }

    /// A quote opens a field that ends at its closing quote, however long: one never closed
    /// takes the rest of the input into one malformed record, as under the limit.
    @Test(arguments: [Int.max, 4_096])
    func anUnterminatedQuoteTakesTheRestOfTheInput(chunkSize: Int) throws {
        let input = "user,key\nu1,\"" + String(repeating: "x", count: 70_000) + "\nu2\n"
        #expect(try readAll(input, chunkSize: chunkSize) == [.malformed(line: 2, reason: tooLong)])
        #expect(try readAll("user,key\nu1,\"x\nu2\n", chunkSize: chunkSize).count == 1)
    }

    /// Found by probing: lines inside an overlong quoted field were read as records of their
    /// own, so a field's text booked users (`book --stream`) or queued them (`submit
    /// --skip-invalid`) that were never records of the input.
    @Test(arguments: [Int.max, 4_096, 7])
    func linesInsideAnOverlongQuotedFieldAreNeverRecords(chunkSize: Int) throws {
        let xs = String(repeating: "x", count: 1_000)
        let input = "user,key\nu1,\"" + String(repeating: xs + "\ninjected\n", count: 100) + "\"\nu2\n"
        // The field's 200 newlines make the record lines 2 to 202; u2 is on line 203.
        #expect(try readAll(input, chunkSize: chunkSize) == [.malformed(line: 2, reason: tooLong), record(203, "u2")])
    }

    @Test(arguments: [RequestFormat.ndjson, .csv])
    func nulByteIsMalformedOnItsLine(format: RequestFormat) throws {
        let lines: [[UInt8]] = format == .ndjson
            ? [Array(#"{"user":"u1"}"#.utf8), Array(#"{"user":"a"#.utf8) + [0] + Array(#"b"}"#.utf8), Array(#"{"user":"u3"}"#.utf8)]
            : [Array("user".utf8), [UInt8(ascii: "a"), 0, UInt8(ascii: "b")], Array("u3".utf8)]
        let input = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
        let first = format == .ndjson ? [record(1, "u1")] : []
        #expect(try readAll(input) == first + [.malformed(line: 2, reason: "contains a NUL byte"), record(3, "u3")])
    }

    @Test(arguments: [[0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x80]] as [[UInt8]])
    func invalidUTF8IsMalformedOnItsLine(bytes: [UInt8]) throws {
        let input = Array("user,note\nu1,ok\nu2,".utf8) + bytes + Array("\nu3\n".utf8)
        #expect(try readAll(input) == [record(2, "u1"), .malformed(line: 3, reason: "not valid UTF-8"), record(4, "u3")])
    }

    @Test func invalidUTF8InAnUnknownNDJSONKeyIsMalformed() throws {
        let input = Array(#"{"user":"u1","x":""#.utf8) + [0xC3] + Array(#""}"#.utf8)
        #expect(try readAll(input) == [.malformed(line: 1, reason: "not valid UTF-8")])
    }

    @Test func multibyteTextIsAccepted() throws {
        #expect(try readAll("{\"user\":\"ユーザー😀\"}\nuser\n") == [record(1, "ユーザー😀"), .malformed(line: 2, reason: "not a JSON object")])
    }
}

/// Hands out `pieces` in order, then nil.
private func chunks(_ pieces: [String]) -> () -> [UInt8]? {
    var remaining = pieces.map { Array($0.utf8) }[...]
    return { remaining.popFirst() }
}

@Suite struct RequestReaderChunkTests {
    static let ndjson = "\n{\"user\":\"u1\",\"ip\":\"2001:db8::1\",\"user_agent\":\"Mozilla/5.0 \\u00e9\\ud83d\\ude00\",\"key\":\"k1\"}\r\n"
        + "  \r\n{\"user\": \"caf\u{E9}\", \"x\": {\"a\": [1, -2.5e3, true, null, \"}\"]}}\n{\"user\":\"\\ud83d\"}\n"
        + "{\"user\":\"u4\"} x\n{\"user\":\"u5\",\"user\":\"u5\"}\n{\"user\":\"u6\"}"
    static let csv = "\u{FEFF}key,user,ip,user_agent\r\nk1,u1,::1,\"Mozilla/5.0, \"\"quoted\"\"\"\r\n\n"
        + "k2,\"u\n2\",,\r\n\"k\"\"3\",u3,203.0.113.7\nk4,u4\"x\nk5,\"u5\"x\nk6,u6,,,extra\nk7,\"caf\u{E9}\"\n,u8,\"\r\n\"\n,u9"

    @Test(arguments: [1, 2, 3, 7])
    func ndjsonSplitAnywhereReadsAsIfWhole(chunkSize: Int) throws {
        let whole = try readAll(Self.ndjson)
        #expect(whole.count == 6)
        #expect(try readAll(Self.ndjson, chunkSize: chunkSize) == whole)
    }

    @Test(arguments: [1, 2, 3, 7])
    func csvSplitAnywhereReadsAsIfWhole(chunkSize: Int) throws {
        let whole = try readAll(Self.csv)
        #expect(whole.count == 9)
        #expect(try readAll(Self.csv, chunkSize: chunkSize) == whole)
    }

    @Test func everySplitPointOfARecordReadsAsIfWhole() throws {
        for input in [Self.ndjson, Self.csv] {
            let bytes = Array(input.utf8)
            let whole = try readAll(bytes)
            for split in 0...bytes.count {
                #expect(try readAll(bytes, chunkSize: max(split, 1)) == whole, "split at \(split)")
            }
        }
    }

    @Test func completeRecordsAreHandedOutBeforeMoreInputIsAsked() throws {
        var calls = 0
        var reader = RequestReader(format: nil) {
            calls += 1
            switch calls {
            case 1: return Array("{\"user\":\"u1\"}\n{\"user\":\"u2\"}\n{\"user\":".utf8)
            case 2: return Array("\"u3\"}\n".utf8)
            default: return nil
            }
        }
        #expect(try reader.next() == record(1, "u1"))
        #expect(calls == 1)
        #expect(try reader.next() == record(2, "u2"))
        #expect(calls == 1)
        #expect(try reader.next() == record(3, "u3"))
        #expect(calls == 2)
        #expect(try reader.next() == nil)
        #expect(calls == 3)
        #expect(try reader.next() == nil)
        #expect(calls == 3)
    }

    @Test func csvRecordsAreHandedOutBeforeMoreInputIsAsked() throws {
        var calls = 0
        var reader = RequestReader(format: .csv) {
            calls += 1
            return calls == 1 ? Array("user\nu1\n\"u\n2\"\n".utf8) : nil
        }
        #expect(try reader.next() == record(2, "u1"))
        #expect(try reader.next() == record(3, "u\n2"))
        #expect(calls == 1)
    }

    @Test func emptyChunkMeansAskAgain() throws {
        var reader = RequestReader(format: nil, nextChunk: chunks(["", "{\"user\":", "", "\"u1\"}", "", "\n"]))
        #expect(try reader.next() == record(1, "u1"))
        #expect(try reader.next() == nil)
    }

    struct InputFailure: Error, Equatable {}

    @Test func errorsFromTheInputPropagate() throws {
        var calls = 0
        var reader = RequestReader(format: nil) {
            calls += 1
            switch calls {
            case 1: return Array("{\"user\":\"u1\"}\n{\"user\":".utf8)
            case 2: throw InputFailure()
            case 3: return Array("\"u2\"}".utf8)
            default: return nil
            }
        }
        #expect(try reader.next() == record(1, "u1"))
        #expect(throws: InputFailure()) { try reader.next() }
        #expect(try reader.next() == record(2, "u2"))
        #expect(try reader.next() == nil)
    }

    @Test func bufferStaysBoundedWithoutLineBreaks() throws {
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 65_536)
        var sent = 0
        var reader = RequestReader(format: .csv) {
            sent += 1
            return sent <= 256 ? chunk : nil  // 16 MiB, no newline
        }
        // The first line of a CSV file: its header.
        #expect(try reader.next() == .malformedHeader(line: 1, reason: tooLong))
        #expect(try reader.next() == nil)
        #expect(sent == 257)
        #expect(reader.bufferCapacity < 300_000)
    }
}

@Suite struct RequestReaderOverflowResyncTests {
    /// An opening quote that never closes takes the rest of the input, however long: a
    /// gateway that quotes a buyer's 70 KB user agent with newlines in it (correct CSV) must
    /// not have those lines decided as requests. What it costs a broken producer is one
    /// malformed record, in bounded memory (`bufferStaysBoundedWithoutLineBreaks`).
    @Test(arguments: [1 << 16, 1000, 7])
    func anUnclosedQuoteTakesEveryLaterLine(chunkSize: Int) throws {
        var input = Array("user\n\"".utf8) + Array(repeating: UInt8(ascii: "x"), count: 70_000) + Array("\n".utf8)
        for n in 3...2000 { input += Array("u\(n)\n".utf8) }
        var offset = 0
        var reader = RequestReader(format: nil) {
            guard offset < input.count else { return nil }
            let chunk = Array(input[offset..<min(offset + chunkSize, input.count)])
            offset += chunk.count
            return chunk
        }
        var outcomes: [ReadOutcome] = []
        while let outcome = try reader.next() { outcomes.append(outcome) }
        #expect(outcomes == [.malformed(line: 2, reason: RequestReader.tooLong)])
    }

    /// Found by fuzzing: a quoted record over the limit that had already arrived whole was
    /// skipped whole, while the same bytes arriving in small chunks lost only their first
    /// line, so `book --stream` answered differently depending on how the pipe delivered them.
    @Test(arguments: [Int.max, 1000, 7])
    func anOverlongQuotedRecordIsSkippedWholeHoweverItArrives(chunkSize: Int) throws {
        let input = "user\n\"" + String(repeating: "x", count: 70_000) + "\nb\"\nu4\n"
        #expect(try readAll(input, chunkSize: chunkSize) == [.malformed(line: 2, reason: tooLong), record(4, "u4")])
    }
}
