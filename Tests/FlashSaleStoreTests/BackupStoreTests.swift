import Foundation
import Testing
import FlashSaleCore
import FlashSaleTestSupport
@testable import FlashSaleStore

@Suite struct BackupStoreTests {
    /// A file that takes the backup's name while the copy is being made is left as it was:
    /// the finished copy is refused the name, and its temporary file removed.
    @Test func aFileThatAppearsDuringTheCopyIsNeverReplaced() throws {
        let f = try StoreFixture()
        try f.sale()
        let target = f.directory.appendingPathComponent("copy.db").path
        let partial = try PartialFile(for: target, what: "backup")
        _ = try BackupFile.copy(from: f.store.db, into: partial)
        try Data("someone else's".utf8).write(to: URL(fileURLWithPath: target))
        #expect(try partial.publish(othersMayOpenIt: false) == false)
        partial.discard()
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "someone else's")
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.directory.path).filter { $0.hasPrefix(".copy.db") }.isEmpty)
    }

    /// Found by probing: a -wal that appeared beside the name while the copy was made was
    /// read into the copy once it had the name, and the backup said it was made. It is
    /// refused, as one there before the copy is, and the name stays free.
    @Test(arguments: ["-wal", "-journal"])
    func aLeftoverThatAppearsDuringTheCopyIsRefused(suffix: String) throws {
        let f = try StoreFixture()
        try f.sale()
        let target = f.directory.appendingPathComponent("copy.db").path
        let partial = try PartialFile(for: target, what: "backup")
        _ = try BackupFile.copy(from: f.store.db, into: partial)
        try Data("another database's".utf8).write(to: URL(fileURLWithPath: target + suffix))
        #expect(failure { _ = try partial.publish(othersMayOpenIt: false) }
                == .conflict("\(target)\(suffix) exists (left by an earlier database of that name); remove it or choose another name"))
        partial.discard()
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.directory.path).filter { $0.hasPrefix(".copy.db") }.isEmpty)
    }
}
