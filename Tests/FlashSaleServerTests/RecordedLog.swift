import Logging
import NIOConcurrencyHelpers

/// What a logger was told, a line each: level, message, then metadata sorted by key.
final class RecordedLog: Sendable {
    private let recorded = NIOLockedValueBox<[String]>([])

    var lines: [String] { recorded.withLockedValue { $0 } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(log: self) }
    }

    private struct Handler: LogHandler {
        let log: RecordedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            let fields = all.keys.sorted().map { "\($0)=\(all[$0]!)" }
            let line = (["\(event.level) \(event.message)"] + fields).joined(separator: " ")
            log.recorded.withLockedValue { $0.append(line) }
        }
    }
}
