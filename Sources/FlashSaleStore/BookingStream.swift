import FlashSaleCore

/// `book SALE --stream`: decisions taken one by one, in order, and committed in groups
/// (one fsync for many). The caller prints a decision only after `commit()` returned: what
/// was printed is durable, and a crash loses only unprinted decisions, which roll back.
public final class BookingStream {
    public enum Decision: Sendable {
        case held(Booking)
        case repeated(Booking)
        case declined(Decline)
        /// A per-request refusal that does not stop the stream (a key reused by another user).
        case refused(FlashSaleError)
    }

    private let store: SaleStore
    private let saleID: SaleID
    /// The sale as committed so far in the open transaction; nil when none is open.
    private var sale: Sale?
    private var facts = TransactionFacts()

    /// Refuses at once (exit 3) when the sale does not exist.
    public init(store: SaleStore, sale: SaleID) throws {
        self.store = store
        self.saleID = sale
        _ = try store.sale(sale)
    }

    /// Decides one request inside the open transaction, opening one if needed.
    public func decide(_ request: BookingRequest, clock: Instant) throws -> Decision {
        if sale == nil {
            try store.db.execute("BEGIN IMMEDIATE")
            sale = try store.requireSale(saleID)
            facts = TransactionFacts()
        }
        guard let current = sale else { throw FlashSaleError.internalFailure("no sale in an open stream") }
        do {
            switch try store.decideHold(request, in: current, at: current.decisionTime(clock: clock), fromQueue: nil, facts: facts) {
            case .held(let booking):
                sale = try store.requireSale(saleID)
                return .held(booking)
            case .repeated(let booking):
                return .repeated(booking)
            case .declined(let decline):
                return .declined(decline)
            case .waiting:
                throw FlashSaleError.internalFailure("a direct booking was told to wait")
            }
        } catch let error as FlashSaleError where error.exitCode == 4 {
            // Refused before it wrote anything: the transaction and the stream go on.
            return .refused(error)
        } catch {
            abandon()
            throw error
        }
    }

    /// Whether decisions are waiting for a commit.
    public var hasPending: Bool { sale != nil }

    /// Makes every decision so far durable. On failure all of them are rolled back.
    public func commit() throws {
        guard sale != nil else { return }
        sale = nil
        do {
            try store.db.execute("COMMIT")
        } catch {
            store.db.rollback()
            throw error
        }
    }

    /// Rolls back what is not committed.
    public func abandon() {
        sale = nil
        store.db.rollback()
    }
}
