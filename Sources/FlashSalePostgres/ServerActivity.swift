import NIOCore
import Synchronization

/// When the server last sent anything on a connection: the first handler of its channel,
/// nearest the socket, stamps every read. A wait for an answer gives up after so long
/// without a byte (`PostgresSession.answerLimit`), not after so long for the whole answer:
/// a page of a thousand rows over a slow link takes longer than any statement timeout and
/// is no server gone quiet (found by probing: `export` through a slow proxy failed 74).
final class ServerActivity: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    private let lastRead = Atomic<UInt64>(NIODeadline.now().uptimeNanoseconds)

    /// When the last bytes came (when the channel was made, before any).
    var lastHeard: NIODeadline { NIODeadline.uptimeNanoseconds(lastRead.load(ordering: .relaxed)) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastRead.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
        context.fireChannelRead(data)
    }
}
