import Foundation
import Glibc

/// Whether this process may mount a read-only view of a directory: root, with mount(8),
/// where the machine allows it (a container may not).
public let readOnlyViewsCanBeMounted: Bool = {
    guard runningAsRoot, installed("mount") != nil, let view = try? ReadOnlyView(of: NSTemporaryDirectory()) else { return false }
    view.unmount()
    return true
}()

/// A read-only bind mount of a directory at a new temporary directory: a read-only file
/// system holding the directory's files, for as long as the test needs it.
public struct ReadOnlyView {
    public let path: String

    public init(of directory: String) throws {
        var template = Array((NSTemporaryDirectory() + "/flashsale-read-only-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        path = String(cString: made)
        guard Self.mount(["--bind", directory, path]) else {
            rmdir(path)
            throw POSIXError(.EPERM)
        }
        // A bind mount takes the read-only flag only when mounted again (mount(8)).
        guard Self.mount(["-o", "remount,bind,ro", path]) else {
            unmount()
            throw POSIXError(.EPERM)
        }
    }

    public func unmount() {
        _ = Self.run("umount", [path])
        rmdir(path)
    }

    private static func mount(_ arguments: [String]) -> Bool {
        run("mount", arguments)
    }

    private static func run(_ name: String, _ arguments: [String]) -> Bool {
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        guard let executable = installed(name),
              let child = try? ChildProcess(executable, arguments, environment: [:], stdin: null, stdout: null, stderr: null)
        else { return false }
        return child.wait() == .exit(0)
    }
}
