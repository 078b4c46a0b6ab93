import Foundation
import Testing

private func mode(of path: String) throws -> Int {
    try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
}

private func exists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

/// Which commands create the database, and what the others do with a path that is no database.
@Suite struct OpeningTests {
    /// A database created through a dangling symbolic link: the file made at its target,
    /// and the -wal and -shm beside it, are readable by their owner only.
    @Test func aDatabaseCreatedThroughADanglingLinkIsOwnerOnly() throws {
        let box = try Sandbox()
        let target = box.directory.appendingPathComponent("target.db").path
        try FileManager.default.createSymbolicLink(atPath: box.database, withDestinationPath: "target.db")
        #expect(try box.run(["create-sale", "s1", "--inventory", "5"]).status == 0)
        #expect(try mode(of: target) == 0o600)

        // A stream keeps its connection, so its -wal and -shm, open until its input ends.
        let stream = Process()
        stream.executableURL = URL(fileURLWithPath: flashsaleBinary)
        stream.arguments = ["--db", box.database, "book", "s1", "--stream"]
        stream.environment = ["PATH": "/usr/bin:/bin"]
        let input = Pipe()
        stream.standardInput = input
        stream.standardOutput = FileHandle.nullDevice
        stream.standardError = FileHandle.nullDevice
        try stream.run()
        defer {
            try? input.fileHandleForWriting.close()
            stream.waitUntilExit()
        }
        input.fileHandleForWriting.write(Data("{\"user\":\"u1\"}\n".utf8))
        while stream.isRunning, !(exists(target + "-wal") && exists(target + "-shm")) {
            usleep(1000)
        }
        #expect(stream.isRunning)
        #expect(try mode(of: target + "-wal") == 0o600)
        #expect(try mode(of: target + "-shm") == 0o600)
    }

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
