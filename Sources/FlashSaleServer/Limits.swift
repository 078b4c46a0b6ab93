import HTTPTypes

/// What a request may be before anything reads it (http.md's 406 and 431).
enum Limits {
    /// The request's header fields, names and values, at most.
    static let maximumHeaderBytes = 16 * 1024
    /// The request's header fields at most, however short: the HTTP decoder's own limit
    /// (Hummingbird's default).
    static let maximumHeaderFields = 1000

    /// 431 for headers over 16 KiB: counted as they travel, `name: value\r\n` each.
    static func checkHeaders(_ fields: HTTPFields) throws {
        var total = 0
        for field in fields { total += field.name.rawName.utf8.count + field.value.utf8.count + 4 }
        guard total <= maximumHeaderBytes else {
            throw HTTPFailure.badInput("the headers are over \(maximumHeaderBytes) bytes", status: .requestHeaderFieldsTooLarge)
        }
    }

    /// 406 when `Accept` does not allow the type the route answers with (an error body is
    /// JSON whatever it says, as is usual): the most specific range that matches it decides
    /// (RFC 9110, 12.5.1), and `q=0` refuses. A range with a parameter the answer lacks
    /// (`application/json;level=1`) does not match it; a UTF-8 charset, which every answer
    /// is in, does. What follows `q` is an extension of the range's, not a parameter.
    static func checkAccept(_ fields: HTTPFields, for route: BuyerRoute) throws {
        guard let accept = fields[.accept] else { return }
        let produced = route == .events ? "text/event-stream" : "application/json"
        let type = produced.split(separator: "/")[0]
        var best: (specificity: Int, allowed: Bool)?
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";")
            let media = (parts.first ?? "").trimmingSpaces().lowercased()
            // A lone `*`, which older clients send (Java's default header), for `*/*`.
            let specificity = media == produced ? 3 : media == "\(type)/*" ? 2 : media == "*/*" || media == "*" ? 1 : 0
            guard specificity > (best?.specificity ?? 0) else { continue }
            let parameters = parts.dropFirst().compactMap(parameter)
            let weight = parameters.firstIndex { $0.name == "q" }
            guard parameters[..<(weight ?? parameters.endIndex)].allSatisfy(isUTF8Charset) else { continue }
            best = (specificity, weight.map { Double(parameters[$0].value) ?? 1 } ?? 1 > 0)
        }
        guard best?.allowed == true else {
            throw HTTPFailure.badInput("this route answers \(produced), which Accept does not allow", status: .notAcceptable)
        }
    }

    /// A media type's parameter, its name and its value (unquoted) lowercased, with spaces
    /// around either; nil for an empty one (`;;`). Found by probing: `charset = latin1`
    /// passed for a parameter that was no charset, and `; ;charset=utf-8` was refused by
    /// Accept where `;;charset=utf-8` was not.
    static func parameter(_ text: Substring) -> (name: String, value: String)? {
        let trimmed = text.trimmingSpaces()
        guard !trimmed.isEmpty else { return nil }
        guard let equals = trimmed.firstIndex(of: "=") else { return (trimmed.lowercased(), "") }
        var value = trimmed[trimmed.index(after: equals)...].trimmingSpaces()
        if value.count >= 2, value.first == "\"", value.last == "\"" { value = String(value.dropFirst().dropLast()) }
        return (trimmed[..<equals].trimmingSpaces().lowercased(), value.lowercased())
    }

    /// `charset=utf-8`, its value quoted or not.
    static func isUTF8Charset(_ parameter: (name: String, value: String)) -> Bool {
        parameter.name == "charset" && parameter.value == "utf-8"
    }

    /// A header's value as text, or nil when it was not valid UTF-8. The HTTP decoder has
    /// turned such bytes into U+FFFD by the time a route sees them, so that character
    /// stands for them: two users whose names differ only in bytes that are not text would
    /// otherwise be one ("caf\xE9" and "caf\xFF").
    static func text(_ value: String) -> String? {
        value.unicodeScalars.contains("\u{FFFD}") ? nil : value
    }

    /// Said with a refusal of `text`'s, for a client that did send U+FFFD itself.
    static let replacementNote = "(or holds U+FFFD, which stands for such bytes)"
}
