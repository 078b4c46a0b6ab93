import FlashSaleCore
import FlashSaleEngine
import Glibc

/// The one place where any error becomes a contract error (and so an exit code), in the
/// command line's words.
package enum ExitStatus {
    package static func error(for error: any Error) -> FlashSaleError {
        switch error {
        case let error as FlashSaleError: error
        case let error as LoggedFailure: error.failure
        case let error as SaleError: error.commandLineError
        case let error as StoreFailure: error.commandLineError
        case .targetHoldsData(let detail) as CopyRefusal:
            .conflict("\(detail); copy into a new schema (\(GlobalOptions.pgSchema.name)) or an empty one")
        case let error as any StoreError: error.failure?.commandLineError ?? .internalFailure("\(error)")
        default: .internalFailure("unexpected error: \(error)")
        }
    }

    /// `error` for a command that commits in batches and failed after some had committed:
    /// its message ("nothing was written") is about the batch that failed, and `before`
    /// says what the batches before it did, which stays done.
    /// Not said after a split database, which lost them (`StoreFailure.split`).
    package static func error(for error: any Error, after before: String) -> FlashSaleError {
        let cause = self.error(for: error)
        if case .split? = StoreFailure.of(error) { return cause }
        return FlashSaleError(cause.errorCode, "\(cause.message); \(before)")
    }

    /// `error` for a command whose work was committed before it failed: `done` says what
    /// stays done and what to do, then what failed, without the advice for a failure that
    /// changed nothing ("nothing was written", "run the command again").
    package static func error(for error: any Error, afterCommitting done: String) -> FlashSaleError {
        let cause = self.error(for: error)
        let failure = StoreFailure.of(error)
        return FlashSaleError(cause.errorCode, "\(done); what failed: \(failure?.whatFailed ?? cause.message)")
    }
}

extension StoreFailure {
    var commandLineError: FlashSaleError {
        FlashSaleError(code, message)
    }

    private var message: String {
        switch self {
        // What failed wrote nothing: said within, where the disk's trouble is told.
        case .full(let detail):
            "the disk is full; nothing was written (\(detail))"
        case .fileSizeLimit(let detail):
            "\(fileSizeLimitReached); nothing was written (\(detail))"
        case .io(let detail):
            "I/O error, nothing was written: \(detail)"
        case .busy, .canceled, .connectionLost, .commitUnanswered, .cantOpen, .unwritable, .moved, .logRemoved, .split,
             .unreachable, .noConnectionFree, .missingDatabase, .unusable:
            advice.map { "\(whatFailed); \($0)" } ?? whatFailed
        }
    }

    /// Not "the database file": a command that only reads grows its -shm (found by
    /// probing: `export` under `ulimit -f` blamed a file it had not written).
    private var fileSizeLimitReached: String {
        "a file of the database (the file, its -wal or its -shm) reached the file size limit (ulimit -f)"
    }

    /// What failed, without what to do about it: for a command whose work was committed
    /// before it failed, to which "nothing was written" and "run the command again" do
    /// not apply (`ExitStatus.error(for:afterCommitting:)`).
    var whatFailed: String {
        switch self {
        case .busy: "the database is locked by another process"
        case .canceled(let detail): "the server canceled a statement (\(detail))"
        case .full(let detail): "the disk is full (\(detail))"
        case .fileSizeLimit(let detail): "\(fileSizeLimitReached) (\(detail))"
        case .io(let detail): "I/O error: \(detail)"
        case .connectionLost(let detail), .moved(let detail), .logRemoved(let detail), .split(let detail), .unreachable(let detail),
             .noConnectionFree(let detail):
            detail
        case .commitUnanswered(let detail): "\(detail), after the commit was sent: the change may have been made"
        case .cantOpen(let detail), .unwritable(let detail): "cannot use the database: \(detail)"
        // A path that holds a URL's password is not shown (`Quoted`).
        case .missingDatabase(let path): "no flashsale database at \(Quoted(path, keeping: .max))"
        case .unusable(let detail): "not a usable flashsale database: \(detail)"
        }
    }

    private var advice: String? {
        switch self {
        case .busy: "retry, or raise \(GlobalOptions.busyTimeout.name)"
        // The server's words tell its statement timeout from an operator's cancel, which no
        // timeout would have prevented (review).
        case .canceled(let detail) where detail.contains("statement timeout"):
            "retry, or raise \(GlobalOptions.busyTimeout.name), which bounds each statement on PostgreSQL"
        case .canceled: "retry"
        // Lost before its commit was sent: rolled back, so any command may run again as it is.
        case .connectionLost: "run the command again once the server answers"
        case .commitUnanswered:
            "once the server answers, look (bookings, status, request) before running the command again (with --key, a repeated book is safe)"
        // A file's path, or a server's database, role and password.
        case .cantOpen: "check the database's path or URL and its permissions"
        case .unreachable: "check that the server runs and that the URL names it"
        // Found by probing: a full server was told to check that it runs.
        case .noConnectionFree:
            "retry once fewer connections are open, or raise the server's max_connections or the role's CONNECTION LIMIT"
        // Found by probing: said of a path whose directory is missing, where create-sale
        // then failed too ("No such file or directory").
        case .missingDatabase(let path) where DatabaseURL.scheme(of: path) == nil && !directoryExists(of: path):
            "its directory does not exist: make it, and then \(creators) creates one"
        case .missingDatabase: "\(creators) creates one"
        case .unusable: "use another database"
        // Its detail says what mends it; the path and permissions are right.
        case .full, .fileSizeLimit, .io, .moved, .logRemoved, .split, .unwritable: nil
        }
    }
}

extension SaleError {
    /// The refusal as the command line tells it: its code, and what to do next.
    package var commandLineError: FlashSaleError {
        FlashSaleError(code, message)
    }

    private var message: String {
        switch self {
        case .saleNotFound(let sale):
            "no sale \(sale); 'flashsale sales' lists them"
        case .saleExists(let sale):
            "sale \(sale) already exists"
        case .bookingNotFound(let booking, let sale, let user):
            "no booking \(booking) in sale \(sale)" + (user.map { " for user '\(Quoted($0.text))'" } ?? "")
        case .requestNotFound(let request):
            "no request \(request)"
        case .blockNotFound:
            "no such block; 'flashsale blocks' lists them"
        case .keyUsedByAnotherUser(let key, let sale):
            "key \(Quoted(key)) was already used by another user in sale \(sale)"
        case .declined(let decline):
            decline.message
        case .holdExpired(let booking, let expiresAt):
            "booking \(booking) expired at \(expiresAt); book again"
        case .bookingCancelled(let booking):
            "booking \(booking) was cancelled and cannot be confirmed"
        case .bookingConfirmed(let booking):
            "booking \(booking) is confirmed; use \(CancelCommand.force.name) to cancel it and return the item to stock"
        case .totalBelowCommitted(let sale, let committed):
            "sale \(sale) has \(String.counted(committed, "item")) held or booked; the total cannot go below that"
        case .totalOverMaximum(let sale):
            "sale \(sale) would have more than \(maximumInventory) items"
        case .saleClosed(let sale):
            "sale \(sale) is closed, which is final"
        case .saleEnded(let sale, let endsAt):
            "sale \(sale) ended at \(endsAt.map { "\($0)" } ?? "")"
        case .settingOutOfRange(let setting):
            setting.outOfRangeMessage
        case .endsBeforeStarts(let starts, let ends):
            "\(CreateSaleCommand.ends.name) (\(ends)) must be after \(CreateSaleCommand.starts.name) (\(starts))"
        case .substringBlockOfNoAgent:
            "\(BlockCommands.contains.name) goes with agent blocks only"
        case .malformedRecord(let line, let reason):
            "line \(line): \(reason); nothing was enqueued (\(SubmitCommand.skipInvalid.name) leaves such lines out)"
        case .malformedHeader(let line, let reason):
            "line \(line): \(reason); nothing was enqueued"
        case .inRecord(let line, let refusal):
            "line \(line): \(refusal.message); nothing was enqueued"
        }
    }
}

extension Decline {
    var message: String {
        switch reason {
        case .notOpen:
            switch state {
            case .scheduled: "sale \(sale.id) opens at \(sale.startsAt)"
            case .paused: "sale \(sale.id) is paused; resume it to take bookings"
            case .ended: "sale \(sale.id) ended at \(sale.endsAt.map { "\($0)" } ?? "")"
            case .closed: "sale \(sale.id) is closed"
            case .open: "sale \(sale.id) is open"
            }
        case .blocked:
            switch blocked {
            case .block(let block)?: block.explanation
            case .perIPLimit(let requester, let kind, let active, let attempts)?:
                "\(kind == .network ? "network" : "address") \(requester) already has \(String.counted(active, "active booking")) in sale \(sale.id), "
                    + "the per-IP limit (\(String.counted(attempts, "attempt")) from \(requester) in this sale)"
            case nil: "the requester is blocked in sale \(sale.id)"
            }
        case .userLimit:
            "the user already has \(String.counted(sale.perUser, "active booking")) in sale \(sale.id), the limit"
        case .soldOut where lineWaiting:
            "sale \(sale.id) is sold out to direct bookings: its waitlist goes first; submit to join it"
        case .soldOut:
            "sale \(sale.id) is sold out"
        }
    }
}

/// Whether the directory `path` would be made in is there (for a bare name, the current one).
private func directoryExists(of path: String) -> Bool {
    guard let slash = path.lastIndex(of: "/") else { return true }
    var info = stat()
    let directory = slash == path.startIndex ? "/" : String(path[..<slash])
    return stat(directory, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
}

/// The commands that may create a database: "init or create-sale".
private var creators: String {
    CommandTable.all.filter(\.createsDatabase).map(\.name).joined(separator: " or ")
}

private extension SaleSetting {
    var outOfRangeMessage: String {
        switch self {
        case .inventory:
            "\(CreateSaleCommand.inventory.name) must be a whole number from 0 to \(maximumInventory)"
        case .hold:
            "\(CreateSaleCommand.hold.name) must be more than 0 and at most \(SaleDefinition.maximumHold)"
        case .perUser:
            "\(CreateSaleCommand.perUser.name) must be a whole number from 1 to \(maximumInventory)"
        case .perIP:
            "\(CreateSaleCommand.perIP.name) must be a whole number from 1 to \(maximumInventory)"
        }
    }
}

/// A failure a command has already said in its own log (serve's JSON lines on stderr): it
/// exits with the failure's code, and prints no line of its own, which would be the one
/// line of that log a JSON reader (`jq`, a log shipper) cannot read.
package struct LoggedFailure: Error {
    package let failure: FlashSaleError

    package init(_ failure: FlashSaleError) {
        self.failure = failure
    }
}
