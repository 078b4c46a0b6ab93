import FlashSaleCore

/// `book SALE --stream` (and, next, HTTP): decisions taken one by one, in order, and
/// committed in groups (one sync for many). The caller hands a decision back to its
/// requester only after `commit()` returned: what was answered is durable, and a crash
/// loses only unanswered decisions, which roll back.
public final class BookingStream {
    private let engine: Engine
    public let sale: SaleID
    /// The open transaction and the sale as written so far in it; nil when none is open.
    private var open: (transaction: any StoreTransaction, sale: Sale)?
    private var facts = TransactionFacts()

    /// Refuses at once (not found) when the sale does not exist.
    public init(engine: Engine, sale: SaleID) throws {
        self.engine = engine
        self.sale = sale
        _ = try engine.sale(sale)
    }

    /// Decides one request inside the open transaction, opening one if needed.
    public func decide(_ request: BookingRequest, clock: Instant) throws -> BookingOutcome {
        var (transaction, written) = try open ?? begin()
        do {
            let outcome = try engine.decideDirect(request, in: &written, transaction,
                                                  at: written.decisionTime(clock: clock), facts: facts)
            open = (transaction, written)
            return outcome
        } catch {
            abandon()
            throw error
        }
    }

    private func begin() throws -> (any StoreTransaction, Sale) {
        let transaction = try engine.store.beginWrite()
        do {
            let opened = (transaction, try transaction.requireSale(sale))
            open = opened
            facts = TransactionFacts()
            return opened
        } catch {
            transaction.rollback()
            throw error
        }
    }

    /// Makes every decision so far durable. On failure all of them are rolled back. A
    /// group of declines carries only their count, and is committed as telemetry.
    public func commit() throws {
        guard let (transaction, sale) = open else { return }
        open = nil
        do {
            try facts.writeCounters(of: sale.id, to: transaction)
            try transaction.commit(facts.commitContent)
        } catch {
            transaction.rollback()
            throw error
        }
    }

    /// Rolls back what is not committed.
    public func abandon() {
        open?.transaction.rollback()
        open = nil
    }
}
