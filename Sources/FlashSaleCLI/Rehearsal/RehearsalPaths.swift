import FlashSaleCore
import FlashSaleEngine
import Glibc

/// How long a wave of booking requests took to decide, and each request's own time where
/// the path answers requests one by one (HTTP).
struct WaveTiming {
    let decided: Int
    let seconds: Double
    let latencies: [Double]?
}

/// What a rehearsal's path does: decide waves of booking requests through its front end,
/// and settle holds. Every decision is the engine's, in a command or a server this binary
/// runs, never one of the rehearsal's own.
protocol RehearsalPath: AnyObject {
    /// Decides `requests` in order at `now`, telling `progress` how many are decided and
    /// how many of them hold an item.
    func book(_ requests: ArraySlice<CrowdRequest>, at now: Instant, wave: String,
              progress: (_ decided: Int, _ held: Int) -> Void) throws -> WaveTiming
    func settle(confirm: [Booking], cancel: [Booking], at now: Instant) throws
    /// Stops whatever it left running.
    func finish() throws
}

/// The pieces every path shares: the children, the database, the sale.
struct RehearsalSetting {
    let children: RehearsalChildren
    /// The global options each child takes from the rehearsal: the `--pg-schema` and
    /// `--busy-timeout` it was given (its database goes in the children's environment,
    /// `RehearsalChildren.database`).
    let databaseOptions: [String]
    let sale: SaleID
    let engine: Engine

    /// `requests` as NDJSON in a scratch file, opened for reading. Written a piece at a
    /// time: the opening second's slice is half the crowd.
    func requestFile(_ requests: ArraySlice<CrowdRequest>, name: String) throws(FlashSaleError) -> Int32 {
        let path = children.directory + "/" + name + ".ndjson"
        let out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard out >= 0 else { throw .io("cannot write '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(out) }
        var text = UTF8Text(capacity: RehearsalSetting.pieceBytes + 1024)
        for request in requests {
            text.append("{\"user\":")
            text.appendQuoted(request.user)
            text.append(",\"ip\":")
            text.appendQuoted(request.ip)
            text.append(",\"user_agent\":")
            text.appendQuoted(request.userAgent)
            text.append("}\n")
            if text.bytes.count >= RehearsalSetting.pieceBytes { try write(&text, to: out, path: path) }
        }
        try write(&text, to: out, path: path)
        let input = open(path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .io("cannot read '\(path)': \(String(cString: strerror(errno)))") }
        return input
    }

    private static let pieceBytes = 1 << 16

    /// Writes `text` whole to `out`, and empties it.
    private func write(_ text: inout UTF8Text, to out: Int32, path: String) throws(FlashSaleError) {
        var written = 0
        while written < text.bytes.count {
            let count = text.bytes.withUnsafeBytes { Glibc.write(out, $0.baseAddress! + written, $0.count - written) }
            guard count > 0 else { throw .io("cannot write '\(path)': \(String(cString: strerror(errno)))") }
            written += count
        }
        text.removeAll()
    }

    /// Confirms and cancels in one transaction, through the engine the commands use. A lock
    /// held past the busy timeout is waited out, as the children wait it out (found by
    /// probing: a rehearsal on a busy --db ended 75 half way, its sale left, where the
    /// advice to retry could only be refused).
    func settleInProcess(confirm: [Booking], cancel: [Booking], at now: Instant) throws {
        while true {
            let group = DecisionGroup(engine: engine)
            do {
                for booking in confirm { _ = try group.confirm(booking.id, in: sale, user: booking.user, clock: now) }
                for booking in cancel { _ = try group.cancel(booking.id, in: sale, user: booking.user, force: false, clock: now) }
                try group.commit()
                return
            } catch {
                group.abandon()
                guard case .busy? = StoreFailure.of(error) else { throw error }
                RehearsalChildren.pauseWhileBusy()
            }
        }
    }
}

/// `book SALE --stream`, one process per wave, the wave's requests on its standard input.
final class StreamPath: RehearsalPath {
    private let setting: RehearsalSetting

    init(_ setting: RehearsalSetting) {
        self.setting = setting
    }

    func book(_ requests: ArraySlice<CrowdRequest>, at now: Instant, wave: String,
              progress: (Int, Int) -> Void) throws -> WaveTiming {
        let input = try setting.requestFile(requests, name: wave)
        defer { close(input) }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw FlashSaleError.io("cannot make a pipe: \(String(cString: strerror(errno)))") }
        let started = MonotonicClock.nanoseconds()
        let log = "book --stream \(wave)"
        let pid: pid_t
        do {
            defer { close(ends[1]) }
            pid = try setting.children.start(setting.databaseOptions + ["book", setting.sale.text, "--stream"],
                                             now: now, input: input, output: ends[1], log: log)
        }
        defer { close(ends[0]) }
        // Each line is one decision, printed once committed: count them, and the holds.
        var decided = 0
        var held = 0
        var line: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let mark = Array("\"ok\":true".utf8)
        while true {
            let count = read(ends[0], &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            for byte in buffer[..<count] {
                guard byte == UInt8(ascii: "\n") else { line.append(byte); continue }
                decided += 1
                if line.count > mark.count, contains(line, mark) { held += 1 }
                line.removeAll(keepingCapacity: true)
            }
            progress(decided, held)
        }
        try setting.children.check(setting.children.wait(pid) ?? 1, log: log)
        return WaveTiming(decided: decided, seconds: Double(MonotonicClock.nanoseconds() - started) / 1e9, latencies: nil)
    }

    func settle(confirm: [Booking], cancel: [Booking], at now: Instant) throws {
        try setting.settleInProcess(confirm: confirm, cancel: cancel, at: now)
    }

    func finish() {}

    private func contains(_ line: [UInt8], _ mark: [UInt8]) -> Bool {
        for start in 0...(line.count - mark.count) where line[start] == mark[0] {
            if line[start..<(start + mark.count)].elementsEqual(mark) { return true }
        }
        return false
    }
}

/// `submit SALE --file`, then `process SALE`: the durable queue, decided in FIFO order.
final class QueuePath: RehearsalPath {
    private let setting: RehearsalSetting

    init(_ setting: RehearsalSetting) {
        self.setting = setting
    }

    func book(_ requests: ArraySlice<CrowdRequest>, at now: Instant, wave: String,
              progress: (Int, Int) -> Void) throws -> WaveTiming {
        let input = try setting.requestFile(requests, name: wave)
        defer { close(input) }
        let children = setting.children
        // From before the submit, as the stream's from before its child: the queue's path is
        // both (found by probing: its rate was process's alone, ten times the stream's).
        let started = MonotonicClock.nanoseconds()
        // A lock held past the busy timeout is waited out, as `book --stream` waits it out
        // (found by probing: the queue's path ended with exit 75 where the stream's went on).
        let submitLog = "submit \(wave)"
        let submitted = try children.againWhileBusy {
            lseek(input, 0, SEEK_SET)
            let pid = try children.start(setting.databaseOptions + ["submit", setting.sale.text, "--file", "-"], now: now,
                                         input: input, log: submitLog)
            return children.wait(pid) ?? 1
        }
        try children.check(submitted, log: submitLog)
        let before = try setting.engine.status(setting.sale, clock: now).sale.counters.available
        let log = "process \(wave)"
        let processed = try children.againWhileBusy {
            let pid = try children.start(setting.databaseOptions + ["process", setting.sale.text], now: now, log: log)
            // The queue's length and the stock, as another process reads them while it works.
            while true {
                let status = children.wait(pid, block: false)
                if status == nil { usleep(50_000) }
                let sale = try setting.engine.status(setting.sale, clock: now)
                progress(requests.count - Int(sale.queued), Int(before - sale.sale.counters.available))
                if let status { return status }
            }
        }
        try children.check(processed, log: log)
        return WaveTiming(decided: requests.count, seconds: Double(MonotonicClock.nanoseconds() - started) / 1e9,
                          latencies: nil)
    }

    func settle(confirm: [Booking], cancel: [Booking], at now: Instant) throws {
        try setting.settleInProcess(confirm: confirm, cancel: cancel, at: now)
    }

    func finish() {}
}
