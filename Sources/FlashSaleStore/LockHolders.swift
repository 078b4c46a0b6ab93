import Glibc

/// The POSIX locks of every process, as the kernel lists them in /proc/locks: read in one
/// go, so that the holders of two files are seen at nearly one moment. Asked of each
/// file's descriptor in turn, a process closing between the two looks had let go of both
/// (the index first, then the file), and looked like the holder of an index without its
/// file (found by CI: a `submit` refused on a database sixteen processes shared). Only
/// what is listed is read: no file is opened, so no lock of this process is dropped.
struct LockHolders {
    private struct Lock {
        let file: FileIdentity
        let process: pid_t
        let first: off_t
        /// The last byte locked, `off_t.max` for "to the end of the file" (EOF).
        let last: off_t
    }

    private let locks: [Lock]

    /// The locks held now; nil when the list cannot be read (no /proc).
    static func now() -> LockHolders? {
        let descriptor = open("/proc/locks", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(descriptor, &chunk, chunk.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            text += chunk[..<count]
        }
        return LockHolders(locks: text.split(separator: UInt8(ascii: "\n")).compactMap(LockHolders.lock))
    }

    /// The processes other than this one that hold a lock on `file`, on `byte` of it when
    /// given (anywhere in it otherwise).
    func others(holding file: FileIdentity, byte: off_t? = nil) -> Set<pid_t> {
        let own = getpid()
        return Set(locks.lazy.filter { lock in
            lock.file == file && lock.process != own && byte.map { lock.first <= $0 && $0 <= lock.last } ?? true
        }.map(\.process))
    }

    /// A held lock of a line such as "2: POSIX  ADVISORY  READ 18811 fe:00:6841377 1073741826 1073742335";
    /// nil for a lock waited for ("2: -> POSIX ..."), one of another kind (OFD locks have no
    /// process), or a line that cannot be read.
    private static func lock(_ line: ArraySlice<UInt8>) -> Lock? {
        let fields = line.split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
        guard fields.count == 8, fields[1] == "POSIX", let process = pid_t(fields[4]), process > 0 else { return nil }
        let file = fields[5].split(separator: ":")
        guard file.count == 3, let major = UInt(file[0], radix: 16), let minor = UInt(file[1], radix: 16), let inode = UInt(file[2]),
              let first = off_t(fields[6]), let last = fields[7] == "EOF" ? off_t.max : off_t(fields[7]) else { return nil }
        return Lock(file: FileIdentity(device: LockHolders.device(major: major, minor: minor), inode: inode),
                    process: process, first: first, last: last)
    }

    /// `st_dev` of a device's numbers, as glibc's `makedev` makes it.
    private static func device(major: UInt, minor: UInt) -> UInt {
        (major & 0xfff) << 8 | (major & ~0xfff) << 32 | (minor & 0xff) | (minor & ~0xff) << 12
    }
}
