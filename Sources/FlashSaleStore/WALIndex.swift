import Glibc

/// The WAL index (`FILE-shm`) that every SQLite connection to a database shares, whatever
/// its process, seen through its locks and its header (both part of the file format:
/// https://sqlite.org/walformat.html): each connection holds a read lock on the index's
/// "dead man's switch" byte for as long as it has the database open.
enum WALIndex {
    /// The byte of the index every process that has it open holds a read lock on.
    static let deadMansSwitch: off_t = 128

    /// Where the header's fields are: its first copy (48 bytes), and in it whether it was
    /// made and the WAL's last valid frame; then the second copy, then the checkpoint's
    /// frames copied into the file.
    private enum Header {
        static let copySize = 48
        static let isInit = 12
        static let lastFrame = 16
        static let framesCopied = 96
    }

    /// Whether a process other than this one has the WAL index of the database at `path`
    /// open: one that opened the file now at that name, say, which shares the WAL left
    /// there. Asked through this process's own descriptor of the index (SQLite's): one
    /// opened and closed here would drop every lock this process holds on the file
    /// (POSIX), SQLite's among them. False when there is no index by that name (removed
    /// with the file: nobody shares the WAL through it, and the next to open the name
    /// would make one and replay the WAL, found by probing); true when this process has
    /// no descriptor of the one there: not known, so not assumed free.
    static func isOpenElsewhere(database path: String) -> Bool {
        var index = stat()
        guard stat(path + "-shm", &index) == 0 else { return errno != ENOENT }
        guard let descriptor = descriptor(of: index) else { return true }
        return isOpenElsewhere(index: descriptor)
    }

    /// Whether a process other than this one has open the WAL index this process has open
    /// through `descriptor` (true when that cannot be told: not assumed free).
    static func isOpenElsewhere(index descriptor: Int32) -> Bool {
        isLockedElsewhere(descriptor, from: deadMansSwitch, length: 1)
    }

    /// Whether any process has open the WAL index at `path`, one this process never opened:
    /// opened here to look, and closed, which drops no lock of this process's (it holds none
    /// on that file). False when there is none.
    static func isOpen(_ path: String) -> Bool {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard descriptor >= 0 else { return errno != ENOENT }
        defer { close(descriptor) }
        return isOpenElsewhere(index: descriptor)
    }

    /// Whether every frame of the WAL that the index open through `descriptor` describes
    /// has been copied into the database file: the checkpoint's count of frames copied
    /// (`nBackfill`, stored only once the file is synced) has reached the last frame
    /// (`mxFrame`), both in the machine's byte order. False when the header cannot be read
    /// or its two copies differ (a commit under way): not assumed copied. Unlike SQLite,
    /// this does not check the header's checksum: two equal copies are taken as written
    /// whole, since a writer changes them one after the other.
    static func isCopiedIntoFile(index descriptor: Int32) -> Bool {
        var header = [UInt8](repeating: 0, count: Header.framesCopied + 4)
        let copy = Header.copySize
        guard pread(descriptor, &header, header.count, 0) == header.count, header[0..<copy] == header[copy..<2 * copy],
              header[Header.isInit] == 1 else { return false }
        let word = { (offset: Int) in header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) } }
        return word(Header.framesCopied) >= word(Header.lastFrame)
    }

    /// A descriptor this process has open on `file`.
    static func descriptor(of file: stat) -> Int32? {
        descriptor(of: FileIdentity(file))
    }

    /// A descriptor `process` (this one when nil) has open on the file `identity` names;
    /// nil when it has none, or its descriptors cannot be read (another user's process).
    static func descriptor(of identity: FileIdentity, in process: pid_t? = nil) -> Int32? {
        let path = "/proc/\(process.map(String.init) ?? "self")/fd"
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let descriptor = Int32(name), FileIdentity(of: "\(path)/\(name)") == identity { return descriptor }
        }
        return nil
    }
}
