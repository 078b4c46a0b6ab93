import Glibc
import NIOCore

/// Each connection is a descriptor. A service manager's soft limit (systemd's 1,024 by
/// default, with a hard limit of 524,288) is far below `--max-connections` (10,000): past
/// it, accepting failed over and over while the admin listener could take no connection
/// either (found by probing). As Go's runtime does at start-up, serve raises its soft limit
/// to the hard one, which needs no privilege, and says in its log when that is still below
/// what it may be asked to hold.
enum OpenFilesLimit {
    /// Raises the soft limit to the hard one; the limit in force after.
    static func raise() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }

    /// Descriptors serve keeps beside its buyers' connections: the database's files, the
    /// listeners, the admin's connections, and the event loops' own, three for each core's
    /// loop (its epoll, eventfd and timerfd: found by review, a fixed 64 left too few on a
    /// host of many cores).
    static var reserve: UInt64 { 64 + 3 * UInt64(System.coreCount) }

    /// The buyer connections serve holds at once under a limit of `openFiles`: `asked`, or
    /// what the limit leaves beside the reserve. One past it is closed as it is accepted,
    /// which takes a descriptor for a moment; with none left, accepting failed over and
    /// over, a core spinning on it, and the connections past the limit waited unserved and
    /// unclosed (found by probing), since the kernel keeps them queued for the next try.
    static func connections(asked: Int, openFiles: UInt64) -> Int {
        openFiles > reserve ? Int(min(UInt64(asked), openFiles - reserve)) : 0
    }
}
