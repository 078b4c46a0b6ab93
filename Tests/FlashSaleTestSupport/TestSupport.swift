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

/// SplitMix64 (Steele, Lea and Flood): a tiny generator whose every output follows from the
/// seed, on any machine and any Swift, so a random test's failure can be replayed.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
