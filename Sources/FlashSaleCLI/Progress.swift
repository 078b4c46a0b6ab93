import FlashSaleCore

/// A count on standard error for long bulk work, only when a person is watching (a TTY).
/// With a total, also the share done, the rate and the time left, as pv shows them.
final class Progress {
    private let every: Int64
    private let label: String
    private let sink: TextSink
    /// Whether anyone will see it (its sink is a terminal): a total is only worth its cost then.
    let enabled: Bool
    private var count: Int64 = 0
    var total: Int64?
    /// More to say after the count (`rehearse`'s stock left), asked each time the line is drawn.
    var detail: (() -> String)?
    /// For work read from a file of known size: how far into it the reader is. The share
    /// done and the time left come from it when there is no total.
    private var input: InputChunks?
    private let started = MonotonicClock.nanoseconds()

    /// `data`: where the command prints what it produces as it goes (an export's rows, a
    /// stream's answers), if anywhere. When that is a terminal too (as a rule the one the
    /// line is drawn on), the line would be drawn between two pieces of it and glued to them
    /// (found by probing): not shown then, as curl shows no meter when its output goes to a
    /// terminal.
    init(every: Int64, label: String, sink: TextSink, besideData data: TextSink? = nil) {
        self.every = every
        self.label = label
        self.sink = sink
        enabled = sink.isTerminal && !(data?.isTerminal ?? false)
    }

    func tick(_ amount: Int64 = 1) {
        let before = count
        count += amount
        if enabled, before / every != count / every {
            // Erased to the end of the line: the time left may get shorter.
            sink.write("\r\(line)\u{1B}[K")
            sink.flush()
        }
    }

    func finish() {
        // Flushed now, so that the count stands before the command's result on a terminal.
        if enabled, count >= every {
            sink.write("\r\(line)\u{1B}[K\n")
            sink.flush()
        }
    }

    /// Shows the share of `input` read, when it is a file whose size is known.
    func follow(_ input: InputChunks) {
        if input.size != nil { self.input = input }
    }

    private var line: String {
        let seconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
        let suffix = detail.map { ", " + $0() } ?? ""
        if total == nil, let input, let size = input.size {
            let read = input.bytesRead.load(ordering: .relaxed)
            return Progress.line(label: label, count: count, share: Double(read) / Double(size), seconds: seconds) + suffix
        }
        return Progress.line(label: label, count: count, total: total, seconds: seconds) + suffix
    }

    /// `read 250000 (34%), 120000/s, 5s left`: the share from a file's bytes.
    static func line(label: String, count: Int64, share: Double, seconds: Double) -> String {
        let done = "\(label) \(count) (\(Int(min(share, 1) * 100))%)"
        guard seconds > 0, count > 0, share > 0 else { return done }
        let left = seconds * (1 - min(share, 1)) / share
        return done + ", \(Int64(Double(count) / seconds))/s, \(Int64(left.rounded(.up)))s left"
    }

    static func line(label: String, count: Int64, total: Int64?, seconds: Double) -> String {
        guard let total, total > 0 else { return "\(label) \(count)" }
        let done = "\(label) \(count) of \(total) (\(count * 100 / total)%)"
        guard seconds > 0, count > 0 else { return done }
        let rate = Double(count) / seconds
        return done + ", \(Int64(rate))/s, \(Int64((Double(max(0, total - count)) / rate).rounded(.up)))s left"
    }
}
