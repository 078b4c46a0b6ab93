@testable import FlashSaleServer
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

/// `Deferred`: a future's result through composed functions, given once the future has
/// completed, in the order the functions were composed.
@Suite struct DeferredTests {
    private struct Refused: Error {}

    private let loop = EmbeddedEventLoop()

    @Test func theComposedValueComesOnceTheFutureCompletesAndNotBefore() {
        let promise = loop.makePromise(of: Int.self)
        let deferred = Deferred(promise.futureResult) { result in (try? result.get()).map { "\($0)" } ?? "failed" }
            .map { $0 + "!" }
            .map { [$0] }
        let given = NIOLockedValueBox<[[String]]>([])
        deferred.whenComplete { value in given.withLockedValue { $0.append(value) } }
        loop.run()
        #expect(given.withLockedValue { $0 }.isEmpty)
        promise.succeed(7)
        loop.run()
        #expect(given.withLockedValue { $0 } == [["7!"]])
    }

    @Test func aFailureIsTheFirstFunctionsToTurnIntoAValue() {
        let promise = loop.makePromise(of: Int.self)
        let given = NIOLockedValueBox<[String]>([])
        Deferred(promise.futureResult) { result in (try? result.get()).map { "\($0)" } ?? "failed" }
            .map { $0.uppercased() }
            .whenComplete { value in given.withLockedValue { $0.append(value) } }
        promise.fail(Refused())
        loop.run()
        #expect(given.withLockedValue { $0 } == ["FAILED"])
    }

    @Test func aValueAlreadyThereIsGivenAtOnce() async {
        let future = loop.makeSucceededFuture(2)
        let deferred = Deferred(future) { result in (try? result.get()) ?? 0 }.map { $0 * 21 }
        #expect(await deferred.value == 42)
    }
}
