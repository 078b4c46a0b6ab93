@testable import FlashSaleServer
import NIOCore
import NIOEmbedded
import Testing

/// A connection whose client reads nothing of its answer closes after 10 s, and at once
/// once shutdown has begun; one whose client keeps reading stays open. On an embedded
/// channel, whose clock moves only when told.
@Suite struct StalledClientsTests {
    private let channel = EmbeddedChannel(handler: StalledClients())

    init() throws {
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
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

    @Test func shutdownDisconnectsAClientThatIsNotReadingAtOnce() {
        setWritable(false)
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!channel.isActive)
    }

    @Test func afterShutdownBeganAClientThatStopsReadingIsDisconnectedAtOnce() {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(channel.isActive, "a connection whose answer drains finishes it")
        setWritable(false)
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
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
    }
}
