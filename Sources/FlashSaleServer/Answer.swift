import FlashSaleCLI
import HTTPTypes
import HummingbirdCore
import NIOCore

/// Responses as http.md has them: JSON bodies, errors as `{"error": {...}}`. JSON answers
/// are `Cache-Control: no-store` unless their route says otherwise (the public sale): with
/// `--auth header` a buyer's request carries no `Authorization`, so a cache in front that
/// keys on the URL would otherwise hand one buyer's bookings to the next.
enum Answer {
    static func json(_ status: HTTPResponse.Status, _ value: JSON, location: String? = nil) -> Response {
        var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
        if let location { headers[.location] = location }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: value.serialized)))
    }

    static func failure(_ failure: HTTPFailure) -> Response {
        Response(status: failure.status, headers: fields(of: failure), body: ResponseBody(byteBuffer: ByteBuffer(string: failure.body)))
    }

    /// An error answer's header fields, the refusals' below Hummingbird (`MalformedRequests`)
    /// included: the failure's own, and JSON that is never stored.
    static func fields(of failure: HTTPFailure) -> HTTPFields {
        var headers = failure.headers
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return headers
    }

    static func text(_ status: HTTPResponse.Status, _ text: String, type: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: type], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
