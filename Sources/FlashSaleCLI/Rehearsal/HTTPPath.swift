import FlashSaleCore
import Glibc

/// One HTTP request a rehearsal sends to `serve`.
package struct HTTPCall: Sendable {
    package let method: String
    package let path: String
    package let headers: [(String, String)]
    package let body: String?
}

/// A wave's calls, each made when it is sent: a wave can be half the crowd.
package struct HTTPCalls: Sendable {
    package let count: Int
    private let make: @Sendable (Int) -> HTTPCall

    init(count: Int, _ make: @escaping @Sendable (Int) -> HTTPCall) {
        self.count = count
        self.make = make
    }

    init(_ calls: [HTTPCall]) {
        self.init(count: calls.count) { calls[$0] }
    }

    package subscript(index: Int) -> HTTPCall { make(index) }
}

/// Its answer's status, and the time from sending it to the end of the answer.
package struct HTTPCallResult: Sendable {
    package let status: Int
    package let seconds: Double
    /// A 5xx answer's error (http.md's `{"error": {"code": ..., "message": ...}}`).
    package let failure: (code: String, message: String)?

    package init(status: Int, seconds: Double, failure: (code: String, message: String)? = nil) {
        self.status = status
        self.seconds = seconds
        self.failure = failure
    }
}

/// Sends every call to 127.0.0.1:`port` over `connections` keep-alive connections, each
/// taking the next call when its last is answered; answers in the calls' order. `watch`
/// runs on the caller's thread every 100 ms with the count answered. SwiftNIO's client, so
/// only `flashsale-serve` has one; in `flashsale` this is nil.
package typealias HTTPExchange = @Sendable (_ port: Int, _ calls: HTTPCalls, _ connections: Int,
                                            _ watch: (Int) -> Void) throws -> [HTTPCallResult]

/// `serve` on loopback, started anew for each clock the rehearsal moves to (its clock is
/// FLASHSALE_NOW's, fixed at start-up), driven over HTTP with header authentication and
/// the crowd's addresses in X-Forwarded-For from a trusted 127.0.0.1.
final class HTTPPath: RehearsalPath {
    static let userHeader = "X-Rehearsal-User"
    static let connections = 64
    private let setting: RehearsalSetting
    private let exchange: HTTPExchange
    private var server: (pid: pid_t, port: Int, now: Instant)?
    private var starts = 0

    init(_ setting: RehearsalSetting, exchange: @escaping HTTPExchange) {
        self.setting = setting
        self.exchange = exchange
    }

    func book(_ requests: ArraySlice<CrowdRequest>, at now: Instant, wave: String,
              progress: (Int, Int) -> Void) throws -> WaveTiming {
        // From before serve's start, as the stream's path times its child's (found by
        // probing: the rate left out a second of start-ups in a run, which the man page
        // says it counts).
        let started = MonotonicClock.nanoseconds()
        let port = try serve(at: now)
        let path = "/booking-service/book-item/\(setting.sale.text)"
        let calls = HTTPCalls(count: requests.count) { index in
            let request = requests[requests.startIndex + index]
            return HTTPCall(method: "POST", path: path,
                            headers: [(HTTPPath.userHeader, request.user), ("X-Forwarded-For", request.ip), ("User-Agent", request.userAgent)],
                            body: nil)
        }
        let before = try setting.engine.status(setting.sale, clock: now).sale.counters.available
        // The holds as another process reads them while serve works, as the queue's path
        // shows them (found by probing: the line showed the whole stock left till the end).
        let answers = try exchangeWaitingOutLocks(port, calls) { answered in
            let available = (try? setting.engine.status(setting.sale, clock: now).sale.counters.available) ?? before
            progress(answered, Int(before - available))
        }
        let seconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
        try check(answers, allowed: [201, 403, 409, 410])
        progress(answers.count, answers.count { $0.status == 201 })
        return WaveTiming(decided: answers.count, seconds: seconds, latencies: answers.map(\.seconds))
    }

    func settle(confirm: [Booking], cancel: [Booking], at now: Instant) throws {
        let port = try serve(at: now)
        let base = "/booking-service/book-item/\(setting.sale.text)/"
        let json = [("Content-Type", "application/json")]
        let calls = confirm.map { HTTPCall(method: "PUT", path: base + $0.id.text, headers: [(HTTPPath.userHeader, $0.user.text)] + json,
                                           body: "{\"status\":\"booked\"}") }
            + cancel.map { HTTPCall(method: "DELETE", path: base + $0.id.text, headers: [(HTTPPath.userHeader, $0.user.text)], body: nil) }
        try check(try exchangeWaitingOutLocks(port, HTTPCalls(calls)) { _ in }, allowed: [200])
    }

    /// The exchange, with the calls serve answered 503 busy (a lock another process held
    /// past --busy-timeout: nothing of them was done) sent again until none is, as the
    /// queue's path runs its children again (found by probing: it ended the rehearsal, 75).
    /// A call's time is its attempts' and the pauses between them together; the count
    /// `watch` is told never goes back (the first round counted the busy answers too).
    private func exchangeWaitingOutLocks(_ port: Int, _ calls: HTTPCalls, watch: (Int) -> Void) throws -> [HTTPCallResult] {
        var shown = 0
        func watchForward(_ answered: Int) {
            shown = max(shown, answered)
            watch(shown)
        }
        var answers = try exchange(port, calls, HTTPPath.connections, watchForward)
        while true {
            let busy = answers.indices.filter { answers[$0].status == 503 && answers[$0].failure?.code == ErrorCode.busy.rawValue }
            guard !busy.isEmpty else { return answers }
            RehearsalChildren.pauseWhileBusy()
            let again = try exchange(port, HTTPCalls(count: busy.count) { calls[busy[$0]] }, HTTPPath.connections) { watchForward(calls.count - busy.count + $0) }
            for (index, answer) in zip(busy, again) {
                answers[index] = HTTPCallResult(status: answer.status, seconds: answers[index].seconds + RehearsalChildren.busyPause + answer.seconds,
                                                failure: answer.failure)
            }
        }
    }

    func finish() throws {
        try stopServer()
    }

    /// Any answer a buyer's request may get in a sale: a hold, or a decline. Anything else
    /// is the server failing, which the rehearsal reports rather than counts.
    private func check(_ answers: [HTTPCallResult], allowed: Set<Int>) throws {
        if let odd = answers.first(where: { !allowed.contains($0.status) }) {
            // serve's code says which: a database that could not be written, a full disk,
            // is 74 as on the command line (found by probing: every 503 was 75, busy, which
            // is waited out). Its log goes with the scratch files, so its words are quoted here.
            let code = odd.failure.flatMap { ErrorCode(rawValue: $0.code) }.flatMap { $0 == .io ? $0 : nil }
            throw FlashSaleError(code ?? .internalFailure,
                                 "rehearse: serve answered \(odd.status) to a request" + (odd.failure.map { " (\($0.code)): \($0.message)" } ?? ""))
        }
    }

    private var logName: String { "serve \(starts)" }

    /// The port of a server whose clock is `now`, started if need be.
    private func serve(at now: Instant) throws -> Int {
        if let server, server.now == now { return server.port }
        try stopServer()
        // A port another process takes between the look and the bind fails the start: try others.
        for _ in 0..<5 {
            starts += 1
            let (port, admin) = try twoFreePorts()
            let pid = try setting.children.start(
                setting.databaseOptions + ["serve", "--listen", "127.0.0.1:\(port)", "--admin-listen", "127.0.0.1:\(admin)",
                 "--auth", "header", "--user-header", HTTPPath.userHeader, "--trusted-proxy", "127.0.0.1",
                 "--sale", setting.sale.text],
                now: now, log: logName)
            let deadline = MonotonicClock.nanoseconds() + 20_000_000_000
            while MonotonicClock.nanoseconds() < deadline {
                if let status = setting.children.wait(pid, block: false) {
                    if status == 73, lastLogMentions("in use") { break }
                    try setting.children.check(status == 0 ? 1 : status, log: logName)
                }
                if accepts(port) {
                    server = (pid, port, now)
                    return port
                }
                usleep(10_000)
            }
            if setting.children.wait(pid, block: false) == nil {
                setting.children.send(SIGKILL, to: pid)
                _ = setting.children.wait(pid)
                throw FlashSaleError.cantOpen("rehearse: serve did not accept connections within 20 s; its log is in \(setting.children.logPath(logName))")
            }
        }
        throw FlashSaleError.cantOpen("rehearse: no free loopback port for serve after 5 tries")
    }

    private func stopServer() throws {
        guard let running = server else { return }
        server = nil
        setting.children.send(SIGTERM, to: running.pid)
        try setting.children.check(setting.children.wait(running.pid) ?? 1, log: logName)
    }

    private func lastLogMentions(_ text: String) -> Bool {
        let descriptor = open(setting.children.logPath(logName), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = read(descriptor, &buffer, buffer.count)
        return count > 0 && String(decoding: buffer[..<count], as: UTF8.self).contains(text)
    }

    /// Two ports the kernel had free a moment ago, for the buyers' and the admin listener:
    /// both held at once while they are chosen, so that they differ. One after the other,
    /// the kernel may give the same port twice (about once in 28,000 here), and serve
    /// refuses an admin listener on its buyers' address: the rehearsal ended with 2.
    private func twoFreePorts() throws -> (Int, Int) {
        let first = try boundSocket()
        defer { close(first.descriptor) }
        let second = try boundSocket()
        defer { close(second.descriptor) }
        return (first.port, second.port)
    }

    /// A socket bound to a port of 127.0.0.1 that the kernel chose.
    private func boundSocket() throws -> (descriptor: Int32, port: Int) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw FlashSaleError.cantOpen("rehearse: cannot open a socket: \(String(cString: strerror(errno)))") }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw FlashSaleError.cantOpen("rehearse: cannot find a free loopback port: \(reason)")
        }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    private func accepts(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    private func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }
}
