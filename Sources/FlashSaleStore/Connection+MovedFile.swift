import CSQLite
import FlashSaleCore
import Glibc

/// What became of a connection's log once its database file was found no longer at its
/// path (`Connection.settleMovedFile`).
enum MovedFileSettling: Equatable, Sendable {
    /// Renamed, and the log copied into it at its new path (`at`, when it can be told):
    /// nothing is lost.
    case copied(at: String?)
    /// Renamed, and another process has opened it at its new path, or has written to it
    /// since: the log, of another history now, is not copied in but emptied, and the
    /// commits in it since SQLite last copied it into the file are lost.
    case split
    /// Renamed, and the log left: other processes share it (the last of them settles it),
    /// or the file could not be held against new openers within the busy timeout.
    case left
    /// Removed, or replaced by another file at its name: the log goes into the file that
    /// nobody else can open any more, when no other process shares it, so that the file
    /// now at the name does not take it for its own.
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
        return settleRenamedFile(descriptor, journal: journal)
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

    /// A file renamed (`mv`) while this connection had it open: another process may open it
    /// at its new path, and then makes a WAL of its own there, which it commits to. Copied
    /// into the file after that, this connection's log wrote its pages over the pages the
    /// other's commits rest on, and the database was corrupt (found by probing: `book
    /// --stream` stopping after another had booked at the new path). So the log is copied
    /// in only while nobody else can begin to open the file (`DatabaseFileLocks`), nobody
    /// outside the processes that share this log has it open, and nobody has written to
    /// it since it was renamed, or left commits in a log of their own beside it; else it is
    /// emptied, so that no file later put at the old name takes it for its own, and its
    /// commits since SQLite last copied it in are lost.
    private func settleRenamedFile(_ descriptor: Int32, journal: [FileIdentity]) -> MovedFileSettling {
        let start = MonotonicClock.nanoseconds()
        while !DatabaseFileLocks.holdOpenersOff(descriptor) {
            guard MonotonicClock.nanoseconds() - start < busyTimeout.nanoseconds else { return .left }
            usleep(1_000)
        }
        defer { DatabaseFileLocks.letOpenersIn(descriptor) }
        let path = Connection.path(of: descriptor)
        // Settled already, by this process's first look: emptied, copied or not.
        guard let log = WALIndex.descriptor(of: journal[0]), Connection.size(log) > 0 else { return .copied(at: path) }
        // Others that share the log decide when the last of them closes.
        guard let index = WALIndex.descriptor(of: journal[1]), !WALIndex.isOpenElsewhere(index: index) else { return .left }
        var file = stat()
        guard fstat(descriptor, &file) == 0 else { return .left }
        guard !DatabaseFileLocks.isOpenElsewhere(descriptor), !Connection.writtenSinceRenamed(file),
              let path, !Connection.hasCommits(inLogOf: path, otherThan: journal[0]) else {
            _ = ftruncate(log, 0)
            return .split
        }
        guard sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_TRUNCATE, nil, nil) == SQLITE_OK else {
            Connection.disownWrites(descriptor)
            return .left
        }
        return .copied(at: path)
    }

    /// After a copy that stopped part way (another connection of this process still read an
    /// older snapshot): its writes are this process's, and a later look must not take them
    /// for another's (`writtenSinceRenamed`), nor empty the rest of the log for it. The
    /// inode's change time is moved past them, as the rename moved it, by a chmod to its
    /// own mode, tried again until the clock has moved on. Nobody else can write to the
    /// file meanwhile: new openers are held off, and nobody else has it open.
    private static func disownWrites(_ descriptor: Int32) {
        var file = stat()
        for _ in 0..<20 {
            guard fstat(descriptor, &file) == 0, writtenSinceRenamed(file) else { return }
            _ = fchmod(descriptor, file.st_mode & 0o7777)
            usleep(1_000)
        }
    }

    /// Whether a WAL other than `log` beside the database at `path` holds anything: another
    /// process opened it there and committed, and closed without copying its log into the
    /// file (this process's lock kept it from it), so the file is still unwritten (found
    /// by probing: the log replayed later over this one's copy, and the file was corrupt).
    private static func hasCommits(inLogOf path: String, otherThan log: FileIdentity) -> Bool {
        var found = stat()
        guard stat(path + "-wal", &found) == 0 else { return errno != ENOENT }
        return FileIdentity(found) != log && found.st_size > 0
    }

    /// Whether a write changed the file last, not its rename: a rename changes the inode
    /// (its ctime) and not the content (its mtime), and a write sets both to one instant.
    private static func writtenSinceRenamed(_ file: stat) -> Bool {
        file.st_mtim.tv_sec == file.st_ctim.tv_sec && file.st_mtim.tv_nsec == file.st_ctim.tv_nsec
    }

    private static func linkCount(_ descriptor: Int32) -> UInt {
        var file = stat()
        return fstat(descriptor, &file) == 0 ? UInt(file.st_nlink) : 0
    }

    private static func size(_ descriptor: Int32) -> Int64 {
        var file = stat()
        return fstat(descriptor, &file) == 0 ? Int64(file.st_size) : 0
    }

    /// The path the file open through `descriptor` has now, as the kernel tells.
    private static func path(of descriptor: Int32) -> String? {
        var bytes = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/fd/\(descriptor)", &bytes, bytes.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: bytes.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
