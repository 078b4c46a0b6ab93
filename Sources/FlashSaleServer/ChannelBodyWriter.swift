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
/// the client is waiting for it. A stream's write that leaves anything waiting in the
/// server for the kernel (above the connection's high-water mark, one byte:
/// `StalledClients`) waits until it has gone out, so that a client that reads slowly holds
/// back the stream rather than filling the server's memory (`StalledClients` ends one that
/// stops).
struct ChannelBodyWriter: ResponseBodyWriter {
    private let channel: any Channel
    private let streams: Bool

    /// Writes `response`; a body that fails closes the connection, its answer cut short
    /// (as Hummingbird's connection loop did).
    static func send(_ response: Response, on channel: any Channel) async {
        let streams = response.body.contentLength == nil
        // A connection closed already fails this, and its stream's first write then ends it.
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
        // A body of stated length is whole in memory already: it waits for nothing, and
        // goes out with its end.
        guard streams else { return }
        channel.flush()
        // On a closed connection the write has failed: waited for, it ends a stream there.
        guard channel.isWritable, channel.isActive else {
            return try await written.get()
        }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        channel.writeAndFlush(HTTPResponsePart.end(trailingHeaders), promise: nil)
    }
}
