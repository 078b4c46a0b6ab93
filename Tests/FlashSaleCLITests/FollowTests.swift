import Foundation
import Testing

@Suite struct FollowTests {
    /// `process --follow` decides requests submitted while it runs, and on SIGTERM finishes
    /// and exits 0 with its summary.
    @Test func followDecidesNewRequestsUntilTerminated() throws {
        let box = try Sandbox()
        try box.run(["create-sale", "s1", "--inventory", "5"], now: nil)
        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: flashsaleBinary)
        follower.arguments = ["--db", box.database, "process", "--follow"]
        follower.environment = ["PATH": "/usr/bin:/bin"]
        let output = Pipe()
        follower.standardOutput = output
        follower.standardError = FileHandle.nullDevice
        try follower.run()
        defer { if follower.isRunning { kill(follower.processIdentifier, SIGKILL) } }

        let id = try box.run(["submit", "s1", "alice"], now: nil).line
        // Wait for the follower to decide it: it polls ten times a second.
        let deadline = Date().addingTimeInterval(10)
        var status = "queued"
        while status == "queued", Date() < deadline {
            status = try box.run(["request", id, "--json"], now: nil).json()["status"] as? String ?? "?"
            if status == "queued" { usleep(20_000) }
        }
        #expect(status == "accepted")

        follower.terminate()  // SIGTERM
        follower.waitUntilExit()
        #expect(follower.terminationReason == .exit)
        #expect(follower.terminationStatus == 0)
        let summary = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(summary == "1 accepted, 0 rejected\n")
    }
}
