import FlashSaleCore
import Glibc

/// The POSIX locks that processes hold on a few files, as the kernel lists them in
/// /proc/locks, so that the holders of two files are seen at nearly one moment. Asked of
/// each file's descriptor in turn, a process closing between the two looks had let go of
/// both (the index first, then the file), and looked like the holder of an index without
/// its file (found by CI: a `submit` refused on a database sixteen processes shared).
/// Only what is listed is read: no file is opened, so no lock of this process is dropped.
struct LockHolders {
    private struct Lock {
        let file: FileIdentity
        let process: pid_t
        let first: off_t
        /// The last byte locked, `off_t.max` for "to the end of the file" (EOF).
        let last: off_t
    }

    private let locks: [Lock]

    /// The locks held now on `files`; nil when the list cannot be read (no /proc).
    ///
    /// One read(2) of /proc/locks is one moment of the list, but it returns a page at most,
    /// and between two the kernel lets the list change: a lock held all along can be left
    /// out when those before it go (found by review, with 10,000 locks on the machine and
    /// others taken and let go). A list longer than a read is therefore read twice, and a
    /// lock in either counts.
    static func now(on files: [FileIdentity]) -> LockHolders? {
        guard let (text, whole) = listing() else { return nil }
        var listings = [text]
        if !whole {
            guard let (again, _) = listing() else { return nil }
            listings.append(again)
        }
        let inodes = Set(files.map(\.inode))
        return LockHolders(locks: listings.flatMap { listing in
            listing.split(separator: UInt8(ascii: "\n")).compactMap { lock($0, onOneOf: inodes) }.filter { files.contains($0.file) }
        })
    }

    /// /proc/locks' text, and whether one read(2) returned it all (one moment of the list).
    private static func listing() -> ([UInt8], Bool)? {
        let descriptor = open("/proc/locks", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        var reads = 0
        while true {
            let count = read(descriptor, &chunk, chunk.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return (text, reads <= 1) }
            reads += 1
            text += chunk[..<count]
        }
    }

    /// The processes other than this one that hold a lock on `file`, on `byte` of it when
    /// given (anywhere in it otherwise).
    func others(holding file: FileIdentity, byte: off_t? = nil) -> Set<pid_t> {
        let own = getpid()
        return Set(locks.lazy.filter { lock in
            lock.file == file && lock.process != own && byte.map { lock.first <= $0 && $0 <= lock.last } ?? true
        }.map(\.process))
    }

    /// A held lock of a line such as "2: POSIX  ADVISORY  READ 18811 fe:00:6841377 1073741826 1073742335"
    /// on a file with one of `inodes`; nil for any other file, a lock waited for ("2: ->
    /// POSIX ..."), one of another kind (OFD locks have no process), or a line that cannot
    /// be read. Read as bytes, the inode first: a machine can hold thousands of locks, and
    /// every `book` reads them (found by review: 10,000 lines parsed as Strings took a `book` about 10 ms).
    private static func lock(_ line: ArraySlice<UInt8>, onOneOf inodes: Set<UInt>) -> Lock? {
        let fields = line.split(separator: UInt8(ascii: " "))
        guard fields.count == 8, fields[1].elementsEqual("POSIX".utf8) else { return nil }
        let file = fields[5].split(separator: UInt8(ascii: ":"))
        guard file.count == 3, let inode = UInt64(ascii: file[2]).flatMap(UInt.init(exactly:)), inodes.contains(inode),
              let major = UInt64(ascii: file[0], radix: 16).flatMap(UInt.init(exactly:)),
              let minor = UInt64(ascii: file[1], radix: 16).flatMap(UInt.init(exactly:)),
              let process = UInt64(ascii: fields[4]).flatMap(pid_t.init(exactly:)), process > 0,
              let first = UInt64(ascii: fields[6]).flatMap(off_t.init(exactly:)),
              let last = fields[7].elementsEqual("EOF".utf8) ? off_t.max : UInt64(ascii: fields[7]).flatMap(off_t.init(exactly:))
        else { return nil }
        return Lock(file: FileIdentity(device: LockHolders.device(major: major, minor: minor), inode: inode),
                    process: process, first: first, last: last)
    }

    /// `st_dev` of a device's numbers, as glibc's `makedev` makes it.
    private static func device(major: UInt, minor: UInt) -> UInt {
        (major & 0xfff) << 8 | (major & ~0xfff) << 32 | (minor & 0xff) | (minor & ~0xff) << 12
    }
}
