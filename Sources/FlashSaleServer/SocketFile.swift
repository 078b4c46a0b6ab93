import FlashSaleCLI
import FlashSaleCore
import Glibc
import NIOConcurrencyHelpers

/// The Unix socket file serve's `--socket` names, which serve alone removes when it stops,
/// and only while it is still its own.
///
/// NIO removes the path a server socket was bound to when the socket closes, whatever file
/// is there by then: a server whose socket file was deleted while it ran, and taken by a
/// second server, removed the second's on stopping, leaving it unreachable (found by
/// probing). So the socket is bound under a name of its own beside `path`, which NIO then
/// finds gone, and renamed to `path` once it listens; the file at `path` is removed on
/// stopping only if it is still the one renamed there.
final class SocketFile: Sendable {
    let path: String
    /// Where the socket is bound: a name of the process's own in the same directory, or
    /// `path` itself when that name would be longer than NIO takes (103 bytes, which
    /// `--socket` checks of `path`), where NIO's removal stays. Not `sun_path`'s 108: a
    /// name of 104 to 107 bytes failed the start, for paths whose length with the pid's
    /// digits came to that (found by probing).
    let boundPath: String
    /// The file renamed to `path` (device and inode), once it is there.
    private let published = NIOLockedValueBox<(dev_t, ino_t)?>(nil)

    init(path: String) {
        self.path = path
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        let own = path[..<slash] + "." + path[slash...] + ".\(getpid())"
        boundPath = own.utf8.count <= ServeCommand.maximumSocketPathBytes ? String(own) : path
    }

    /// A socket file left by a server that is gone would make the bind fail, and is
    /// removed. One a server still listens on is refused, as a TCP address in use is:
    /// removing it left that server running with no way to reach it. Anything else at the
    /// path is the operator's.
    func removeStale() throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw FlashSaleError.cantOpen("cannot listen on \(path): it is there and is not a socket")
        }
        guard !Self.isListenedOn(path) else {
            throw FlashSaleError.cantOpen("cannot listen on \(path): a server listens on it already")
        }
        unlink(path)
    }

    /// Once the socket listens: open to its group (created with the process's umask, 0077;
    /// a gateway in the group must reach it) and at `path`.
    func publish() {
        chmod(boundPath, 0o660)
        guard boundPath != path, rename(boundPath, path) == 0 else { return }
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        published.withLockedValue { $0 = (status.st_dev, status.st_ino) }
    }

    /// Removes the file at `path` if it is still the one `publish` put there.
    func remove() {
        guard let (device, inode) = published.withLockedValue({ $0 }) else { return }
        var status = stat()
        guard lstat(path, &status) == 0, status.st_dev == device, status.st_ino == inode else { return }
        unlink(path)
    }

    /// Whether a server takes connections on the socket at `path`: one is accepted, or its
    /// queue is full (without waiting for room in it).
    private static func isListenedOn(_ path: String) -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 || errno == EAGAIN
            }
        }
    }
}
