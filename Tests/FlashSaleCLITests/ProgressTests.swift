import Foundation
import Testing
@testable import FlashSaleCLI

/// The count shows only where a person watches: the stream it goes to decides, not
/// descriptor 2, which an embedding caller (or an in-process test) does not write to.
@Suite struct ProgressTests {
    @Test func aCountShowsOnATerminal() {
        let terminal = Captured(isTerminal: true)
        let progress = Progress(every: 2, label: "read", sink: terminal)
        for _ in 0..<5 { progress.tick() }
        progress.finish()
        #expect(terminal.text == "\rread 2\u{1B}[K\rread 4\u{1B}[K\rread 5\u{1B}[K\n")
    }

    /// Found by probing: a message written while the count was drawn (a skipped line, a
    /// wait for a lock) was glued to its end on the terminal. The sink that writes a
    /// descriptor erases the count first; the next tick draws it again.
    @Test func aMessageAfterTheCountErasesItFirst() throws {
        let written = try writtenThroughFileSink { stderr in
            for text in ["\rread 1\u{1B}[K", "flashsale: line 2 skipped\n", "\rread 2\u{1B}[K", "\rread 3\u{1B}[K\n", "done\n"] {
                stderr.write(text)
            }
        }
        #expect(written == "\rread 1\u{1B}[K\r\u{1B}[Kflashsale: line 2 skipped\n\rread 2\u{1B}[K\rread 3\u{1B}[K\ndone\n")
    }

    /// Found by probing: an export or a stream printing its rows to the terminal the count
    /// was drawn on had it glued between them. None is drawn then, as curl draws no meter.
    @Test func noCountBesideRowsPrintedToATerminal() {
        #expect(!Progress(every: 1, label: "read", sink: Captured(isTerminal: true), besideData: Captured(isTerminal: true)).enabled)
        #expect(Progress(every: 1, label: "read", sink: Captured(isTerminal: true), besideData: Captured()).enabled)
    }

    @Test func noCountElsewhere() {
        let captured = Captured()
        let progress = Progress(every: 2, label: "read", sink: captured)
        for _ in 0..<5 { progress.tick() }
        progress.finish()
        #expect(captured.text.isEmpty)
    }
}

/// The long jobs show the share done where its total is known, as pv does: a file's size,
/// the queue's length, the sale's bookings.
@Suite struct ProgressShareTests {
    @Test func aFilesShareGivesTheRateAndTheTimeLeft() {
        #expect(Progress.line(label: "read", count: 300_000, share: 0.25, seconds: 3)
                    == "read 300000 (25%), 100000/s, 9s left")
        #expect(Progress.line(label: "read", count: 0, share: 0, seconds: 0) == "read 0 (0%)")
    }

    /// Runs `flashsale --db DB ARGS` in this process with stderr on a terminal.
    private func runOnATerminal(_ box: Sandbox, _ arguments: [String], input: String = "") throws -> String {
        let terminal = Captured(isTerminal: true)
        let path = try box.file("input-\(UUID().uuidString)", input)
        let stdin = open(path, O_RDONLY)
        defer { close(stdin) }
        let status = CLI.run(rawArguments: (["--db", box.database] + arguments).map { Array($0.utf8) },
                             environment: ["FLASHSALE_NOW": Array(T0.utf8)], stdin: stdin,
                             stdout: Captured(), stderr: terminal, linked: Sandbox.inProcess)
        #expect(status == 0, "\(arguments): \(terminal.text)")
        return terminal.text
    }

    @Test func exportProcessAndAStreamFromAFileShowTheirShare() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "200000"])
        let lines = (1...100_000).map { "{\"user\":\"u\($0)\"}" }.joined(separator: "\n") + "\n"
        #expect(try runOnATerminal(box, ["book", "s1", "--stream"], input: lines).contains("decided 100000 (100%)"))
        #expect(try runOnATerminal(box, ["export", "s1"]).contains("exported 100000 of 100000 (100%)"))
        let queued = (1...100_000).map { "{\"user\":\"q\($0)\"}" }.joined(separator: "\n") + "\n"
        let file = try box.file("queue.ndjson", queued)
        #expect(try runOnATerminal(box, ["submit", "s1", "--file", file]).contains("read 100000 (100%)"))
        #expect(try runOnATerminal(box, ["process", "s1"]).contains("decided 100000 of 100000 (100%)"))
    }
}
