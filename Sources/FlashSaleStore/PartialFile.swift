import CLinux
import FlashSaleCore
import Glibc

/// A file made whole under a temporary name beside the name it is for, and given that name
/// only once it is on disk, so that the name is either absent or whole, even after a kill
/// or a power cut: a backup's copy, and a new database. In the same file system (a rename,
/// not a copy, names it) and plainly not a finished file. Created with mode 0600 and
/// O_EXCL (mkstemp).
final class PartialFile {
    let path: String
    /// The name the file takes once whole (`publish`).
    let target: String
    /// What it is, for the messages: "backup", "database".
    private let what: String
    private let directory: String
    private var descriptor: Int32

    /// The temporary file for `target` (`what`: "backup", "database"), created under the
    /// first name of `name(for:what:fallbacks:)` that fits.
    init(for target: String, what: String, fallbacks: [String] = []) throws(FlashSaleError) {
        let prefix = PartialFile.directoryPrefix(of: target)
        var template = Array("\(prefix)\(try PartialFile.name(for: target, what: what, fallbacks: fallbacks))".utf8CString)
        descriptor = mkstemp(&template)
        guard descriptor >= 0 else {
            let code = errno
            let reason = String(cString: strerror(code))
            // Not the target's fault (found by probing: `ulimit -n 6` was 73, nothing said of the limit).
            guard code != EMFILE, code != ENFILE else {
                throw .io("cannot create the \(what) \(Quoted(target, keeping: .max)): no file descriptor is free "
                          + "(\(reason.lowercased())); raise ulimit -n")
            }
            throw .cantOpen("cannot create the \(what) \(Quoted(target, keeping: .max)): \(reason)")
        }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        directory = prefix.isEmpty ? "." : prefix
        self.target = target
        self.what = what
    }

    /// The temporary file's name for `target` (`what`: "backup", "database"): the first of
    /// `.NAME.partial-XXXXXX`, `fallbacks` and `.XXXXXX` that leaves room in its name for
    /// SQLite's -journal and whose whole path, its directory's links followed as SQLite
    /// follows them, is within SQLite's limit (found by probing: a longer name failed
    /// a short one deep in directories, "unable to open database file", and so did a
    /// symbolic link to a deep directory). Refused (exit 2) when none fits.
    private static func name(for target: String, what: String, fallbacks: [String]) throws(FlashSaleError) -> String {
        let directoryBytes = resolvedDirectoryBytes(of: target)
        let candidates = [".\(baseName(of: target)).partial-XXXXXX"] + fallbacks + [shortest]
        let fitting = candidates.first { name in
            name.utf8.count <= maximumNameBytes && directoryBytes + name.utf8.count <= maximumPathBytes
        }
        // Said without the directory's trailing slash, as its users count it.
        guard let fitting else {
            throw .usage("a new \(what)'s directory takes at most \(maximumPathBytes - shortest.utf8.count - 1) bytes from the "
                         + "root, room for the temporary file it is made under; this one has \(directoryBytes - 1)")
        }
        return fitting
    }

    /// mkstemp's template with nothing but its six random characters, hidden.
    private static let shortest = ".XXXXXX"
    /// A file name's 255 bytes, less `-journal`.
    static let maximumNameBytes = 247
    /// SQLite's longest path (512 bytes), less `-journal`.
    static let maximumPathBytes = 504

    /// Refuses (a usage error) a `target` SQLite could not open, with the files it makes
    /// beside it: a name over `nameBytes` (`nameRoom` says for what), or a path from the
    /// root over SQLite's limit (`pathRoom` says why). Checked before anything is made: a
    /// name without room for its -journal failed with "unable to open database file" and
    /// left an empty file behind, and a backup's path longer than SQLite opens was made and
    /// called whole, and no command could open it (found by probing).
    static func refuseTooLong(_ target: String, _ what: String, nameBytes: Int, nameRoom: String,
                              pathRoom: String) throws(FlashSaleError) {
        let name = baseName(of: target)
        guard name.utf8.count <= nameBytes else {
            throw .usage("\(what)'s file name takes at most \(nameBytes) bytes, \(nameRoom); this one has \(name.utf8.count)")
        }
        let absolute = pathBytes(of: target)
        guard absolute <= maximumPathBytes else {
            throw .usage("\(what)'s path takes at most \(maximumPathBytes) bytes from the root, \(pathRoom); this one has \(absolute)")
        }
    }

    /// The bytes of `target`'s whole path from the root, as SQLite counts them.
    /// For one that exists, its own links followed too, as SQLite opens it (found by the
    /// follow-up probe: a short link to a deep database was not said to be too deep).
    static func pathBytes(of target: String) -> Int {
        if let resolved = realpath(target, nil) {
            defer { free(resolved) }
            return strlen(resolved)
        }
        return resolvedDirectoryBytes(of: target) + baseName(of: target).utf8.count
    }

    /// The last component of `path`.
    private static func baseName(of path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    /// The bytes of `target`'s directory from the root, its trailing slash included, with
    /// symbolic links and `..` resolved as the kernel resolves them (for one that does not
    /// exist, as written from the working directory).
    static func resolvedDirectoryBytes(of target: String) -> Int {
        let prefix = directoryPrefix(of: target)
        let directory = prefix.isEmpty ? "./" : prefix
        if let resolved = realpath(directory, nil) {
            defer { free(resolved) }
            return strlen(resolved) + (strlen(resolved) == 1 ? 0 : 1)
        }
        guard !directory.hasPrefix("/") else { return directory.utf8.count }
        guard let working = getcwd(nil, 0) else { return directory.utf8.count }
        defer { free(working) }
        return strlen(working) + 1 + directory.utf8.count
    }

    /// A -wal or -journal left by an earlier database of that name would be read back into
    /// the file when SQLite opens it: a new one must start from nothing. Checked again just
    /// before it takes the name, for one that appeared while it was made (probe). An empty
    /// one holds nothing to read back (SQLite leaves the -wal of a file moved away empty
    /// under the old name), and is no reason to refuse the name.
    static func refuseLeftovers(_ path: String) throws(FlashSaleError) {
        for suffix in ["-wal", "-journal"] where holdsBytes(path + suffix) {
            throw .conflict("\(path)\(suffix) exists (left by an earlier database of that name); remove it or choose another name")
        }
    }

    /// Whether something with bytes in it has the name (what cannot be looked at counts).
    private static func holdsBytes(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 ? status.st_size > 0 : lstat(path, &status) == 0
    }

    /// `target`'s directory with its trailing slash, or "" for a name alone.
    static func directoryPrefix(of target: String) -> String {
        target.lastIndex(of: "/").map { String(target[...$0]) } ?? ""
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Puts the finished file's contents on disk, before it takes its name.
    func sync() throws(FlashSaleError) {
        guard fsync(descriptor) == 0 else { throw .io(failure("cannot write the \(what)")) }
        close(descriptor)
        descriptor = -1
    }

    /// Gives the synced file its name, only if nothing has it (a file that appeared
    /// meanwhile is never replaced, as rename() would: then false), then puts the directory
    /// on disk, so that a reported file survives a power cut.
    ///
    /// A -wal or -journal beside the name, left by an earlier database of that name, is
    /// refused (SQLite would read it into this file). `othersMayOpenIt`: a new database,
    /// which another process may open as soon as it has the name. Otherwise (a backup)
    /// leftovers are looked for once more once it has the name, for one that came between
    /// the look and the naming (review), and the name is given up again when the directory
    /// cannot be synced; never a new database's, which others may have written to by then
    /// (found by probing).
    func publish(othersMayOpenIt: Bool) throws(FlashSaleError) -> Bool {
        var taken = stat()
        do {
            try PartialFile.refuseLeftovers(target)
        } catch {
            // Not a leftover: the -wal of a file that took the name meanwhile, opened already.
            if lstat(target, &taken) == 0 { return false }
            throw error
        }
        guard try takeTheName() else { return false }
        do {
            if !othersMayOpenIt { try PartialFile.refuseLeftovers(target) }
        } catch {
            unlink(target)
            throw error
        }
        // A directory its owner may write but not read cannot be opened to be synced: the
        // whole system is, which takes longer but keeps the promise (found by probing: the
        // sync was skipped).
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryDescriptor >= 0 else {
            Glibc.sync()
            return true
        }
        defer { close(directoryDescriptor) }
        guard fsync(directoryDescriptor) == 0 else {
            let message = failure("cannot write the directory entry of the \(what)")
            if !othersMayOpenIt { unlink(target) }
            throw .io(message)
        }
        return true
    }

    /// renameat2 with RENAME_NOREPLACE, which names the file in one step. Where the file
    /// system cannot (or the kernel), link() and then unlink() of the temporary name, with
    /// both names for a moment, which another process that looks then refuses (a file with
    /// two names: found by probing). link() is POSIX; FAT, which has no hard links,
    /// refuses it. False when the name is taken.
    private func takeTheName() throws(FlashSaleError) -> Bool {
        if clinux_rename_noreplace(path, target) == 0 { return true }
        switch errno {
        case EEXIST: return false
        case EINVAL, ENOSYS, EOPNOTSUPP: break
        default: throw .cantOpen(failure("cannot create the \(what)"))
        }
        guard link(path, target) == 0 else {
            if errno == EEXIST { return false }
            throw .cantOpen(failure("cannot create the \(what)"))
        }
        unlink(path)
        return true
    }

    /// Removes the temporary file of a failed one, with what SQLite made beside it.
    func discard() {
        if descriptor >= 0 {
            close(descriptor)
            descriptor = -1
        }
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) }
    }

    /// What failed, with the errno of the call that just failed. A path that holds a URL's
    /// password is not shown (`Quoted`).
    private func failure(_ what: String) -> String {
        let reason = String(cString: strerror(errno))
        return "\(what) \(Quoted(target, keeping: .max)): \(reason)"
    }
}
