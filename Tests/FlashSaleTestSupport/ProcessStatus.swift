import Foundation
import Glibc

/// A process as `/proc/PID/stat` shows it: what tests read to find a child among the
/// machine's processes, or to wait until one has stopped or ended.
public struct ProcessStatus: Sendable {
    public let pid: pid_t
    /// Its command's name (at most 15 bytes), as `ps -o comm` shows it.
    public let name: String
    /// proc(5)'s one letter: R running, S sleeping, T stopped, t traced, Z ended and not
    /// yet reaped, and so on.
    public let state: Character
    public let parent: pid_t

    /// `pid`'s status, or nil once it is gone (reaped) or was never there.
    public init?(of pid: pid_t) {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        self.init(pid: pid, stat: stat)
    }

    /// "pid (comm) state ppid …": the name may hold spaces and parentheses, so the fields
    /// are counted from its last ")".
    init?(pid: pid_t, stat: String) {
        guard let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")"), open < close else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1, let state = fields[0].first, let parent = pid_t(fields[1]) else { return nil }
        self.pid = pid
        self.name = String(stat[stat.index(after: open)..<close])
        self.state = state
        self.parent = parent
    }

    /// Every process this one can see.
    public static func all() -> [ProcessStatus] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0).flatMap(ProcessStatus.init(of:)) }
    }

    /// Stopped by a signal, or by a tracer.
    public var isStopped: Bool { state == "T" || state == "t" }

    /// Still running: one that has ended is a zombie until its parent reaps it, which no
    /// one does for an orphan in some containers.
    public var isRunning: Bool { state != "Z" }

    /// Its command line, split at its NULs; empty once it has ended.
    public var arguments: [String] {
        let line = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return line.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }
}
