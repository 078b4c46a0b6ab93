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
        let partial = try PartialBackup(for: target)
        _ = try BackupFile.copy(from: f.store.db, to: partial.path)
        try Data("someone else's".utf8).write(to: URL(fileURLWithPath: target))
        #expect(failure { try partial.publish() } == BackupFile.taken(target))
        partial.discard()
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "someone else's")
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.directory.path).filter { $0.hasPrefix(".copy.db") }.isEmpty)
    }
}
