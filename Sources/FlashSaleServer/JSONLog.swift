import FlashSaleCLI
import FlashSaleCore
import Glibc
import Logging
import NIOConcurrencyHelpers

/// swift-log's handler for `serve`: one JSON object per line on stderr (`time`, `level`,
/// `message`, then the metadata: for a request `request_id`, `method`, `route`, `status`,
/// `duration_ms`). Lines are gathered and written by a thread of their own, so a
/// request never waits for the terminal or the journal.
struct JSONLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let output: LogOutput

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [(String, JSON)] = [
            ("time", .string(SystemClock().now().description)), ("level", .string(event.level.rawValue)),
            ("message", .string(event.message.description)),
        ]
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in all.keys.sorted() {
            guard let value = all[key] else { continue }
            fields.append((key, JSONLogHandler.json(value)))
        }
        output.append(JSON.object(fields).serialized + "\n")
    }

    private static func json(_ value: Logger.Metadata.Value) -> JSON {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let value):
            value is any BinaryInteger || value is Double ? .number(value.description) : .string(value.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let values): .object(values.keys.sorted().map { ($0, json(values[$0]!)) })
        }
    }
}

/// Log lines waiting for the writer thread; it writes them every few milliseconds.
final class LogOutput: Sendable {
    private let pending = NIOLockedValueBox<[UInt8]>([])
    private let wake = ConditionLock(value: false)
    private let stopped = NIOLockedValueBox(false)
    private let finished = ConditionLock(value: false)

    func append(_ line: String) {
        pending.withLockedValue { $0.append(contentsOf: line.utf8) }
    }

    func append(_ line: UTF8Text) {
        pending.withLockedValue { $0 += line.bytes }
    }

    func start() {
        DedicatedThread.start { [self] in
            while !stopped.withLockedValue({ $0 }) {
                // Woken, or the time is up (then the lock is not held).
                if wake.lock(whenValue: true, timeoutSeconds: 0.05) { wake.unlock(withValue: false) }
                flush()
            }
            flush()
            finished.lock()
            finished.unlock(withValue: true)
        }
    }

    /// Writes what is left and stops the thread.
    func stop() {
        stopped.withLockedValue { $0 = true }
        wake.lock()
        wake.unlock(withValue: true)
        finished.lock(whenValue: true)
        finished.unlock()
    }

    private func flush() {
        let text = pending.withLockedValue { pending in
            defer { pending = [] }
            return pending
        }
        guard !text.isEmpty else { return }
        text.withUnsafeBufferPointer { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0, errno == EINTR { continue }
                // Nowhere to say it: a log that cannot be written is dropped, the sale goes on.
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}
