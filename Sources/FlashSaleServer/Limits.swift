import HTTPTypes

/// What a request may be before anything reads it (http.md's 406 and 431).
enum Limits {
    /// The request's header fields, names and values, at most.
    static let maximumHeaderBytes = 16 * 1024

    /// 431 for headers over 16 KiB: counted as they travel, `name: value\r\n` each.
    static func checkHeaders(_ fields: HTTPFields) throws {
        var total = 0
        for field in fields { total += field.name.rawName.utf8.count + field.value.utf8.count + 4 }
        guard total <= maximumHeaderBytes else {
            throw HTTPFailure.badInput("the headers are over \(maximumHeaderBytes) bytes", status: .requestHeaderFieldsTooLarge)
        }
    }

    /// 406 when `Accept` names no type the route answers with (an error body is JSON
    /// whatever it says, as is usual).
    static func checkAccept(_ fields: HTTPFields, for route: BuyerRoute) throws {
        guard let accept = fields[.accept] else { return }
        let produced = route == .events ? "text/event-stream" : "application/json"
        let type = produced.split(separator: "/")[0]
        let ranges = accept.split(separator: ",").map { range in
            (range.split(separator: ";").first ?? "").trimmingSpaces().lowercased()
        }
        guard ranges.contains(where: { $0 == "*/*" || $0 == "\(type)/*" || $0 == produced }) else {
            throw HTTPFailure.badInput("this route answers \(produced), which Accept does not allow", status: .notAcceptable)
        }
    }
}
