import FlashSaleCore
import FlashSaleStore

/// The one place where any error becomes a contract error (and so an exit code).
enum ExitStatus {
    static func error(for error: any Error) -> FlashSaleError {
        switch error {
        case let error as FlashSaleError: error
        case let error as SQLiteError: error.flashSaleError
        case let error as MissingDatabase:
            .cantOpen("no flashsale database at \(error.path); \(creators) creates one")
        default: .internalFailure("unexpected error: \(error)")
        }
    }

    /// The commands that may create a database: "init or create-sale".
    private static var creators: String {
        CommandTable.all.filter(\.createsDatabase).map(\.name).joined(separator: " or ")
    }
}
