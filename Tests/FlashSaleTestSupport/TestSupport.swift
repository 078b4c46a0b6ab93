import Foundation
import FlashSaleCore
import FlashSaleEngine

/// The tests' fixed clock: 2026-11-24T15:00:00Z.
public let T = Instant(milliseconds: 1_795_532_400_000)

/// `m` minutes after T.
public func minutes(_ m: Int64) -> Instant { T.adding(.seconds(m * 60)) }

/// The contract error a call threw, or nil.
public func failure(_ body: () throws -> Void) -> FlashSaleError? {
    do {
        try body()
        return nil
    } catch let error as FlashSaleError {
        return error
    } catch let refusal as SaleError {
        return FlashSaleError(refusal.code, "\(refusal)")
    } catch let error as any StoreError {
        return FlashSaleError(error.failure?.code ?? .internalFailure, "\(error)")
    } catch let failure as StoreFailure {
        return FlashSaleError(failure.code, "\(failure)")
    } catch {
        return .internalFailure("\(error)")
    }
}

public func counters(_ total: Int64, available: Int64, held: Int64, booked: Int64, cancelled: Int64 = 0,
                     expired: Int64 = 0) -> Counters {
    Counters(total: total, available: available, held: held, booked: booked, cancelled: cancelled, expired: expired)
}

/// A store's column list (its saleColumns, bookingColumns) in reverse order, without
/// `leaving`: a SELECT whose decoders must find their columns by name, not position.
public func reversedColumns(_ columns: String, leaving: String? = nil) -> String {
    columns.split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        .filter { $0 != leaving }.reversed().joined(separator: ", ")
}

/// Runs `body` on a thread of its own and waits for it without holding a thread. For a
/// test whose work blocks for minutes (a store's synchronous round trips): on one of
/// Swift's cooperative threads, two on a two-core machine, it would keep every async test
/// waiting for a thread meanwhile. `body` runs outside the test's task: it reports what
/// it found by what it returns, not by `Issue.record`.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A test's own failure, thrown with what went wrong: from a helper that cannot record an
/// issue itself, or from work done off the test's task.
public struct Failed: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
