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
        for name in ["after", "limit"] where parameters[values: name[...]].count > 1 {
            throw HTTPFailure.badInput("\(name) is given more than once in the query")
        }
        after = parameters["after"].map { BookingID(path: String($0)) }
        guard let text = parameters["limit"] else {
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
