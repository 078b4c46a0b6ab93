@testable import FlashSaleServer
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Testing

/// A connection's clocks: 10 s for a request's head from its first byte, 10 s for its
/// body, the idle timeout between requests, none while a request is answered; and
/// shutdown's close once nothing is under way. On an embedded channel with serve's HTTP
/// pipeline, whose clock moves only when told.
@Suite struct ConnectionDeadlinesTests {
    private let channel = EmbeddedChannel()
    private let request = "POST /booking-service/book-item/s1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
    private let passedOn = PassedOn()

    init() throws {
        let pipeline = channel.pipeline.syncOperations
        try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
        try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
        try pipeline.addHandler(ConnectionDeadlines(idleTimeout: .seconds(60)))
        try pipeline.addHandler(passedOn)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
    }

    private func receive(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    private func answer() throws {
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: [.contentLength: "0"])))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        channel.embeddedEventLoop.run()
    }

    private func advance(seconds: Double) {
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(Int64(seconds * 1000)))
    }

    /// The connection is open until `seconds` from now, and closed at `seconds`.
    private func expectClosed(after seconds: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        advance(seconds: seconds - 0.001)
        #expect(channel.isActive, sourceLocation: sourceLocation)
        advance(seconds: 0.001)
        #expect(!channel.isActive, sourceLocation: sourceLocation)
    }

    @Test func aConnectionWithNothingToDoClosesAfterTheIdleTimeout() throws {
        expectClosed(after: 60)
    }

    @Test func aRequestBeingAnsweredHasNoDeadlineAndItsAnswerRestartsTheIdleClock() throws {
        advance(seconds: 30)
        try receive(request + "{}")
        advance(seconds: 300)
        #expect(channel.isActive, "a commit may keep a request waiting: not idle")
        try answer()
        expectClosed(after: 60)
    }

    /// Refused (408, by the handlers after it), what comes after dropped, and closed if
    /// the refusal has not closed it within 10 s more.
    @Test func aHeadStillArriving10SecondsAfterItsFirstByteIsRefusedThenCloses() throws {
        // Idle for a while first: the head's 10 s are its own, not what is left of a timer
        // armed for the idle timeout.
        advance(seconds: 25)
        try receive("POST /booking-service/book-item/s1 HTTP/1.1\r\n")
        advance(seconds: 9.999)
        #expect(passedOn.refusals.isEmpty)
        advance(seconds: 0.001)
        #expect(passedOn.refusals == [408])
        try receive("Host: x\r\nContent-Length: 2\r\n\r\n{}")
        #expect(passedOn.parts.isEmpty, "the rest of a late head is no request")
        expectClosed(after: 10)
        #expect(passedOn.refusals == [408])
    }

    @Test func aBodyStillArriving10SecondsAfterItsHeadIsRefusedThenCloses() throws {
        try receive(request + "{")
        advance(seconds: 9.999)
        #expect(passedOn.refusals.isEmpty)
        advance(seconds: 0.001)
        #expect(passedOn.refusals == [408])
        try receive("}")
        #expect(passedOn.parts == ["head", "body"], "the rest of a late body does not end it")
        #expect(passedOn.refusalMessages == ["the request did not arrive whole within 10 seconds"])
        expectClosed(after: 10)
    }

    /// A head that is not whole in time behind a request still being answered (a commit
    /// waiting for a lock) is refused all the same, and the answer under way is not cut:
    /// the connection closes 10 s after the refusal if nothing closed it before.
    @Test func aLateHeadBehindAnAnswerUnderWayIsRefusedAndTheAnswerIsNotCut() throws {
        try receive(request + "{}")
        try receive("POST /booking-service/book-item/s1 HTTP/1.1\r\n")
        advance(seconds: 10)
        #expect(passedOn.refusals == [408])
        #expect(channel.isActive, "the answer under way still goes out")
        try answer()
        #expect(channel.isActive)
        expectClosed(after: 10)
    }

    /// Answered on its head alone (a 401, or `Expect: 100-continue` refused), before its
    /// body ended: the idle clock starts when the body has.
    @Test func aRequestAnsweredBeforeItsBodyEndedStartsTheIdleClockAtItsEnd() throws {
        advance(seconds: 55)
        try receive(request + "{")
        try answer()
        advance(seconds: 5)
        try receive("}")
        expectClosed(after: 60)
    }

    @Test func lineEndsBetweenRequestsStartNoHeadClock() throws {
        try receive(request + "{}")
        try answer()
        try receive("\r\n")
        expectClosed(after: 60)
    }

    @Test func shutdownClosesAConnectionWithNothingToDoAtOnce() throws {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!channel.isActive)
    }

    @Test func shutdownClosesAConnectionAfterTheAnswerUnderWay() throws {
        try receive(request + "{}")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(channel.isActive)
        try answer()
        #expect(!channel.isActive)
    }

    @Test func shutdownClosesAConnectionAnsweredBeforeItsBodyEndedOnceItHas() throws {
        try receive(request + "{")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try answer()
        #expect(channel.isActive, "the body is still arriving")
        try receive("}")
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    /// What the connection has written since the last look, as text.
    private func written() throws -> String {
        var text = ""
        while let bytes = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: bytes) }
        return text
    }

    /// At shutdown the last answer says `Connection: close` (RFC 9112, 9.6), and what comes
    /// after it is no request: the client was told.
    @Test func atShutdownTheLastAnswerSaysCloseAndWhatComesAfterIsDropped() throws {
        try receive(request + "{}")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: [.contentLength: "0"])))
        #expect(try written().lowercased().contains("connection: close\r\n"))
        try receive(request + "{}")
        #expect(passedOn.parts == ["head", "body", "end"], "a request after the close is no request")
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    /// A request arriving as the answer before it starts is answered too (a review found
    /// it answered after an answer that said close): only its own answer says close.
    @Test func atShutdownAnAnswerWithARequestArrivingBehindItDoesNotSayClose() throws {
        try receive(request + "{}")
        try receive("POST /booking-service/book-item/s1 HTTP/1.1\r\n")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try answer()
        #expect(try !written().lowercased().contains("connection: close"))
        try receive("Host: x\r\nContent-Length: 2\r\n\r\n{}")
        #expect(passedOn.parts == ["head", "body", "end", "head", "body", "end"])
        try answer()
        #expect(try written().lowercased().contains("connection: close\r\n"))
        #expect(!channel.isActive)
    }

    /// Found by probing: at shutdown, a head trickled to its 10 s and then a body to its
    /// own 10 s kept serve 20 s, where http.md says it exits within 10. A request still
    /// arriving must be whole 9 s after shutdown began, head and body together.
    @Test func atShutdownARequestStillArrivingMustBeWholeWithin9Seconds() throws {
        try receive("POST /booking-service/book-item/s1 HTTP/1.1\r\n")
        advance(seconds: 1)
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        advance(seconds: 8)
        try receive("Host: x\r\nContent-Length: 2\r\n\r\n{")
        #expect(passedOn.parts == ["head", "body"])
        advance(seconds: 0.999)
        #expect(passedOn.refusals.isEmpty)
        advance(seconds: 0.001)
        #expect(passedOn.refusals == [408], "the body is not whole 9 s after shutdown")
        // Found by probing: it said "within 10 seconds", 3 s after the request's first byte.
        #expect(passedOn.refusalMessages == ["the server is stopping, and the request did not arrive whole within 9 seconds of the stop signal"])
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test func aRequestArrivingAtShutdownIsReadAndAnsweredBeforeTheClose() throws {
        try receive("POST /booking-service/book-item/s1 HTTP/1.1\r\n")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(channel.isActive)
        try receive("Host: x\r\nContent-Length: 2\r\n\r\n{}")
        #expect(channel.isActive)
        try answer()
        #expect(!channel.isActive)
    }
}

/// What `ConnectionDeadlines` passes on: the request's parts, and the statuses of the
/// refusals it asks for.
private final class PassedOn: ChannelInboundHandler {
    typealias InboundIn = HTTPRequestPart

    private(set) var parts: [String] = []
    private(set) var refusals: [Int] = []
    private(set) var refusalMessages: [String] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: parts.append("head")
        case .body: parts.append("body")
        case .end: parts.append("end")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // (The decoder's own error for a head cut short by the close is no refusal.)
        if let refusal = error as? HTTPFailure {
            refusals.append(refusal.status.code)
            refusalMessages.append(refusal.message)
        }
    }
}
