import Foundation
import Glibc

/// A TCP proxy on 127.0.0.1 to a PostgreSQL server (without TLS) that loses one COMMIT, the
/// first sent after a statement holding `marker`, as `Cut` says. No COMMIT is cut while
/// `disarmed`. Every other connection and message passes through as it came: at once,
/// or `trickling` (16 KiB every 100 ms, a slow link), or not while `stalled` (a server
/// gone quiet), which holds the server's answers back until it is unset.
public final class CommitCuttingProxy: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let marker: [UInt8]
    private let cutting: Cut
    private let trickles: Bool
    private var stalledNow = false
    private var disarmedNow = false
    private var accepted = 0
    private let state = NSLock()
    private var cutDone = false
    private var withheld: [Connection] = []

    /// Whether a COMMIT's answer has been lost.
    public var cut: Bool { state.withLock { cutDone } }

    /// Connections accepted so far.
    public var connections: Int { state.withLock { accepted } }

    public var stalled: Bool {
        get { state.withLock { stalledNow } }
        set { state.withLock { stalledNow = newValue } }
    }

    public var disarmed: Bool {
        get { state.withLock { disarmedNow } }
        set { state.withLock { disarmedNow = newValue } }
    }

    /// How the COMMIT is lost.
    public enum Cut: CaseIterable, Sendable {
        /// It is passed on, and the server's answer waited for (so that the transaction
        /// stands); instead of passing that on, the connection closes on both sides, as a
        /// network that fails at that moment would.
        case closingTheConnection
        /// As above, but the connection is kept open and nothing more passed on, as a
        /// stuck proxy would.
        case keepingTheConnection
        /// It is never passed on: the client's side closes once the rest is answered, and
        /// the server's is kept open, as a network that failed on the way would; the
        /// transaction stays open on the server.
        case withholdingTheCommit
        /// As above, from the transaction's last write, which asks for its id (found by
        /// probing: both are sent together, and a failed network loses both).
        case withholdingTheLastWrite
    }

    public init(to serverPort: Int, cuttingTheCommitAfter marker: String, _ cutting: Cut = .closingTheConnection,
         trickling: Bool = false) throws {
        self.marker = Array(marker.utf8)
        self.cutting = cutting
        trickles = trickling
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 16) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else {
            close(listener)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread { [self] in accepting(serverPort: serverPort) }.start()
    }

    /// Closes the server's side of a connection whose COMMIT was withheld: its transaction,
    /// if still open, rolls back and lets go of its locks (the sandbox's schema is dropped
    /// after the test).
    public func endWithheldTransactions() {
        for connection in state.withLock({ withheld }) { connection.endServerSide() }
    }

    deinit {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func accepting(serverPort: Int) {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            state.withLock { accepted += 1 }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: serverPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            guard connected else {
                close(client)
                close(server)
                continue
            }
            let connection = Connection(client: client, server: server)
            Thread { [self] in forwardRequests(connection) }.start()
            Thread { [self] in forwardAnswers(connection) }.start()
        }
    }

    /// One proxied connection: whether its COMMIT to cut has been sent, or withheld.
    private final class Connection: @unchecked Sendable {
        let client: Int32
        let server: Int32
        private let lock = NSLock()
        private var sent = false
        private var withheld = false
        // Messages passed on that the server answers with a ReadyForQuery (Sync, Query),
        // and those answers: the start-up has one more.
        private var asked = 0
        private var readied = 0

        init(client: Int32, server: Int32) {
            self.client = client
            self.server = server
        }

        var commitSent: Bool {
            get { lock.withLock { sent } }
            set { lock.withLock { sent = newValue } }
        }

        func passedOn(_ message: [UInt8]) {
            guard message.first == UInt8(ascii: "S") || message.first == UInt8(ascii: "Q") else { return }
            lock.withLock { asked += 1 }
        }

        func ready() {
            lock.withLock { readied += 1 }
            closeClientIfAnswered()
        }

        /// The COMMIT is not passed on, and nothing after it: the client's side closes once
        /// all before it is answered. The end of the requests' direction.
        func withhold() {
            lock.withLock {
                withheld = true
                pumpsEnded += 1
            }
            closeClientIfAnswered()
        }

        private func closeClientIfAnswered() {
            if lock.withLock({ withheld && readied == asked + 1 }) { shutdown(client, Int32(SHUT_RDWR)) }
        }

        private var pumpsEnded = 0
        private var closed = false

        /// Ends both sides (the client's alone once a COMMIT was withheld); the second of
        /// the two directions to end closes them.
        func end() {
            shutdown(client, Int32(SHUT_RDWR))
            if !lock.withLock({ withheld }) { shutdown(server, Int32(SHUT_RDWR)) }
            lock.withLock {
                pumpsEnded += 1
                guard pumpsEnded == 2 else { return }
                close(client)
                close(server)
                closed = true
            }
        }

        /// Shuts the server's side, unless both are closed already: their descriptors'
        /// numbers may be another connection's by now (found by review).
        func endServerSide() {
            lock.withLock {
                if !closed { shutdown(server, Int32(SHUT_RDWR)) }
            }
        }
    }

    /// Client to server, message by message (the start-up message has no type byte): a
    /// query (`Parse` or `Query`) holding the marker arms the cut, and the next COMMIT is
    /// the one whose answer is lost, or that is withheld with all after it.
    private func forwardRequests(_ connection: Connection) {
        var messages = Messages(typed: false)
        var armed = false
        reading: while let chunk = receive(connection.client) {
            var passing: [UInt8] = []
            for message in messages.add(chunk) {
                if let query = Self.query(of: message) {
                    if query.firstRange(of: marker) != nil, !cut, !disarmed { armed = true }
                    let withheldFromHere = cutting == .withholdingTheLastWrite
                        ? query.firstRange(of: Array("pg_current_xact_id".utf8)) != nil
                        : query == Array("COMMIT".utf8)
                    if armed, withheldFromHere || query == Array("COMMIT".utf8) {
                        armed = false
                        if state.withLock({ defer { cutDone = true }; return !cutDone }) {
                            if cutting == .withholdingTheCommit || cutting == .withholdingTheLastWrite {
                                guard sendAll(passing, to: connection.server) else { break reading }
                                state.withLock { withheld.append(connection) }
                                return connection.withhold()
                            }
                            connection.commitSent = true
                        }
                    }
                }
                connection.passedOn(message)
                passing += message
            }
            guard sendAll(passing, to: connection.server) else { break }
        }
        connection.end()
    }

    /// Server to client, message by message: once the COMMIT to cut was sent, its answer
    /// (`CommandComplete` "COMMIT") ends the connection instead of passing on, or is the
    /// first of the answers dropped from then on.
    private func forwardAnswers(_ connection: Connection) {
        var messages = Messages(typed: true)
        var muted = false
        var sentSincePause = 0
        while let chunk = receive(connection.server) {
            for message in messages.add(chunk) where !muted {
                if connection.commitSent, message.first == UInt8(ascii: "C"), message.dropFirst(5).starts(with: Array("COMMIT".utf8)) {
                    guard cutting == .keepingTheConnection else { return connection.end() }
                    muted = true
                    continue
                }
                while stalled { usleep(10_000) }
                guard sendAll(message, to: connection.client) else { return connection.end() }
                if message.first == UInt8(ascii: "Z") { connection.ready() }
                sentSincePause += message.count
                if trickles, sentSincePause >= 16_384 {
                    usleep(100_000)
                    sentSincePause = 0
                }
            }
        }
        connection.end()
    }


    /// The SQL of a `Parse` (name, then query) or a `Query` message.
    private static func query(of message: [UInt8]) -> [UInt8]? {
        switch message.first {
        case UInt8(ascii: "P"):
            let body = message.dropFirst(5)
            guard let nameEnd = body.firstIndex(of: 0) else { return nil }
            return Array(body[(nameEnd + 1)...].prefix { $0 != 0 })
        case UInt8(ascii: "Q"):
            return Array(message.dropFirst(5).prefix { $0 != 0 })
        default:
            return nil
        }
    }

    /// The protocol's framing: a type byte (but for the start-up message) and a length
    /// that counts itself.
    private struct Messages {
        var typed: Bool
        var buffer: [UInt8] = []

        mutating func add(_ bytes: [UInt8]) -> [[UInt8]] {
            buffer += bytes
            var whole: [[UInt8]] = []
            while true {
                let head = typed ? 1 : 0
                guard buffer.count >= head + 4 else { break }
                let length = buffer[head..<head + 4].reduce(0) { $0 << 8 | Int($1) }
                guard buffer.count >= head + length else { break }
                whole.append(Array(buffer[..<(head + length)]))
                buffer.removeFirst(head + length)
                typed = true
            }
            return whole
        }
    }

    private func receive(_ descriptor: Int32) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: 65_536)
        let count = recv(descriptor, &bytes, bytes.count, 0)
        return count > 0 ? Array(bytes[..<count]) : nil
    }

    private func sendAll(_ bytes: [UInt8], to descriptor: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return false }
            offset += count
        }
        return true
    }
}
