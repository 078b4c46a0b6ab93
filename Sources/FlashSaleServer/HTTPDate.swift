import Glibc
import Synchronization

/// RFC 9110's IMF-fixdate (5.6.7), `Sun, 06 Nov 1994 08:49:37 GMT`, for the `Date` of every
/// answer (`HTTP1Rules` writes it); in English whatever the locale, as the format has it.
///
/// Hummingbird's own is a copy made once a second by a timer not set on the second, so it
/// lagged the clock by up to two seconds (1.35 s seen): a cache that reckons an answer's age
/// from its `Date` took the public sale, fresh for one second, for stale on arrival. This
/// one is the second the answer is written in, formatted once a second.
enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    private static let latest = Mutex((second: time_t(0), text: format(0)))

    static func now() -> String {
        let second = time(nil)
        return latest.withLock { latest in
            if latest.second != second { latest = (second, format(second)) }
            return latest.text
        }
    }

    static func format(_ seconds: time_t) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func twoDigits(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(twoDigits(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(1900 + parts.tm_year) "
            + "\(twoDigits(parts.tm_hour)):\(twoDigits(parts.tm_min)):\(twoDigits(parts.tm_sec)) GMT"
    }
}
