/// What a command has done that a failed write of its output does not undo, which that
/// failure's message says (exit 74 is not "nothing happened"): a script that tries again
/// must not take a made backup for a missing one, or a committed hold for none.
enum LastingWork: CustomStringConvertible {
    /// Changes committed to the database: --db's, or copy-to's target.
    case committed
    /// A backup made whole at `path`.
    case backup(path: String)
    /// The database made, or migrated, by `init`.
    case databaseReady

    var description: String {
        switch self {
        case .committed: "its changes to the database are committed"
        case .backup(let path): "the backup \(path.controlCharactersEscaped) is whole"
        case .databaseReady: "the database is ready"
        }
    }
}
