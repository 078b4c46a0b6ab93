import CSQLite
import FlashSaleCore
import Glibc

/// What became of a connection's log once its database file was found no longer at its
/// path (`Connection.settleMovedFile`).
enum MovedFileSettling: Equatable, Sendable {
    /// Renamed, and the log copied into it at its new path (`at`, when the kernel can
    /// tell it): nothing is lost.
    case copied(at: String?)
    /// Renamed with its log (its directory renamed): the log is beside it still, and goes
    /// in as SQLite's logs do. Nothing is lost.
    case movedWithItsLog(to: String)
    /// Renamed, and another process has opened it at its new path with a log of its own
    /// and committed there, or kept it open past the busy timeout; or the kernel cannot
    /// tell where it is now. This log, of another history then, is not copied in but
    /// emptied, and the commits in it since SQLite last copied it into the file are lost.
    case split
    /// Renamed, and the log left: other processes share it (the last of them settles it),
    /// the file could not be held against new openers within the busy timeout, or the copy
    /// failed.
    case left
    /// Removed, or replaced by another file at its name: the log goes into the file that
    /// nobody else can open any more, when no other process shares it, so that the file
    /// now at the name does not take it for its own. What it held that was not in the file
    /// yet is in no file now.
    case removed
}

extension Connection {
    /// Whether the file this connection has open is no longer at its path (removed, renamed,
    /// or another put there), as SQLite tells.
    var fileHasMoved: Bool {
        var moved: Int32 = 0
        return sqlite3_file_control(handle, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved != 0
    }

    /// SQLite will not checkpoint a database whose file was removed or renamed when it
    /// closes it (it cannot tell where the file went), and leaves the WAL under the old
    /// name: its commits never reached the renamed file (bookings `serve` answered 201 to
    /// before a `mv` were missing from it), and the next database put at that name would
    /// take them for its own pages (a restore by `mv` under a follower came out corrupt:
    /// found by probing). So the WAL is copied into the file this connection has open,
    /// wherever that is now, through the connection's own descriptors, and emptied, unless
    /// that would mix two histories (`settleRenamedFile`). The first of a process's
    /// connections to look settles it (a follower's watcher, which says how); those that
    /// close after find the log empty. nil: not moved.
    @discardableResult
    func settleMovedFile() -> MovedFileSettling? {
        guard fileHasMoved else { return nil }
        guard let file = fileIdentity, let journal = journalFiles, let descriptor = WALIndex.descriptor(of: file),
              Connection.linkCount(descriptor) > 0 else {
            return settleRemovedFile()
        }
        return settleRenamedFile(descriptor, file: file, journal: journal)
    }

    /// A file removed, or replaced at its name: its log is copied into it and emptied, when
    /// nothing has taken the name, or another file has but no other process has opened it
    /// yet. Left as SQLite leaves it while another process has the WAL index open:
    /// connections of a file moved onto the name share the WAL then, and emptying it
    /// would take their commits (review); and while another connection still reads from
    /// it (the checkpoint fails busy; the last to close empties it).
    private func settleRemovedFile() -> MovedFileSettling {
        let nameIsFree = access(openedFile, F_OK) != 0 && errno == ENOENT
        if nameIsFree || !WALIndex.isOpenElsewhere(database: openedFile) {
            sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_TRUNCATE, nil, nil)
        }
        return .removed
    }

    /// A file renamed (`mv`) while this connection had it open: copied in where it is now,
    /// with the room reserved first (`JournalFiles.copyLog`), while new openers are held off
    /// (`DatabaseFileLocks`). Unless another process has opened it there, with a log of its
    /// own beside it, and committed: copied in over the pages that log's commits rest on,
    /// the log left the database corrupt (found by probing). That log keeps its commits
    /// while this process has the file open (SQLite copies a log into its file as the last
    /// process closes it), so it is looked for; and one that has it open is waited for,
    /// within the busy timeout, in case it only reads. Then the log is emptied rather than
    /// copied, so that no file later put at the old name takes it for its own, and its
    /// commits since SQLite last copied it in are lost. So too when the kernel cannot tell
    /// where the file is now (its name removed after another was made: `ln`, then `rm`; its
    /// file system unmounted). Another program's checkpoint of its log (an `sqlite3` shell)
    /// goes unseen.
    private func settleRenamedFile(_ descriptor: Int32, file: FileIdentity, journal: [FileIdentity]) -> MovedFileSettling {
        let start = MonotonicClock.nanoseconds()
        let waited = { MonotonicClock.nanoseconds() - start >= self.busyTimeout.nanoseconds }
        while !DatabaseFileLocks.holdOpenersOff(descriptor) {
            guard !waited() else { return .left }
            usleep(1_000)
        }
        defer { DatabaseFileLocks.letOpenersIn(descriptor) }
        let path = Connection.path(of: descriptor, leadingTo: file)
        // Its directory renamed: the log is beside it still (found by probing: emptied).
        if let path, FileIdentity(of: path + "-wal") == journal[0] { return .movedWithItsLog(to: path) }
        // Settled already, by this process's first look: emptied, copied or not.
        guard let log = WALIndex.descriptor(of: journal[0]), Connection.size(log) > 0 else { return .copied(at: path) }
        // Others that share the log decide when the last of them closes.
        guard let index = WALIndex.descriptor(of: journal[1]), !WALIndex.isOpenElsewhere(index: index) else { return .left }
        while true {
            guard let path, !Connection.hasCommits(inLogOf: path) else {
                _ = ftruncate(log, 0)
                return .split
            }
            if !DatabaseFileLocks.isOpenElsewhere(descriptor) { break }
            guard !waited() else {
                _ = ftruncate(log, 0)
                return .split
            }
            usleep(1_000)
        }
        let why = "\(Quoted(self.path, keeping: .max)) was moved while this process had it open"
        guard JournalFiles.copyLog(through: self, into: descriptor, why: why) else { return .left }
        // Copied: emptied too, so that no file later put at the old name takes it for its own.
        sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_TRUNCATE, nil, nil)
        return .copied(at: path)
    }

    /// Whether a WAL beside the database at `path` holds anything: another program opened
    /// it there with a log of its own and committed (this log's is not there: renamed
    /// without it).
    private static func hasCommits(inLogOf path: String) -> Bool {
        var found = stat()
        guard stat(path + "-wal", &found) == 0 else { return errno != ENOENT }
        return found.st_size > 0
    }

    private static func linkCount(_ descriptor: Int32) -> UInt {
        var file = stat()
        return fstat(descriptor, &file) == 0 ? UInt(file.st_nlink) : 0
    }

    private static func size(_ descriptor: Int32) -> Int64 {
        var file = stat()
        return fstat(descriptor, &file) == 0 ? Int64(file.st_size) : 0
    }

    /// The path the file open through `descriptor` has now, as the kernel tells; nil when
    /// it cannot. The name it was opened by removed since (another name made first), the
    /// kernel reports that name and " (deleted)". Its file system unmounted (`umount -l`),
    /// the kernel reports its path inside that file system ("/sale.db"), which leads to
    /// another file or none: taken for a rename there, `serve` on a full disk waited for
    /// room to copy its log in, forever (found in CI: a rehearsal's serve outlived each run).
    private static func path(of descriptor: Int32, leadingTo file: FileIdentity) -> String? {
        guard let path = DatabaseFile.linkTarget("/proc/self/fd/\(descriptor)"), !path.hasSuffix(" (deleted)") else { return nil }
        return FileIdentity(of: path) == file ? path : nil
    }
}
