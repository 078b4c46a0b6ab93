import Testing
import FlashSaleCore
@testable import FlashSaleCLI

/// Reading ahead on another thread changes when a line is parsed, never what comes out.
@Suite struct ReadAheadTests {
    /// A reader of `lines` NDJSON requests, one line per chunk, that fails after them if
    /// `failing`.
    private func reader(lines: Int, failing: Bool = false) -> RequestReader {
        nonisolated(unsafe) var sent = 0
        return RequestReader(format: .ndjson) {
            defer { sent += 1 }
            if sent < lines { return Array("{\"user\":\"u\(sent)\"}\n".utf8) }
            if failing { throw FlashSaleError.io("the disk went away") }
            return nil
        }
    }

    private func users(_ readAhead: ReadAhead) throws -> [String] {
        var users: [String] = []
        while let outcome = try readAhead.next() {
            guard case .record(let record) = outcome else { Issue.record("unexpected \(outcome)"); break }
            users.append(record.user)
        }
        return users
    }

    @Test(arguments: [0, 1, 4_095, 4_096, 4_097, 50_000])
    func everyRecordArrivesOnceInInputOrder(lines: Int) throws {
        #expect(try users(ReadAhead(reader(lines: lines))) == (0..<lines).map { "u\($0)" })
    }

    @Test func aReadErrorComesAfterTheRecordsBeforeIt() throws {
        let readAhead = ReadAhead(reader(lines: 9_000, failing: true))
        var taken = 0
        let error = #expect(throws: FlashSaleError.self) {
            while try readAhead.next() != nil { taken += 1 }
        }
        #expect(taken == 9_000)
        #expect(error?.exitCode == 74)
    }

    @Test func aCallerThatStopsEarlyLeavesTheReaderToStop() throws {
        let readAhead = ReadAhead(reader(lines: 100_000))
        #expect(try readAhead.next() != nil)
        readAhead.stop()
    }
}
