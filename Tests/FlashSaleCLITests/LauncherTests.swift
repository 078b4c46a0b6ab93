import Foundation
import Glibc
import Testing
import FlashSaleTestSupport

/// The launcher every subprocess test uses must give a child what a shell would, whatever
/// this process has set: an in-process `events` ignores SIGPIPE here, and a child that
/// inherited that could pass a SIGPIPE test by accident.
@Suite struct LauncherTests {
    @Test func aChildStartsWithSIGPIPEAtItsDefaultAction() throws {
        let box = try Sandbox()
        let previous = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previous) }
        // A non-interactive shell cannot undo a signal ignored on entry: it survives only if
        // it inherited SIG_IGN.
        let result = try box.execute("/bin/sh", ["-c", "kill -s PIPE $$; echo survived"])
        #expect(result.termination == .signal(SIGPIPE), "\(result.stdout)")
    }

    @Test func aChildRunsInTheSandboxWithOnlyTheEnvironmentGiven() throws {
        let box = try Sandbox()
        let result = try box.execute("/bin/sh", ["-c", "pwd; env"], environment: ["PATH": "/usr/bin:/bin", "ONLY": "this"])
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path } == box.directory.resolvingSymlinksInPath().path)
        #expect(lines.contains("ONLY=this"))
        #expect(!lines.contains { $0.hasPrefix("FLASHSALE") })
    }

    @Test func aKilledChildShowsItsSignal() throws {
        let box = try Sandbox()
        let child = try box.startShell("exec tail -f /dev/null")
        #expect(child.stop(SIGKILL) == .signal(SIGKILL))
        #expect(Termination.signal(SIGKILL).status == 128 + SIGKILL)
    }
}
