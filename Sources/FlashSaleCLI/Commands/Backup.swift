import FlashSaleCore
import FlashSaleStore
import Glibc
import Synchronization

enum BackupCommand {
    static let spec = CommandSpec(
        "backup", arguments: "PATH",
        summary: "copy the database to a new file, consistently, while other processes keep writing",
        details: """
            Uses SQLite's online backup API: the copy is the database as of one commit, taken under a read \
            lock that, in WAL mode, holds up no writer. PATH must not exist (exit 4; nor a PATH-wal or \
            PATH-journal with bytes in it); it has mode 0600 and keeps the source's journal mode (WAL), so \
            'flashsale --db PATH verify' checks it and any command can use it. A missing directory or \
            one without write permission exits 73. The copy is made in .NAME.partial-XXXXXX beside PATH \
            and renamed to PATH, never replacing a file, once complete and synced, so PATH is never a \
            partial copy; a failure \
            removes the temporary file, and so do SIGINT, SIGTERM and SIGHUP (exit 130) until the copy is whole and \
            taking its name, when they are too late to stop it; a backup killed with \
            SIGKILL, or by a power cut, leaves it to be deleted. \
            --json prints {"backup": PATH, "pages": N}. A PostgreSQL database is backed up with pg_dump: \
            on one, backup exits 2.
            """
    ) { invocation, context in
        // The parser has already refused a missing PATH.
        let path = invocation.arguments["PATH"] ?? ""
        guard !path.isEmpty else { throw FlashSaleError.usage("backup needs a file name: flashsale \(invocation.command.synopsis)") }
        // `-` is standard input or output to every other command that reads a path (probe:
        // a file named - appeared in the working directory); the copy needs a file.
        guard path != "-" else {
            throw FlashSaleError.usage("backup makes a file, not standard output: give ./- for a file named -")
        }
        // Named in every message after this, password and all (found by a review).
        guard DatabaseURL.scheme(of: path) == nil, DatabaseURL.refusal(of: path) == nil else {
            throw FlashSaleError.usage("backup makes a file, and PATH is a database URL (not shown: it may hold a password); "
                                       + "back up a PostgreSQL database with pg_dump")
        }
        // Refused before connecting: the answer is the same whether the server is up or not.
        guard !context.isDatabaseServer else {
            throw FlashSaleError.usage("backup copies a SQLite file: back up a PostgreSQL database with pg_dump")
        }
        // Taken from before the database is opened, which may wait out another process's
        // lock (a backup stopped there died silently, 143: found by probing), and so from
        // before the temporary file is made, so that none is left behind.
        let signals = StopSignals()
        let json = context.output.json
        let stage = Mutex(Stage.opening)
        signals.stopAtFirstChance {
            // Decided and done under the lock, so that the copy cannot take its name
            // meanwhile (found by probing: a copy that took it then was reported removed).
            stage.withLock { stage in
                switch stage {
                case .opening:
                    StopSignals.exitStopped(saying: "backup interrupted; nothing was written", json: json)
                case .file(.copying(let temporaryPath)):
                    unlink(temporaryPath)
                    StopSignals.exitStopped(saying: "backup interrupted; its partial copy is removed", json: json)
                // Made, its name not told yet: a moment. Or whole and being named, too
                // late to stop: the backup ends as it would have, and says so. Or failed,
                // its file removed: the failure is the answer.
                case .making, .file(.naming), .failed:
                    break
                }
            }
        }
        let pages: Int64
        do {
            guard let store = try context.store() as? SQLiteStore else { throw FlashSaleError.internalFailure("no SQLite store") }
            stage.withLock { $0 = .making }
            pages = try store.backup(to: path) { reached in
                stage.withLock { $0 = .file(reached) }
            }
        } catch {
            // A stop under way keeps the stage until it exits, and the partial copy it
            // removed is no failure of this backup's to report (found by CI: opening the
            // removed copy failed, and its error followed the stop's line). Otherwise the
            // failure is the answer, and a stop after it adds none (found by probing: a
            // full disk's line, then the stop's; and so for a database that cannot be opened).
            stage.withLock { $0 = .failed }
            throw error
        }
        context.workDone = .backup(path: path)
        context.output.success(Rendered(
            text: "backed up to \(path.controlCharactersEscaped) (\(String.counted(pages, "page")))",
            json: .object([("backup", .string(path)), ("pages", .integer(pages))])))
    }
}

/// Where a backup stands, for what a stop signal leaves: nothing yet, a temporary file that
/// may have been made (its name to come), the file's own stage, or a failure being told.
private enum Stage: Sendable {
    case opening
    case making
    case file(BackupStage)
    case failed
}
