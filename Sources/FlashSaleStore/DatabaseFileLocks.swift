import Glibc

/// The locks SQLite's processes take on a database file, as its unix VFS lays them out on
/// the file's lock-byte page (https://sqlite.org/fileformat2.html#the_lock_byte_page): a
/// process opening the database takes a read lock on the pending byte, then one on the
/// shared range, which it holds for as long as it has the database open (in WAL mode),
/// and lets the pending byte go. Used through a descriptor this process already has on
/// the file (SQLite's): closing one opened here would drop every lock this process holds
/// on it (POSIX), SQLite's among them.
enum DatabaseFileLocks {
    private static let pendingByte: off_t = 0x4000_0000
    private static let sharedRange = (start: pendingByte + 2, length: off_t(510))

    /// Holds the pending byte, as SQLite's own writer does before an exclusive lock: no
    /// other process can begin to open the database meanwhile (each waits, for as long as
    /// its busy timeout). False when another process holds it or begins to open it now.
    /// POSIX locks are the process's: this one's other connections are not held off, and
    /// `letOpenersIn` would let go of the byte for one of them opening at that instant.
    /// It is held only while a process settles a log it found removed (`JournalFiles.settle`).
    static func holdOpenersOff(_ descriptor: Int32) -> Bool {
        setPendingByte(descriptor, to: F_WRLCK)
    }

    static func letOpenersIn(_ descriptor: Int32) {
        _ = setPendingByte(descriptor, to: F_UNLCK)
    }

    private static func setPendingByte(_ descriptor: Int32, to type: Int32) -> Bool {
        var lock = flock(l_type: Int16(type), l_whence: Int16(SEEK_SET), l_start: pendingByte, l_len: 1, l_pid: 0)
        return fcntl(descriptor, F_SETLK, &lock) == 0
    }

    /// Whether a process other than this one has the database open (true when that cannot
    /// be told: not assumed free).
    static func isOpenElsewhere(_ descriptor: Int32) -> Bool {
        isLockedElsewhere(descriptor, from: sharedRange.start, length: sharedRange.length)
    }
}

/// Whether a process other than this one holds a lock on any of `length` bytes from `start`
/// of the file open through `descriptor` (true when that cannot be told: not assumed free).
/// This process's own locks never conflict with it (POSIX), so they do not count.
func isLockedElsewhere(_ descriptor: Int32, from start: off_t, length: off_t) -> Bool {
    var probe = flock(l_type: Int16(F_WRLCK), l_whence: Int16(SEEK_SET), l_start: start, l_len: length, l_pid: 0)
    guard fcntl(descriptor, F_GETLK, &probe) == 0 else { return true }
    return probe.l_type != Int16(F_UNLCK)
}
