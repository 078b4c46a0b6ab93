import FlashSaleCLI
import HTTPTypes
import HummingbirdCore
import NIOCore

/// An answer whose body is whole in memory, as every JSON answer's is, with its
/// `Content-Length`: written at once, with no task (`ChannelBodyWriter`), as a change's is
/// when its group has committed (`Reply`).
///
/// Answers as http.md has them: JSON bodies, errors as `{"error": {...}}`. JSON answers
/// are `Cache-Control: no-store` unless their route says otherwise (the public sale): with
/// `--auth header` a buyer's request carries no `Authorization`, so a cache in front that
/// keys on the URL would otherwise hand one buyer's bookings to the next.
struct Answer: Sendable {
    var head: HTTPResponse
    let body: ByteBuffer

    private init(_ status: HTTPResponse.Status, _ fields: HTTPFields, _ body: String) {
        self.body = ByteBuffer(string: body)
        head = HTTPResponse(status: status, headerFields: fields)
        head.headerFields[.contentLength] = String(self.body.readableBytes)
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSON, location: String? = nil) -> Answer {
        var fields: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
        if let location { fields[.location] = location }
        return Answer(status, fields, value.serialized)
    }

    /// An error answer: the failure's own header fields, and JSON that is never stored.
    static func failure(_ failure: HTTPFailure) -> Answer {
        var fields = failure.headers
        fields[.contentType] = "application/json"
        fields[.cacheControl] = "no-store"
        return Answer(failure.status, fields, failure.body)
    }

    static func text(_ status: HTTPResponse.Status, _ text: String, type: String = "text/plain; charset=utf-8") -> Answer {
        Answer(status, [.contentType: type], text)
    }

    /// The answer as Hummingbird's response, for an answer given now (`Reply.now`).
    var response: Response {
        Response(status: head.status, headers: head.headerFields, body: ResponseBody(byteBuffer: body))
    }
}
