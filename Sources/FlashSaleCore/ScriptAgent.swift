/// User agents of HTTP libraries, command-line tools, crawlers and headless browsers.
public enum ScriptAgent {
    /// Matched case-insensitively anywhere in the agent text.
    public static let markers = ["curl", "wget", "python", "requests", "go-http-client", "java", "okhttp", "libwww",
                                 "scrapy", "httpclient", "bot", "spider", "headless"]

    /// The word of `agent` that gives it away (`python-requests`, `HeadlessChrome`,
    /// `Googlebot`), or nil for an agent that looks like a browser.
    public static func name(in agent: String) -> String? {
        let bytes = Array(agent.utf8)
        let lowered = bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }
        var found: Int?
        for marker in markers {
            if let start = firstIndex(of: Array(marker.utf8), in: lowered), start < (found ?? Int.max) {
                found = start
            }
        }
        guard let found else { return nil }
        // Widen the match to its word: product names end at a slash, a space or punctuation.
        let separators: Set<UInt8> = [0x20, 0x2F, 0x3B, 0x28, 0x29, 0x2C, 0x09]
        var start = found
        while start > 0, !separators.contains(bytes[start - 1]) { start -= 1 }
        var end = found
        while end < bytes.count, !separators.contains(bytes[end]) { end += 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count)
        where haystack[start] == needle[0] && haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }
}
