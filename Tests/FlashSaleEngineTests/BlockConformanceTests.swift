import Foundation
import Testing
import FlashSaleCore
import FlashSaleEngine
import FlashSaleTestSupport

@Suite struct BlockConformanceTests {
    /// Found by probing: on PostgreSQL, unblocks of one block at once each read it, then
    /// waited for the first's delete; the others deleted nothing, and still succeeded and
    /// logged their `unblocked` event. One removes it; the rest find no such block.
    @Test(arguments: stores, [nil, "s1"]) func unblocksOfOneBlockAtOnceRemoveItOnce(_ kind: StoreKind, sale: String?) throws {
        let f = try Fixture(kind)
        try f.sale()
        let block = try Block(kind: .user, value: "evil", contains: false, sale: sale.map { SaleID(trusted: $0) }, reason: nil,
                              createdAt: T)
        try f.engine.addBlock(block, clock: T)
        let removed = Counter(), notFound = Counter(), connected = Counter()
        let problems = Problems()
        let database = f.database, workers = 8
        let finished = DispatchGroup()
        for worker in 0..<workers {
            finished.enter()
            // A thread each, connected first, so that the unblocks meet (a connection to
            // PostgreSQL takes longer than an unblock).
            Thread {
                defer { finished.leave() }
                let store = Result { try database.connect() }
                connected.increment()
                for _ in 0..<30_000 where connected.value < workers { usleep(1_000) }
                do {
                    try Engine(store: try store.get()).removeBlock(block, clock: T)
                    removed.increment()
                } catch SaleError.blockNotFound {
                    notFound.increment()
                } catch {
                    problems.add("worker \(worker): \(error)")
                }
            }.start()
        }
        #expect(finished.wait(timeout: .now() + 60) == .success)
        #expect(problems.all == [])
        #expect(removed.value == 1)
        #expect(notFound.value == 7)
        #expect(try f.events().filter { $0.kind == .unblocked }.count == 1)
        #expect(try f.engine.blocks(in: nil).isEmpty)
    }
}
