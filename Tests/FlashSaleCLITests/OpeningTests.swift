import Foundation
import Testing

/// Which commands create the database, and what the others do with a path that is no database.
@Suite struct OpeningTests {
    /// The first use of a new file by many processes at once: one of them creates the
    /// schema, the others wait for it (within --busy-timeout) and use it; none fails.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/flock"), "flock(1) is not installed"))
    func manyProcessesCreatingTheSameNewDatabaseAllSucceed() throws {
        let box = try Sandbox()
        // Each process waits for a shared lock on the gate, which the test holds exclusively
        // until all have started: released, they open the new file all at once.
        let gatePath = try box.file("gate", "")
        let gate = open(gatePath, O_RDONLY)
        defer { close(gate) }
        for round in 0..<6 {
            let database = "\(box.database).\(round)"
            flock(gate, LOCK_EX)
            let processes = try (0..<32).map { index in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
                process.arguments = ["--shared", gatePath, flashsaleBinary, "--db", database]
                    + (index == 0 ? ["init"] : ["create-sale", "s\(index)", "--inventory", "1"])
                process.environment = ["PATH": "/usr/bin:/bin"]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: try box.file("err.\(round).\(index)", "")))
                try process.run()
                return process
            }
            flock(gate, LOCK_UN)
            for (index, process) in processes.enumerated() {
                process.waitUntilExit()
                let message = try String(contentsOfFile: box.directory.appendingPathComponent("err.\(round).\(index)").path, encoding: .utf8)
                #expect(process.terminationStatus == 0, "round \(round), process \(index): \(message)")
            }
            let sales = try box.run(["--db", database, "sales", "--json"], database: false).jsonArray()
            #expect(sales.count == 31)
        }
    }
}
