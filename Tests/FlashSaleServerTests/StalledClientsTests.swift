@testable import FlashSaleServer
import Logging
import NIOCore
import NIOEmbedded
import Testing

/// A connection whose client takes nothing of its answer closes after 10 s, and after 1 s
/// once shutdown has begun; one whose client keeps taking some stays open, until 9 s after
/// shutdown began. On an embedded channel, whose clock moves only when told, and whose
/// unflushed writes are what waits in the server. Each close is logged with its peer and
/// its reason.
@Suite struct StalledClientsTests {
    private let log = RecordedLog()
    private let channel: EmbeddedChannel

    init() throws {
        let peer = try SocketAddress(ipAddress: "127.0.0.1", port: 8080)
        channel = EmbeddedChannel(handler: StalledClients(logger: log.logger, peer: peer))
        try channel.connect(to: peer).wait()
    }

    private func expectLoggedClose(_ reason: String) {
        #expect(log.lines == ["notice closed a stalled client's connection peer=127.0.0.1 reason=\(reason)"])
    }

    private func setWritable(_ writable: Bool) {
        channel.isWritable = writable
        channel.pipeline.fireChannelWritabilityChanged()
    }

    @Test func aClientThatReadsNothingFor10SecondsIsDisconnected() {
        setWritable(false)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(9_999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
        expectLoggedClose("it took none of its answers for 10 s")
    }

    @Test func aClientThatReadsAgainInTimeKeepsItsConnectionAndAFreshLimit() {
        setWritable(false)
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        setWritable(true)
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        setWritable(false)
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    /// The client takes some of what waits: as many bytes as were left gone out, and fewer
    /// left.
    private func clientTakesSome(leaving left: Int) {
        channel.flush()
        channel.write(ByteBuffer(repeating: 0, count: left), promise: nil)
    }

    /// 1,000 bytes wait for the client, which takes `step` of them every `interval`,
    /// `times` times.
    private func answerTaken(every interval: TimeAmount, times: Int, step: Int) {
        channel.write(ByteBuffer(repeating: 0, count: 1_000), promise: nil)
        setWritable(false)
        for time in 1...times {
            channel.embeddedEventLoop.advanceTime(by: interval)
            clientTakesSome(leaving: 1_000 - time * step)
        }
    }

    /// Found by probing: a client reading a large answer slowly but steadily was cut 10 s
    /// into it.
    @Test func aClientThatKeepsTakingSomeKeepsItsConnection() {
        answerTaken(every: .seconds(9), times: 9, step: 100)
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        // Looked at every 10 s: one that took nothing since the last look closes.
        channel.embeddedEventLoop.advanceTime(by: .seconds(11))
        #expect(!channel.isActive, "a client that took nothing more for 10 s")
    }

    @Test func shutdownDisconnectsAClientThatTakesNothingWithinASecond() {
        setWritable(false)
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
        expectLoggedClose("it took none of its answers for 1 s after the stop signal")
    }

    @Test func afterShutdownBeganAClientThatStopsReadingIsDisconnectedWithinASecond() {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(channel.isActive, "a connection whose answer drains finishes it")
        setWritable(false)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    /// Found by probing: at shutdown, a client reading at 1 MB/s pipelined answers larger
    /// than the kernel's buffers was cut at once, answers logged 200 lost.
    @Test func atShutdownAClientStillTakingSomeHasUntil9Seconds() {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        // Looked at from 0.5 s on, a second apart, and at 9 s, not 9.5.
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(500))
        answerTaken(every: .milliseconds(850), times: 9, step: 10)
        // 8.15 s.
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(849))
        #expect(channel.isActive, "8.999 s after shutdown began")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive, "9 s after shutdown began")
        expectLoggedClose("its answers were still waiting 9 s after the stop signal")
    }

    /// A stream's connection is above its high-water mark from each write to its flush
    /// (`ChannelBodyWriter`): that is no stall, at shutdown (where a stream's last event
    /// and its end are written) nor before.
    @Test(arguments: [false, true])
    func aMomentUnwritableUntilTheFlushIsNoStall(shuttingDown: Bool) {
        if shuttingDown { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        setWritable(false)
        setWritable(true)
        channel.embeddedEventLoop.run()
        channel.embeddedEventLoop.advanceTime(by: .seconds(20))
        #expect(channel.isActive)
        #expect(log.lines.isEmpty)
    }
}
