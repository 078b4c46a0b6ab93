import CLinux
import CSQLite
import FlashSaleCore
import FlashSaleEngine
import Glibc

/// What a process does with its log once it finds the names of its WAL and index
/// removed or replaced (`JournalFiles.areInPlace`): copied into the file while it still
/// can be, or left, if another process has used new files at the names.
extension JournalFiles {
    /// What became of this process's log once its names were found free or taken
    /// (`settle(through:)`).
    enum Settling {
        /// Copied into the file (by this process, or by another that shared the log):
        /// nothing is lost, whoever opens the database next.
        case copied
        /// Left for the close to copy in, if the names are still free then: another
        /// process kept the database open past the busy timeout without sharing this log,
        /// or kept it from being copied (a transaction left open).
        case leftToClose
        /// Another process has made new ones and used them: the log must not go into the file.
        case split
    }

    /// Copies the log into the file at once, while no other process can begin to open the
    /// database (`DatabaseFileLocks`), unless another has made new files at the names and
    /// used them. Left to the close, it was lost when another process opened the database
    /// before that: the close must then keep the new files, which the other's commits are
    /// in (found by a CI run).
    ///
    /// Others that have the database open are waited for (up to the busy timeout) unless
    /// they share this log, which they have open too: one that began to open it just
    /// before the hold has made its files within the grace below. The copy goes through
    /// the log's index, which those others heed, as SQLite's own checkpoints do.
    func settle(through db: Connection) -> Settling {
        var file = stat()
        guard stat(database, &file) == 0, let descriptor = WALIndex.descriptor(of: file) else {
            return notCopied
        }
        let start = MonotonicClock.nanoseconds()
        let patience = db.busyTimeout.nanoseconds
        let waited = { (nanoseconds: UInt64) in MonotonicClock.nanoseconds() - start >= nanoseconds }
        // Held, for an instant, by a process opening the database, or by another of this
        // log's processes settling it.
        while !DatabaseFileLocks.holdOpenersOff(descriptor) {
            guard !waited(patience) else { return notCopied }
            usleep(1_000)
        }
        defer { DatabaseFileLocks.letOpenersIn(descriptor) }
        while true {
            if Self.namesAreTaken(database: database) {
                switch removeEmptyNewFiles(database: descriptor) {
                case .removed: continue
                case .inUse: break
                case .written: return splitUnlessCopied
                }
                guard !waited(patience) else { return splitUnlessCopied }
            } else if !DatabaseFileLocks.isOpenElsewhere(descriptor)
                        || (WALIndex.isOpenElsewhere(index: index) && waited(Self.openingGrace)) {
                break
            }
            guard !waited(patience) else { return .leftToClose }
            usleep(1_000)
        }
        let why = "the -wal or -shm of \(database) was removed while this process had it open"
        return Self.copyLog(through: db, into: descriptor, why: why) ? .copied : .leftToClose
    }

    /// Copies `db`'s log into its file, open through `descriptor`, once the disk has room
    /// for it; false when the copy failed otherwise. On a full disk the copy stopped part
    /// way, the file holding some of the log's pages and the log, which nobody else can
    /// reach, the rest: given up, or the process killed while it waited, the database was
    /// left corrupt (probe). The room is reserved first, and the copy tried again until
    /// the disk has it. The wait is said as it begins, with `why` the log must go in now:
    /// it may last until an operator frees space (found by probing: it said nothing until
    /// it ended).
    static func copyLog(through db: Connection, into descriptor: Int32, why: String) -> Bool {
        var saidWhy = false
        // The wait says that a stop signal waits too: ignored meanwhile, whatever the
        // process does with one otherwise (`book --stream` leaves them their default
        // action, which ended it mid-wait and lost the log: found by probing). The
        // process stops once the copy is made all the same.
        var stopActions: [(signal: Int32, action: sigaction)] = []
        defer { for (signal, action) in stopActions { var action = action; sigaction(signal, &action, nil) } }
        while true {
            if reserve(descriptor, for: db) {
                let code = db.copyLogIntoFile()
                if code == SQLITE_OK { return true }
                // Only the disk's want of room is waited out: another I/O error (EIO) would
                // never pass, and be called a full disk.
                guard isOutOfRoom(code, db) else { return false }
            }
            if !saidWhy {
                saidWhy = true
                stopActions = [SIGINT, SIGTERM, SIGHUP].map { signal in
                    var ignore = sigaction(), previous = sigaction()
                    ignore.__sigaction_handler.sa_handler = SIG_IGN
                    sigaction(signal, &ignore, &previous)
                    return (signal, previous)
                }
                StoreNotices.say(waitingForRoom(descriptor, db, why: why))
            }
            usleep(100_000)
        }
    }

    /// Whether a failed copy ran out of room: SQLite says so itself (SQLITE_FULL), or its
    /// failed write or sync does (ENOSPC, EDQUOT).
    private static func isOutOfRoom(_ code: Int32, _ db: Connection) -> Bool {
        code & 0xFF == SQLITE_FULL
            || (code & 0xFF == SQLITE_IOERR && [ENOSPC, EDQUOT].contains(SQLiteError(code: code, connection: db.handle).systemErrno))
    }

    private static func waitingForRoom(_ descriptor: Int32, _ db: Connection, why: String) -> String {
        var file = stat()
        let needed = (try? db.bytesOnceCopied()).flatMap { fstat(descriptor, &file) == 0 ? $0 - Int64(file.st_size) : nil }
        return "\(why), and the disk has no room to copy its log into the file\(needed.map { " (\($0) bytes more)" } ?? ""): waiting for room, then stopping; "
            + "free some space on that disk (a stop signal waits too; killing the process loses the log's commits)"
    }

    /// Reserves the blocks the database file takes once the log is copied in; false when
    /// the disk has no room for them. True when the size cannot be read: the copy is then
    /// tried as it is.
    private static func reserve(_ descriptor: Int32, for db: Connection) -> Bool {
        guard let bytes = try? db.bytesOnceCopied(), bytes > 0 else { return true }
        if clinux_reserve(descriptor, bytes) == 0 { return true }
        switch errno {
        case ENOSPC, EDQUOT, EFBIG: return false
        // A file system that cannot reserve (ext2, some overlays): its free space is asked
        // instead, so that a copy that would run out is not begun (found by probing: on
        // ext2 the file was still left corrupt by a kill during the wait).
        case EOPNOTSUPP, ENOSYS: return hasRoom(descriptor, toGrowTo: bytes)
        default: return true
        }
    }

    private static func hasRoom(_ descriptor: Int32, toGrowTo bytes: Int64) -> Bool {
        var file = stat(), disk = statvfs()
        guard fstat(descriptor, &file) == 0, fstatvfs(descriptor, &disk) == 0 else { return true }
        return Int64(disk.f_bavail) * Int64(disk.f_frsize) >= bytes - Int64(file.st_size)
    }

    /// What became of the log when it could not be copied: split if another process has
    /// made new files at the names, else left to the close.
    private var notCopied: Settling {
        Self.namesAreTaken(database: database) ? splitUnlessCopied : .leftToClose
    }

    /// Split, unless another process that shared this log copied all of it into the file
    /// (settling it, as this one would): then nothing in it is lost (found by a CI run under
    /// load: a follower that looked just after another copied its log said its commits were
    /// lost). Asked of the index only once it is gone from its name, so that only the
    /// processes that shared this log can have written to it: an index still at its name
    /// (only the -wal removed) describes the new WAL of whoever opened the database since,
    /// whose checkpoint says nothing of this log (review).
    private var splitUnlessCopied: Settling {
        FileIdentity(of: database + "-shm") != files[1] && WALIndex.isCopiedIntoFile(index: index) ? .copied : .split
    }

    /// How long a process that took its shared lock just before the hold has to make its
    /// files (it makes them before it reads a page past the first).
    private static let openingGrace: UInt64 = 50_000_000

    /// What another process's files at the names hold, as `removeEmptyNewFiles` found them.
    private enum NewFiles {
        /// They held no commit, and nobody had them open: they are gone.
        case removed
        /// They hold no commit, but another process has them (or the database) open.
        case inUse
        /// They may hold commits: another process wrote to them, or may have.
        case written
    }

    /// Removes the files another process made at the names if they hold no commit and
    /// nobody has them open: a command that only reads (`status`, run to see what the
    /// removal did) makes them, empty, and leaves them as it closes while this process has
    /// the database open. Taken for another's commits, they cost every commit in this log
    /// (probe). A WAL that holds a commit is not empty; nor this process's own WAL under a
    /// new index, which another may have written to through it. A new, empty WAL beside
    /// this process's index (only the -wal removed) goes once no other process has the
    /// database open, since those share that index. Asked under the hold
    /// (`DatabaseFileLocks`), so that nobody opens them meanwhile.
    private func removeEmptyNewFiles(database descriptor: Int32) -> NewFiles {
        let (walName, shmName) = (database + "-wal", database + "-shm")
        let (wal, shm) = (FileIdentity(of: walName), FileIdentity(of: shmName))
        var log = stat()
        guard !(wal.map(files.contains) ?? false), stat(walName, &log) != 0 || log.st_size == 0 else { return .written }
        let inUse = shm.map(files.contains) ?? false ? DatabaseFileLocks.isOpenElsewhere(descriptor) : WALIndex.isOpen(shmName)
        guard !inUse else { return .inUse }
        unlink(walName)
        if let shm, !files.contains(shm) { unlink(shmName) }
        return .removed
    }
}
