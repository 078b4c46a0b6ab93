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
    static func holdOpenersOff(_ descriptor: Int32) -> Bool {
        var lock = flock(l_type: Int16(F_WRLCK), l_whence: Int16(SEEK_SET), l_start: pendingByte, l_len: 1, l_pid: 0)
        return fcntl(descriptor, F_SETLK, &lock) == 0
    }

    static func letOpenersIn(_ descriptor: Int32) {
        var lock = flock(l_type: Int16(F_UNLCK), l_whence: Int16(SEEK_SET), l_start: pendingByte, l_len: 1, l_pid: 0)
        _ = fcntl(descriptor, F_SETLK, &lock)
    }

    /// Whether a process other than this one has the database open (true when that cannot
    /// be told: not assumed free).
    static func isOpenElsewhere(_ descriptor: Int32) -> Bool {
        var probe = flock(l_type: Int16(F_WRLCK), l_whence: Int16(SEEK_SET), l_start: sharedRange.start,
                          l_len: sharedRange.length, l_pid: 0)
        guard fcntl(descriptor, F_GETLK, &probe) == 0 else { return true }
        return probe.l_type != Int16(F_UNLCK)
    }
}
