import FlashSaleCLI
import HTTPTypes
import Hummingbird

/// Responses as http.md has them: JSON bodies, errors as `{"error": {...}}`.
enum Answer {
    static func json(_ status: HTTPResponse.Status, _ value: JSON, location: String? = nil) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let location { headers[.location] = location }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: value.serialized)))
    }

    static func failure(_ failure: HTTPFailure) -> Response {
        var headers = failure.headers
        headers[.contentType] = "application/json"
        return Response(status: failure.status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: failure.body)))
    }

    static func text(_ status: HTTPResponse.Status, _ text: String, type: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: type], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
