import FlashSaleCore

extension Engine {
    /// What in the database shows that a write committed, found once it answers again.
    public enum CommitWitness: Sendable {
        /// A hold the write made: its id is random, so the booking there proves the commit,
        /// and its absence disproves it.
        case hold(BookingID, in: SaleID)
        /// The line cursor the write moved to (`process`): short of it, the write did not
        /// commit. At or past it, it did, or another worker decided the same requests
        /// since: that proves nothing.
        case lineCursor(RequestID, of: SaleID)
        /// Nothing to look at: the store's word alone (a group that only declined).
        case none
    }

    /// Whether a write whose COMMIT went unanswered (`cause`, the connection lost once it
    /// was sent) stands, asked once the database answers again; nil when that cannot be
    /// told. The store tells of its transaction by id, which a crash or a failover that lost
    /// the transaction hands out again (found by probing: another client's had committed,
    /// and `book --stream` printed a hold that was not there). So, but for a store sure
    /// that it did not commit, the write's `witness` tells when there is one: a hold
    /// present stands even when the store cannot tell (review).
    public func stands(unanswered cause: any Error, witness: CommitWitness) throws -> Bool? {
        let told = try store.committed(unanswered: cause)
        if told == false { return false }
        switch witness {
        case .none:
            return told
        case .hold(let id, let sale):
            if try store.read({ try $0.booking(id, in: sale) }) != nil { return true }
            return told.map { _ in false }
        case .lineCursor(let cursor, let sale):
            if try store.read({ try $0.lineCursor(of: sale) }) < cursor { return false }
            return told
        }
    }

    /// Whether a batch of `processBatch` whose COMMIT went unanswered stands, as above.
    public func stands(_ batch: UnansweredBatch) throws -> Bool? {
        try stands(unanswered: batch.cause, witness: batch.witness)
    }
}
