import NIOCore
import NIOPosix
import Testing
@testable import FlashSaleServer

/// What a buyer connection keeps for as long as it is open: with 10,000 of them open, each
/// byte of it counts 10,000 times in serve's memory.
@Suite struct ConnectionMemoryTests {
    /// A connection keeps the buffer its bytes were first read into (NIO reuses it for every
    /// later read): NIO's first one is 2 KiB, where a booking's request is about 150 bytes.
    @Test func aBuyerConnectionsFirstReceiveBufferIsSmall() async throws {
        let limit = ConnectionLimit(maximum: 10)
        let firstBuffer = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Int?.self)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(limit.handler())
                    firstBuffer.succeed(try channel.syncOptions?.getOption(ChannelOptions.recvAllocator).nextBufferSize())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(to: try #require(server.localAddress)).get()
        defer { client.close(promise: nil) }
        let size = try #require(try await firstBuffer.futureResult.get())
        #expect(size <= 256)
    }
}
