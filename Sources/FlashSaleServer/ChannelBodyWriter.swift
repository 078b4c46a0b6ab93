import Glibc
import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTPTypes

/// Writes an answer to its connection, on the connection's event loop (`Responder`): its
/// head, its body as the body writes it, and its end, from the request's task; or a
/// whole answer (`Answer`) at once, as a change's is when its group has committed.
///
/// A body of stated length is flushed once, with its end, as Hummingbird wrote head, body
/// and end in one flush: a flush per part cost a second system call per answer. A body
/// of no stated length is a stream (`EventFeed`), each part flushed as it is written, for
/// the client is waiting for it. A write that leaves the connection above its high-water
/// mark waits until it has gone out, so that a client that reads slowly holds back the
/// stream rather than filling the server's memory (`StalledClients` ends one that stops).
struct ChannelBodyWriter: ResponseBodyWriter {
    private let channel: any Channel
    private let streams: Bool

    /// While a stream is written, its connection is above its high-water mark as soon as
    /// anything waits in the server for the kernel to take it: a client that has stopped
    /// reading then holds its stream back once the kernel's buffer is full, and
    /// `StalledClients` sees it. Below NIO's default mark (64 KiB) what waited made nothing
    /// wait: a client that read nothing held its stream for ever, and SIGTERM for 60 s
    /// (found by probing). The mark before is put back after the stream, for the answers
    /// after a HEAD's, whose stream is its headers alone.
    private static let streamWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 1, high: 1)

    /// And the kernel holds at most this of a stream unsent (TCP_NOTSENT_LOWAT), so that the
    /// connection can take more as soon as its client has read a little: with the kernel's
    /// whole send buffer (up to 4 MiB) it could take more only once a third of it was free,
    /// and a client reading slowly but steadily looked stalled for 10 s and was cut (found
    /// by probing). A client that reads nothing still fills it and then stalls. It stays
    /// for the answers after a HEAD's stream, which are small.
    private static let streamUnsentBytes: SocketOptionValue = 64 * 1024

    /// Writes `response`; a body that fails closes the connection, its answer cut short
    /// (as Hummingbird's connection loop did).
    static func send(_ response: Response, on channel: any Channel) async {
        let streams = response.body.contentLength == nil
        // On the connection's loop (`Responder`); a connection closed already fails these,
        // and its stream's first write then ends it.
        let options = channel.syncOptions
        let markBefore = streams ? try? options?.getOption(ChannelOptions.writeBufferWaterMark) : nil
        if markBefore != nil {
            try? options?.setOption(ChannelOptions.writeBufferWaterMark, value: streamWaterMark)
            try? options?.setOption(ChannelOptions.tcpOption(.init(rawValue: TCP_NOTSENT_LOWAT)), value: streamUnsentBytes)
        }
        defer {
            if let markBefore { try? options?.setOption(ChannelOptions.writeBufferWaterMark, value: markBefore) }
        }
        channel.write(HTTPResponsePart.head(response.head), promise: nil)
        do {
            try await response.body.write(ChannelBodyWriter(channel: channel, streams: streams))
        } catch {
            channel.close(promise: nil)
        }
    }

    /// Writes `answer`, whole, as a body of stated length is: with no task to wait in.
    static func send(_ answer: Answer, on channel: any Channel) {
        channel.write(HTTPResponsePart.head(answer.head), promise: nil)
        channel.write(HTTPResponsePart.body(answer.body), promise: nil)
        channel.writeAndFlush(HTTPResponsePart.end(nil), promise: nil)
    }

    private init(channel: any Channel, streams: Bool) {
        self.channel = channel
        self.streams = streams
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        let written = channel.write(HTTPResponsePart.body(buffer))
        if streams { channel.flush() }
        // On a closed connection the write has failed: waited for, it ends a stream there.
        guard channel.isWritable, channel.isActive else {
            channel.flush()
            return try await written.get()
        }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        channel.writeAndFlush(HTTPResponsePart.end(trailingHeaders), promise: nil)
    }
}
