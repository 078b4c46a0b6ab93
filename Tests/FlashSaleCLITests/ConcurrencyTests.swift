import Foundation
import Testing

/// Many flashsale processes on one database at once, as a sale day runs them.
@Suite struct ConcurrencyTests {
    /// 16 workers, each running `book` processes for its share of 1,000 distinct users
    /// against 100 items, cancelling every fifth hold it gets and running `sweep` every
    /// tenth step: the counts must come out exact, no user twice, no busy failure.
    @Test(arguments: commandLineStores)
    func sixteenProcessesNeverOversellOrFail(store: TestStore) throws {
        let box = try Sandbox(store)
        try box.run(["create-sale", "s1", "--inventory", "100"], now: nil)
        let log = OutcomeLog()
        DispatchQueue.concurrentPerform(iterations: 16) { worker in
            var mine: [String] = []
            for (step, user) in stride(from: worker, to: 1000, by: 16).enumerated() {
                let book = (try? box.spawn(["book", "s1", "u\(user)"], now: nil)) ?? Result(status: -1, stdout: "", stderr: "")
                log.record("book", book)
                if book.status == 0 { mine.append(book.line) }
                if book.status == 0, mine.count % 5 == 0 {
                    log.record("cancel", (try? box.spawn(["cancel", "s1", book.line], now: nil)) ?? Result(status: -1, stdout: "", stderr: ""))
                }
                if step % 10 == 0 {
                    log.record("sweep", (try? box.spawn(["sweep"], now: nil)) ?? Result(status: -1, stdout: "", stderr: ""))
                }
            }
        }

        #expect(log.unexpected.isEmpty, "unexpected outcomes: \(log.unexpected.prefix(5))")
        let booked = log.count("book", 0)
        let cancelled = log.count("cancel", 0)
        #expect(booked + log.count("book", 6) == 1000)
        // Every item was handed out, some more than once after a cancel.
        #expect(booked >= 100)
        let sale = try box.run(["status", "s1", "--json"], now: nil).json()
        #expect(sale["held"] as? Int == booked - cancelled)
        #expect(sale["cancelled"] as? Int == cancelled)
        #expect(sale["available"] as? Int == 100 - (booked - cancelled))
        let bookings = try box.run(["bookings", "s1", "--json"], now: nil).jsonArray()
        #expect(bookings.count == booked)
        #expect(Set(bookings.compactMap { $0["user"] as? String }).count == booked)
        #expect(try box.run(["verify"], now: nil).stdout == "ok\n")

        // Once every hold has expired, everything not sold is back in stock.
        #expect(try box.run(["sweep"], now: "2099-01-01T00:00:00Z").line == String(booked - cancelled))
        #expect(try box.run(["status", "s1", "--json"], now: nil).json()["available"] as? Int == 100)
    }
}

/// Exit statuses by command, from many threads.
final class OutcomeLog: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    private(set) var unexpected: [String] = []

    /// book may hold (0) or find the sale sold out (6); cancel and sweep must succeed.
    func record(_ command: String, _ result: Result) {
        lock.lock()
        defer { lock.unlock() }
        counts["\(command) \(result.status)", default: 0] += 1
        let allowed: Set<Int32> = command == "book" ? [0, 6] : [0]
        if !allowed.contains(result.status) {
            unexpected.append("\(command) exited \(result.status): \(result.stderr)")
        }
    }

    func count(_ command: String, _ status: Int32) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return counts["\(command) \(status)"] ?? 0
    }
}
