import FlashSaleNIO
import Glibc
import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// A connection's last handler (`RulesChannel`): answers its requests one at a time, in
/// order, each in a task of its own on the connection's event loop, with `respond`'s
/// response (written by `ChannelBodyWriter`). Hummingbird's HTTP1Channel did this in one
/// task per connection, through async streams of the request's parts and of the answer's,
/// two thread hops per request. Measured on serve (bench/README.md): 244k instructions
/// per decline against 277k, 350k per hold against 390k (callgrind), and 15.5 KiB of peak
/// RSS per connection held at 10,000 connections against 21.2–21.5.
///
/// A change's task ends once its change is queued (`Reply.later`): its answer, whole, is
/// written when its future completes, on this loop, with no task.
///
/// What Hummingbird's loop did, this does:
/// - A request starts once its body has come whole, or at the end of the read that
///   brought its head without it: a responder may answer on the head alone (a 404, a 401)
///   while the client has not sent its body, or waits to (`Expect: 100-continue`); one
///   that reads it waits for its parts (`ArrivingBody`). A body past
///   `RequestBody.maximumBytes` is passed on only that far (a reader refuses it, 413), and
///   the rest dropped as it comes: the connection then goes on with the next request.
/// - What arrives behind a request being answered (pipelined requests, an error, the
///   client closing its side) is held until the answer has ended and gone to the kernel
///   (the connection is writable again), and the connection reads no more while it holds
///   `holdLimit`: answers go out in order, and one client cannot fill the server's memory
///   with requests, nor with answers. Before, the next request started as soon as the
///   answer before it was written, so a client that pipelined requests and read slowly,
///   or not at all, had them all answered into the server's memory (found by probing:
///   10,000 pipelined `GET /openapi.json` took serve from 25 to 533 MB in 4 s).
/// - A request that says `Connection: close` (`HTTP1Rules` says it for every one that
///   closes) closes the connection's output after its answer; the client then closes.
/// - An error in a request's body is its responder's to meet; the connection closes
///   after its answer (which says `Connection: close`), as after the client has closed
///   its side and everything read before is answered.
final class Responder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What the connection brings, in order.
    private enum Arrival {
        case part(HTTPRequestPart)
        case failure(any Error)
        case inputClosed
    }

    private let respond: @Sendable (Request, ClientConnection) async -> Reply<Response, Answer>
    private let connection: ClientConnection
    private let executor: EventLoopTaskExecutor

    /// A request whose head has been read and which has not started: its body so far.
    private var unstarted: (head: HTTPRequest, body: ByteBuffer?)?
    /// The bytes of the last request's body read so far.
    private var bodyBytes = 0
    /// A request has started and its answer has not ended.
    private var answering = false
    /// The started request's body is still arriving: its parts go to `arriving` (nil past
    /// the limit, when they go nowhere).
    private var readingBody = false
    private var arriving: ArrivingBody?
    /// What arrived behind the answer under way. (An array, which allocates nothing until
    /// a request is pipelined, on each of thousands of open connections.)
    private var held: [Arrival] = []
    /// A read was asked for while `holdLimit` arrivals were held: made once fewer are.
    private var readHeld = false
    /// Arrivals held before the connection stops reading, as Hummingbird's async stream of
    /// request parts stopped (its high-water mark): it still sees its client close its side
    /// behind a pipelined request while an event stream is sent (`HTTP1Rules` then closes).
    private static let holdLimit = 10
    /// How the connection closes once the answer under way has ended; nil: it goes on.
    private var closing: CloseMode?
    /// The connection's last answer has ended: nothing more is answered.
    private var ended = false
    /// The last answer's end, written: the connection closes after it.
    private var lastAnswer = LastAnswer()
    /// Requests started and not finished (their answer written, their task ended): one, or
    /// for a moment two (the last finishes after writing the end that starts the next).
    private var unfinished = 0
    /// The listener's connections, which this one is counted in until it has closed and
    /// its last request has finished.
    private let connections: OpenConnections
    /// The connection has closed (its handlers removed).
    private var removed = false

    init(respond: @escaping @Sendable (Request, ClientConnection) async -> Reply<Response, Answer>, connection: ClientConnection,
         connections: OpenConnections) {
        self.respond = respond
        self.connection = connection
        executor = EventLoopTaskExecutor(connection.channel.eventLoop)
        self.connections = connections
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        arrive(.part(unwrapInboundIn(data)), context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        startUnstarted(context: context)
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The client's end of the connection failing under a request (a reset, as from a
        // client that closes before the `100 Continue` it asked for) cuts its body: the
        // client's doing, a 400, not a failure of serve's own (found by probing: it was
        // answered, logged and counted as a 500). Any other error stays what it is.
        let cutByClient = (error as? IOError).map { Responder.clientGone.contains($0.errnoCode) } ?? false
        arrive(.failure(cutByClient ? HTTPFailure.connectionCut : error), context: context)
    }

    /// What a socket says when its client went away: reset, timed out, or a broken pipe.
    private static let clientGone: Set<Int32> = [ECONNRESET, ETIMEDOUT, EPIPE]

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed? = event as? ChannelEvent { arrive(.inputClosed, context: context) }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if held.count < Responder.holdLimit {
            context.read()
        } else {
            readHeld = true
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        connections.opened()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // A responder waiting for the rest of its body would wait forever. Cut short, as
        // the decoder says of a body the client's close cuts: not taken for a whole one
        // (an empty one would be `{}`, and book).
        arriving?.finish(HTTPParserError.invalidEOFState)
        arriving = nil
        held = []
        removed = true
        if unfinished == 0 { connections.ended() }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where closing != nil && head.headerFields[.connection] == nil:
            // The connection's last answer (its body failed, or the client closed its side)
            // says so, as RFC 9112, 9.6 asks of a server that is to close: a client keeping
            // connections in a pool would send its next request into the close, not knowing
            // whether it was taken. (At shutdown, `ConnectionDeadlines` says it.)
            head.headerFields[.connection] = "close"
            return context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .head(let head) where head.headerFields[.connection] == "close":
            // An answer that closes its connection itself (an event stream): once it ends,
            // so does the connection, and what was read after its request goes unanswered.
            if closing == nil { closing = .all }
            return context.write(data, promise: promise)
        case .end:
            break
        default:
            return context.write(data, promise: promise)
        }
        answering = false
        context.write(data, promise: lastAnswer.end(promise, on: context.eventLoop))
        if let closing {
            ended = true
            lastAnswer.close(context.channel, mode: closing)
        } else {
            proceed(context: context)
        }
    }

    /// The answers before have all gone to the kernel (`StalledClients`' high-water mark
    /// is a byte), and the connection is open: the next request may start.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { proceed(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// Whether what arrives now is taken now: a part of the body being read, or anything
    /// once the answer before has ended and gone to the kernel.
    private func takesNow(_ context: ChannelHandlerContext) -> Bool {
        readingBody || (!answering && context.channel.isWritable)
    }

    private func arrive(_ arrival: Arrival, context: ChannelHandlerContext) {
        guard !ended else { return }
        if held.isEmpty, takesNow(context) {
            take(arrival, context: context)
        } else {
            held.append(arrival)
        }
    }

    private func take(_ arrival: Arrival, context: ChannelHandlerContext) {
        if readingBody {
            takeForBody(arrival, context: context)
        } else {
            takeBetweenAnswers(arrival, context: context)
        }
    }

    /// What arrives while no request is being answered.
    private func takeBetweenAnswers(_ arrival: Arrival, context: ChannelHandlerContext) {
        switch arrival {
        case .part(.head(let head)):
            unstarted = (head, nil)
            bodyBytes = 0
        case .part(.body(var part)):
            guard var request = unstarted else { return }
            bodyBytes += part.readableBytes
            if request.body == nil {
                request.body = part
            } else {
                request.body!.writeBuffer(&part)
            }
            unstarted = request
            if bodyBytes > RequestBody.maximumBytes {
                // What came is passed on; the rest of the body is read and dropped.
                start(request.head, body: HummingbirdCore.RequestBody(buffer: request.body!), readingBody: true, context: context)
            }
        case .part(.end):
            guard let request = unstarted else { return }
            start(request.head, body: HummingbirdCore.RequestBody(buffer: request.body ?? ByteBuffer()), context: context)
        case .failure(let error):
            closing = .all
            guard let request = unstarted else { return close(context: context) }
            let body = ArrivingBody(request.body)
            body.finish(error)
            start(request.head, body: HummingbirdCore.RequestBody(asyncSequence: body), context: context)
        case .inputClosed:
            closing = .all
            guard let request = unstarted else { return close(context: context) }
            start(request.head, body: HummingbirdCore.RequestBody(buffer: request.body ?? ByteBuffer()), context: context)
        }
    }

    /// What arrives while the started request's body is still arriving.
    private func takeForBody(_ arrival: Arrival, context: ChannelHandlerContext) {
        switch arrival {
        case .part(.body(let part)):
            bodyBytes += part.readableBytes
            arriving?.append(part)
            if bodyBytes > RequestBody.maximumBytes {
                arriving?.finish()
                arriving = nil
            }
            return
        case .part:
            arriving?.finish()
        case .failure(let error):
            arriving?.finish(error)
            closing = .all
        case .inputClosed:
            arriving?.finish()
            closing = .all
        }
        arriving = nil
        readingBody = false
        if !answering, closing != nil { close(context: context) }
    }

    /// A head whose body did not come with it starts at the end of its read, or once
    /// what was held before it has been taken: its responder may answer on the head alone.
    private func startUnstarted(context: ChannelHandlerContext) {
        guard let request = unstarted else { return }
        let body = ArrivingBody(request.body)
        start(request.head, body: HummingbirdCore.RequestBody(asyncSequence: body), readingBody: true, into: body, context: context)
    }

    /// Starts the request `head`: its responder's task reads `body`. While `readingBody`,
    /// the rest of its body goes `into` that (or nowhere).
    private func start(_ head: HTTPRequest, body: HummingbirdCore.RequestBody, readingBody: Bool = false, into arriving: ArrivingBody? = nil,
                       context: ChannelHandlerContext) {
        unstarted = nil
        // No one to answer: its work is not done either.
        guard !ended, context.channel.isActive else { return }
        answering = true
        self.readingBody = readingBody
        self.arriving = arriving
        if head.headerFields[.connection] == "close", closing == nil { closing = .output }
        let request = Request(head: head, body: body)
        let channel = context.channel
        let respond = respond
        let connection = connection
        let responder = NIOLoopBound(self, eventLoop: context.eventLoop)
        unfinished += 1
        Task(executorPreference: executor) {
            switch await respond(request, connection) {
            case .now(let response):
                await ChannelBodyWriter.send(response, on: channel)
                // On the loop still: the task runs nowhere else.
                responder.value.finished()
            case .later(let answer):
                // The task ends while the answer waits (see `Reply`). On the loop: the
                // answer's promise is the connection's.
                answer.whenComplete { answer in
                    ChannelBodyWriter.send(answer, on: channel)
                    responder.value.finished()
                }
            }
        }
    }

    /// A request whose client has gone still finishes (its change decided, its answer
    /// counted and logged) before serve stops: its connection is counted open until then.
    private func finished() {
        unfinished -= 1
        if unfinished == 0, removed { connections.ended() }
    }

    /// Takes what was held behind the answer that has just ended, up to the next answer,
    /// and the body parts held behind a request that has just started.
    private func proceed(context: ChannelHandlerContext) {
        repeat {
            while !ended, takesNow(context), !held.isEmpty {
                take(held.removeFirst(), context: context)
            }
            if !answering { startUnstarted(context: context) }
        } while !ended && takesNow(context) && !held.isEmpty
        if readHeld, held.count < Responder.holdLimit {
            readHeld = false
            context.read()
        }
    }

    /// Closes once the last answer has gone out (a close drops what is still queued), or
    /// at once if there was none.
    private func close(context: ChannelHandlerContext) {
        ended = true
        lastAnswer.close(context.channel)
    }
}
