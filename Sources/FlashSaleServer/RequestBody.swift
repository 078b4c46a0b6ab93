import FlashSaleCore
import HTTPTypes
import HummingbirdCore
import NIOCore

/// A buyer request's JSON body (http.md, "Bodies"): at most 4096 bytes after de-chunking,
/// `application/json` when there is one, none meaning `{}`; unknown fields ignored. Read
/// as `book --stream` reads a line (`JSONStringObject`).
struct RequestBody {
    let key: String?
    let status: String?

    /// The member an endpoint reads. Any other is ignored, whatever it holds, as http.md
    /// says of unknown fields (found by probing: `{"status": 5}` was a 400 for a booking,
    /// which reads no status).
    enum Field: String {
        case key, status
    }

    static let maximumBytes = 4096

    /// The body of `request`, read and checked: 413, 415 or 400 when it is not one (411,
    /// an HTTP/1.0 body without a length, is `HTTP1Rules`'s).
    static func read(_ request: Request, reading field: Field) async throws -> RequestBody {
        let tooLarge = HTTPFailure.badInput("the body is over \(maximumBytes) bytes", status: .contentTooLarge)
        if let length = request.headers.value(.contentLength).flatMap(Int.init), length > maximumBytes { throw tooLarge }
        let bytes: ByteBuffer
        do {
            bytes = try await request.body.collect(upTo: maximumBytes)
        } catch is NIOTooManyBytesError {
            // A chunked body, which no Content-Length announced, found too long as it is read.
            throw tooLarge
        }
        return try parse(bytes, reading: field, contentType: request.headers.value(.contentType),
                         contentEncoding: request.headers.value(.contentEncoding))
    }

    /// Synchronous and never inlined into `read`: what an async function holds stays in its
    /// request's task until the task ends (see `BuyerAPI`), and a decoder's temporaries
    /// need not.
    @inline(never)
    private static func parse(_ bytes: ByteBuffer, reading field: Field, contentType: String?, contentEncoding: String?) throws -> RequestBody {
        guard bytes.readableBytes > 0 else { return RequestBody(key: nil, status: nil) }
        guard isJSON(contentType) else {
            throw HTTPFailure.badInput("the body must be Content-Type: application/json, in UTF-8", status: .unsupportedMediaType)
        }
        // A content coding serve would not undo (RFC 9110, 8.4): read as it came, a gzipped
        // body was "not valid UTF-8", and a plain one that said gzip was taken as plain.
        if let contentEncoding, contentEncoding.lowercased() != "identity" {
            throw HTTPFailure.badInput("the body must not be encoded (Content-Encoding: \(Quoted(contentEncoding)))",
                                       status: .unsupportedMediaType)
        }
        // Most bookings carry `{}`: nothing to read in a body that says nothing.
        if bytes.readableBytesView.elementsEqual("{}".utf8) { return RequestBody(key: nil, status: nil) }
        do {
            let value = try bytes.withUnsafeReadableBytes { bytes throws(FlashSaleError) in
                try JSONStringObject.strings(in: bytes.assumingMemoryBound(to: UInt8.self), named: [field.rawValue])[0]
            }
            return field == .key ? RequestBody(key: value, status: nil) : RequestBody(key: nil, status: value)
        } catch {
            throw HTTPFailure.badInput("the body: \(error.message)")
        }
    }

    /// `application/json`, in any case, with parameters (`; charset=utf-8`) or without,
    /// but for a charset other than UTF-8 (found by probing: a body declared ISO-8859-1 was
    /// read as UTF-8 and refused as not valid, 400, where the request's Accept is held to
    /// the same rule, 406). Compared as bytes, parameters too: a media type is ASCII, and
    /// splitting, trimming and lowercasing it as Strings, on every request with a body,
    /// was about 1% of serve's CPU.
    private static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        var media = contentType.utf8[...]
        if let semicolon = media.firstIndex(of: UInt8(ascii: ";")) {
            guard namesNoOtherCharset(media[media.index(after: semicolon)...]) else { return false }
            media = media[..<semicolon]
        }
        return equalsIgnoringCase(trimmed(media), "application/json")
    }

    /// Whether a media type's parameters (`charset=utf-8; q=1`, each read as
    /// `Limits.parameter` reads it) name no charset but UTF-8, its value quoted or not.
    private static func namesNoOtherCharset(_ parameters: Substring.UTF8View.SubSequence) -> Bool {
        var rest = parameters
        while !rest.isEmpty {
            let end = rest.firstIndex(of: UInt8(ascii: ";")) ?? rest.endIndex
            let parameter = rest[..<end]
            rest = end == rest.endIndex ? rest[end...] : rest[rest.index(after: end)...]
            let equals = parameter.firstIndex(of: UInt8(ascii: "="))
            guard equalsIgnoringCase(trimmed(parameter[..<(equals ?? parameter.endIndex)]), "charset") else { continue }
            guard let equals else { return false }
            var value = trimmed(parameter[parameter.index(after: equals)...])
            let quote = UInt8(ascii: "\"")
            if value.count >= 2, value.first == quote, value.last == quote { value = value.dropFirst().dropLast() }
            guard equalsIgnoringCase(value, "utf-8") else { return false }
        }
        return true
    }

    /// `bytes` without the spaces and tabs around them.
    private static func trimmed(_ bytes: Substring.UTF8View.SubSequence) -> Substring.UTF8View.SubSequence {
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var bytes = bytes
        while let first = bytes.first, isSpace(first) { bytes = bytes.dropFirst() }
        while let last = bytes.last, isSpace(last) { bytes = bytes.dropLast() }
        return bytes
    }

    /// Whether `bytes` are `lowercase` (ASCII) in any case.
    private static func equalsIgnoringCase(_ bytes: Substring.UTF8View.SubSequence, _ lowercase: StaticString) -> Bool {
        let lower = { (byte: UInt8) in UInt8(ascii: "A")...UInt8(ascii: "Z") ~= byte ? byte + 32 : byte }
        return lowercase.withUTF8Buffer { bytes.lazy.map(lower).elementsEqual($0) }
    }

    /// The idempotency key: `""` or `null` is none; otherwise held to the command line's limits.
    func checkedKey() throws -> String? {
        do {
            return try TextField.key.validate(key ?? "", required: false)
        } catch {
            // The message names the key itself: "the body: key is 257 bytes; ..." (found by
            // probing: "key: key is ...").
            throw HTTPFailure.badInput("the body: \(error.message)")
        }
    }

    /// The `status` a PUT or DELETE must carry (`booked`, `deleted`); a DELETE may carry none.
    func requireStatus(_ expected: String, optional: Bool) throws {
        if status == nil, optional { return }
        guard status == expected else {
            throw HTTPFailure.badInput("status must be \"\(expected)\"")
        }
    }
}
