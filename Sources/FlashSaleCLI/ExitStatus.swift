import FlashSaleCore
import FlashSaleStore

/// The one place where any error becomes a contract error (and so an exit code).
enum ExitStatus {
    static func error(for error: any Error) -> FlashSaleError {
        switch error {
        case let error as FlashSaleError: error
        case let error as SQLiteError: error.flashSaleError
        default: .internalFailure("unexpected error: \(error)")
        }
    }
}
