import FlashSaleCore

extension Engine {
    /// Whether a write whose COMMIT went unanswered (`cause`, the connection lost once it
    /// was sent) stands, asked once the database answers again; nil when that cannot be
    /// told. The store tells of its transaction by id, which a crash or a failover that lost
    /// the transaction hands out again (found by probing: another client's had committed,
    /// and `book --stream` printed a hold that was not there). So once the store says the
    /// transaction is done, the write's last new hold, present or not, tells, when it made
    /// one.
    public func stands(unanswered cause: any Error, lastHold: BookingID?, in sale: SaleID) throws -> Bool? {
        let told = try store.committed(unanswered: cause)
        guard told != nil, let lastHold else { return told }
        return try store.read { try $0.booking(lastHold, in: sale) } != nil
    }

    /// Whether a batch of `processBatch` whose COMMIT went unanswered stands, as above.
    public func stands(_ batch: UnansweredBatch) throws -> Bool? {
        try stands(unanswered: batch.cause, lastHold: batch.lastHold, in: batch.sale)
    }
}
