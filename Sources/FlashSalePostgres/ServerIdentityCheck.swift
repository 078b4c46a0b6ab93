import NIOCore
import NIOSSL
import X509

/// `sslmode=verify-full`'s check of the server's certificate against the host, as libpq
/// makes it: against the certificate's DNS names when the URL names the host, against its
/// addresses when the URL gives an address. NIOSSL's own check (RFC 6125 as it reads it)
/// also takes a certificate for the address connected to, whatever name was asked for: a
/// server that a spoofed name led to passed with any trusted certificate for its own
/// address. So NIOSSL checks the chain, and this handler the name, through swift-certificates'
/// `ServerIdentityPolicy`.
///
/// It sits next to the socket, where everything the client sends goes through it, and
/// holds back what the client writes once the server's certificate is known (the
/// handshake's Finished, then the login) until the check is done: a server that is not
/// the host gets nothing more, neither the login nor the password.
final class ServerIdentityCheck: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case waitingForCertificate
        case checking(held: [(data: NIOAny, promise: EventLoopPromise<Void>?)], flushed: Bool)
        case passed
        case refused
    }

    private let host: String
    private let isAddress: Bool
    private var state = State.waitingForCertificate

    init(host: String, isAddress: Bool) {
        self.host = host
        self.isAddress = isAddress
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .passed:
            context.write(data, promise: promise)
        case .refused:
            promise?.fail(NIOSSLExtraError.failedToValidateHostname)
        case .checking(var held, let flushed):
            held.append((data, promise))
            state = .checking(held: held, flushed: flushed)
        case .waitingForCertificate:
            guard let certificate = peerCertificate(context) else {
                context.write(data, promise: promise)
                return
            }
            state = .checking(held: [(data, promise)], flushed: false)
            check(certificate, context: context)
        }
    }

    func flush(context: ChannelHandlerContext) {
        if case .checking(let held, _) = state {
            state = .checking(held: held, flushed: true)
        } else {
            context.flush()
        }
    }

    /// The server's certificate, once the handshake has received it (the TLS handler is
    /// added after the server agrees to TLS).
    private func peerCertificate(_ context: ChannelHandlerContext) -> NIOSSLCertificate? {
        (try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self))?.peerCertificate
    }

    /// swift-certificates' verifier is async: the check runs in a task, and its verdict
    /// comes back to the channel's event loop.
    private func check(_ certificate: NIOSSLCertificate, context: ChannelHandlerContext) {
        let host = host
        let isAddress = isAddress
        let der = try? certificate.toDERBytes()
        let check = NIOLoopBound(self, eventLoop: context.eventLoop)
        let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        Task {
            let passed = await ServerIdentityCheck.isFor(host: host, isAddress: isAddress, der: der)
            loop.execute { check.value.settle(passed: passed, context: boundContext.value) }
        }
    }

    private func settle(passed: Bool, context: ChannelHandlerContext) {
        guard case .checking(let held, let flushed) = state else { return }
        if passed {
            state = .passed
            for (data, promise) in held { context.write(data, promise: promise) }
            if flushed { context.flush() }
        } else {
            state = .refused
            let refusal = NIOSSLExtraError.failedToValidateHostname
            for (_, promise) in held { promise?.fail(refusal) }
            context.fireErrorCaught(refusal)
            context.close(promise: nil)
        }
    }

    /// The leaf checked as its own root: its chain is NIOSSL's to check (in the handshake).
    private static func isFor(host: String, isAddress: Bool, der: [UInt8]?) async -> Bool {
        guard let der, let leaf = try? Certificate(derEncoded: der) else { return false }
        var verifier = Verifier(rootCertificates: CertificateStore([leaf])) {
            ServerIdentityPolicy(serverHostname: isAddress ? nil : host, serverIP: isAddress ? host : nil)
            CheckedInTheHandshake()
        }
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore()) {
        case .validCertificate: return true
        case .couldNotValidate: return false
        }
    }
}

/// What BoringSSL checked of the chain in the handshake, RFC 5280's extensions among it:
/// named here so that the verifier does not refuse a certificate for marking one of them
/// critical (key usage, basic constraints) as one no policy of its handles.
private struct CheckedInTheHandshake: VerifierPolicy {
    let verifyingCriticalExtensions = RFC5280Policy().verifyingCriticalExtensions + [.X509ExtensionID.extendedKeyUsage]

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult { .meetsPolicy }
}
