import Foundation

extension HTTPAnswer {
    /// The body as a JSON object (empty when it is not one).
    var object: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }

    /// The body as a JSON array of objects (empty when it is not one).
    var array: [[String: Any]] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [[String: Any]] ?? []
    }

    /// `error.code` of an error body.
    var errorCode: String? {
        (object["error"] as? [String: Any])?["code"] as? String
    }

    /// `error.message` of an error body.
    var errorMessage: String? {
        (object["error"] as? [String: Any])?["message"] as? String
    }

    /// A string field of the body's object.
    subscript(field name: String) -> String? { object[name] as? String }
}

/// The path of a booking, as `Location` names it.
func bookingPath(_ sale: String, _ booking: String) -> String {
    "/booking-service/book-item/\(sale)/\(booking)"
}
