import FlashSaleCore
import HTTPTypes
import HummingbirdCore

/// `GET /booking-service/book-item/{sale}?after=BOOKING&limit=N`: which page of the user's
/// bookings. A query names each at most once; any other name is ignored, as unknown body
/// fields are.
struct BookingsPageQuery: Sendable {
    /// Bookings a page holds unless `limit` says otherwise, and at most.
    static let defaultLimit = 100
    static let maximumLimit = 1000
    static let link = HTTPField.Name("Link")!

    /// The booking the page starts after; nil: the first.
    let after: BookingID?
    let limit: Int

    init(_ parameters: FlatDictionary<Substring, Substring>) throws {
        // Names are decoded as values are (Hummingbird decodes values only): `l%69mit` was
        // ignored, where `limit=%32` was 2 (found by probing).
        let given = parameters.map { (name: $0.key.percentDecoded ?? String($0.key), value: $0.value) }
        func value(of name: String) throws -> Substring? {
            let found = given.filter { $0.name == name }
            guard found.count <= 1 else { throw HTTPFailure.badInput("\(name) is given more than once in the query") }
            return found.first?.value
        }
        after = try value(of: "after").map { BookingID(path: String($0)) }
        guard let text = try value(of: "limit") else {
            limit = Self.defaultLimit
            return
        }
        guard text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let limit = Int(text),
              (1...Self.maximumLimit).contains(limit) else {
            throw HTTPFailure.badInput("limit must be a whole number from 1 to \(Self.maximumLimit), not '\(Quoted(String(text)))'")
        }
        self.limit = limit
    }
}
