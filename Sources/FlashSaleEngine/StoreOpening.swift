import FlashSaleCore

/// A database a front end opens as often as it needs (a server, a connection per thread),
/// whichever store holds it.
public struct StoreOpening: Sendable {
    /// Where it is, for messages and logs; never a password.
    public let description: String
    /// A new connection. `createIfMissing`: make the database (or its schema) if there is
    /// none, else refuse with `StoreFailure.missingDatabase`.
    public let open: @Sendable (_ createIfMissing: Bool) throws -> any Store

    public init(description: String, open: @escaping @Sendable (_ createIfMissing: Bool) throws -> any Store) {
        self.description = description
        self.open = open
    }
}
