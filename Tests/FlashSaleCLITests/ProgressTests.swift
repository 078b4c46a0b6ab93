import Testing
@testable import FlashSaleCLI

/// A captured stream that says it is a terminal.
private final class CapturedTerminal: TextSink {
    var text = ""
    var isTerminal: Bool { true }
    func write(_ text: String) { self.text += text }
    func flush() {}
}

/// The count shows only where a person watches: the stream it goes to decides, not
/// descriptor 2, which an embedding caller (or an in-process test) does not write to.
@Suite struct ProgressTests {
    @Test func aCountShowsOnATerminal() {
        let terminal = CapturedTerminal()
        let progress = Progress(every: 2, label: "read", sink: terminal)
        for _ in 0..<5 { progress.tick() }
        progress.finish()
        #expect(terminal.text == "\rread 2\u{1B}[K\rread 4\u{1B}[K\rread 5\u{1B}[K\n")
    }

    @Test func noCountElsewhere() {
        let captured = Captured()
        let progress = Progress(every: 2, label: "read", sink: captured)
        for _ in 0..<5 { progress.tick() }
        progress.finish()
        #expect(captured.text.isEmpty)
    }
}
