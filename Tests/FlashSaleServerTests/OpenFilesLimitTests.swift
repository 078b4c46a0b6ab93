@testable import FlashSaleServer
import Glibc
import Testing

/// serve raises its soft limit of descriptors to the hard one, as Go's runtime does: a
/// service manager's soft 1,024 is far below `--max-connections`.
@Suite struct OpenFilesLimitTests {
    @Test func theSoftLimitIsRaisedToTheHardOne() throws {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        try #require(getrlimit(resource, &limit) == 0)
        // One below the hard limit: this process's own, so that the raise has something to
        // do and nothing running beside this test runs short.
        var lowered = limit
        lowered.rlim_cur = limit.rlim_max - 1
        try #require(setrlimit(resource, &lowered) == 0)
        #expect(OpenFilesLimit.raise() == UInt64(limit.rlim_max))
        var after = rlimit()
        try #require(getrlimit(resource, &after) == 0)
        #expect(after.rlim_cur == limit.rlim_max)
    }
}
