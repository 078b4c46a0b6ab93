import Glibc
import FlashSaleCore
import FlashSaleEngine
import FlashSaleStore

/// `serve`: the buyers' HTTP API (http.md). Its options are parsed here, with every other
/// command's, into `ServeSettings`; the server itself lives in `flashsale-serve`, which
/// `flashsale serve` execs from its own directory with the same arguments. Linked into
/// `flashsale`, the HTTP stack (SwiftNIO, Foundation) would cost every `book` its start-up.
package enum ServeCommand {
    static let listen = OptionSpec("--listen", value: "HOST:PORT", repeatable: true,
                                   "a buyer API address, repeatable; [::1]:8080 for IPv6 (default 127.0.0.1:8080, unless --socket is given)")
    static let socket = OptionSpec("--socket", value: "PATH", "a buyer API Unix socket (created 0660), also or instead")
    static let adminListen = OptionSpec("--admin-listen", value: "HOST:PORT",
                                        "health, metrics and the OpenAPI document (default 127.0.0.1:9090)")
    static let auth = OptionSpec("--auth", value: "jwt|header", required: true,
                                 "who the buyer is: jwt, a bearer JWT; header, a header set by a gateway in front")
    static let jwtKey = OptionSpec("--jwt-key", value: "FILE",
                                   "with --auth jwt: an HS256 secret, or an ES256 or RS256 PEM public key")
    static let jwtIssuer = OptionSpec("--jwt-issuer", value: "ISSUER", "with --auth jwt: the iss every token must carry")
    static let jwtAudience = OptionSpec("--jwt-audience", value: "AUDIENCE", "with --auth jwt: the aud every token must name")
    static let userHeader = OptionSpec("--user-header", value: "NAME", "with --auth header: the header that holds the user")
    static let trustedProxy = OptionSpec("--trusted-proxy", value: "CIDR", repeatable: true,
                                         "a proxy whose X-Forwarded-For is believed, repeatable")
    static let sale = OptionSpec("--sale", value: "SALE", repeatable: true, "serve only this sale, repeatable (default every sale)")
    static let maxConnections = OptionSpec("--max-connections", value: "N",
                                           "buyer connections open at most; beyond, new ones are closed (default 10000)")

    static let defaultListen = "127.0.0.1:8080"
    static let defaultAdmin = "127.0.0.1:9090"
    static let defaultMaxConnections: Int64 = 10_000
    /// The longest Unix socket path SwiftNIO takes: macOS's `sockaddr_un` room for it, 104
    /// bytes with its NUL, on every system (Linux's has 108).
    package static let maximumSocketPathBytes = 103

    static let spec = CommandSpec(
        "serve",
        options: [listen, socket, adminListen, auth, jwtKey, jwtIssuer, jwtAudience, userHeader, trustedProxy, sale,
                  maxConnections],
        summary: "serve the buyers' HTTP API, in the foreground, until SIGINT, SIGTERM or SIGHUP",
        details: """
            Decisions of many connections are committed together, one disk sync for all that arrived \
            while the last commit ran. Logs one JSON object per line on stderr. The server is \
            \(Linked.serverExecutable), installed beside flashsale.
            """
    ) { invocation, context in
        try context.linked.serve(settings(invocation, context))
    }

    static func settings(_ invocation: Invocation, _ context: Context) throws -> ServeSettings {
        let listens = invocation.options.all(listen.name)
        let socketPath = invocation.options[socket.name]
        if socketPath?.isEmpty == true { throw FlashSaleError.usage("\(socket.name) needs a path") }
        if let socketPath, socketPath.utf8.count > maximumSocketPathBytes {
            throw FlashSaleError.usage("\(socket.name) '\(Quoted(socketPath))' is \(socketPath.utf8.count) bytes long; "
                                       + "a Unix socket's path has \(maximumSocketPathBytes) at most")
        }
        let buyers = try (listens.isEmpty && socketPath == nil ? [defaultListen] : listens).map {
            try ServeSettings.Address(parsing: $0, option: listen)
        }
        let admin = try ServeSettings.Address(parsing: invocation.options[adminListen.name] ?? defaultAdmin, option: adminListen)
        // Refused here rather than by the second bind, whose "address already in use" would
        // send the operator looking for another process. (Port 0 is a new port each time.)
        for (index, address) in buyers.enumerated() where address.port != 0 && buyers[..<index].contains(address) {
            throw FlashSaleError.usage("\(listen.name) \(address) is given twice")
        }
        if admin.port != 0, buyers.contains(admin) {
            throw FlashSaleError.usage("\(adminListen.name) \(admin) is also a \(listen.name) address; the admin listener needs one of its own")
        }
        let proxies = try invocation.options.all(trustedProxy.name).map { text in
            guard let range = IPRange(text) else {
                throw FlashSaleError.usage("\(trustedProxy.name) '\(Quoted(text))' is not an address or CIDR range (10.0.0.0/8, ::1)")
            }
            // Taken as the wider range, a typo would trust addresses that are no proxy (probe).
            return try range.refusingHostBits(typed: text, option: trustedProxy.name)
        }
        let sales = try invocation.options.all(sale.name).map { try SaleID($0) }
        return ServeSettings(
            listen: buyers, socket: socketPath, admin: admin,
            authentication: try authentication(invocation, buyers: buyers),
            trustedProxies: proxies, sales: sales.isEmpty ? nil : Set(sales),
            maxConnections: Int(try invocation.wholeNumber(maxConnections.name, in: 1...1_000_000) ?? defaultMaxConnections),
            database: context.database, busyTimeout: context.busyTimeoutSpan,
            openStore: context.storeOpener(), clock: try context.clock(),
            fixedNow: try context.fixedTime())
    }

    private static func authentication(_ invocation: Invocation, buyers: [ServeSettings.Address]) throws -> ServeSettings.Authentication {
        let jwtOptions = [jwtKey, jwtIssuer, jwtAudience]
        switch invocation.options[auth.name] {
        case "jwt":
            if invocation.options.has(userHeader.name) {
                throw FlashSaleError.usage("\(userHeader.name) goes with \(auth.name) header")
            }
            guard let path = invocation.options[jwtKey.name] else {
                throw FlashSaleError.usage("\(auth.name) jwt needs \(jwtKey.synopsis)")
            }
            // Taken for a claim to require, an empty one refused every token ("the token's
            // iss is not ").
            for option in [jwtIssuer, jwtAudience] {
                try invocation.refuseEmpty(option, saying: "needs a value: leave it out to accept any")
            }
            return .jwt(keyFile: path, issuer: invocation.options[jwtIssuer.name], audience: invocation.options[jwtAudience.name])
        case "header":
            if let option = jwtOptions.first(where: { invocation.options.has($0.name) }) {
                throw FlashSaleError.usage("\(option.name) goes with \(auth.name) jwt")
            }
            guard let name = invocation.options[userHeader.name] else {
                throw FlashSaleError.usage("\(auth.name) header needs \(userHeader.synopsis)")
            }
            guard !name.isEmpty, name.utf8.allSatisfy(isTokenCharacter) else {
                throw FlashSaleError.usage("\(userHeader.name) '\(Quoted(name))' is not a header name")
            }
            // Anyone who reaches the port could name any user: only a gateway on this host may.
            if let open = buyers.first(where: { !$0.isLoopback }) {
                throw FlashSaleError.usage(
                    "\(auth.name) header trusts whoever connects: \(listen.name) \(open) is not loopback; "
                        + "listen on 127.0.0.1, [::1] or \(socket.name), or use \(auth.name) jwt")
            }
            return .header(name: name)
        case let other?:
            throw FlashSaleError.usage("\(auth.name) '\(Quoted(other))' is not jwt or header")
        case nil:
            throw FlashSaleError.usage("serve needs \(auth.synopsis): there is no unauthenticated mode")
        }
    }

    /// RFC 9110's `tchar`: what a header name is made of.
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}

/// What `serve` was asked for, checked: everything the server needs from the command line.
package struct ServeSettings: Sendable {
    package struct Address: Sendable, Equatable, CustomStringConvertible {
        package let host: String
        package let port: Int

        /// `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`.
        init(parsing text: String, option: OptionSpec) throws(FlashSaleError) {
            let refusal = FlashSaleError.usage("\(option.name) '\(Quoted(text))' is not HOST:PORT (127.0.0.1:8080, [::1]:8080)")
            guard let colon = text.utf8.lastIndex(of: UInt8(ascii: ":")) else { throw refusal }
            var host = String(text[..<colon])
            if host.hasPrefix("[") {
                guard host.hasSuffix("]"), IPAddress(String(host.dropFirst().dropLast()))?.bytes.count == 16 else { throw refusal }
                host = String(host.dropFirst().dropLast())
            } else if host.contains(":") {
                throw refusal
            }
            let digits = text[text.index(after: colon)...]
            guard !host.isEmpty, (1...5).contains(digits.count), digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
                  let port = Int(digits), port <= 65_535
            else { throw refusal }
            self.host = host
            self.port = port
        }

        /// What the listener binds: the host, but for `localhost` (in any case: found by
        /// probing, LOCALHOST was refused as not loopback), which is 127.0.0.1 whatever the
        /// resolver says (RFC 6761, 6.3, as curl does): the header mode trusts it as
        /// loopback, and an /etc/hosts that named another address for it made a listener
        /// there (a follow-up probe).
        package var bindHost: String {
            host.lowercased() == "localhost" ? "127.0.0.1" : host
        }

        /// Reachable from this host only.
        package var isLoopback: Bool {
            guard let address = IPAddress(bindHost)?.unmapped else { return false }
            return address.bytes.count == 4 ? address.bytes[0] == 127 : address.bytes == [UInt8](repeating: 0, count: 15) + [1]
        }

        package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    package enum Authentication: Sendable {
        case jwt(keyFile: String, issuer: String?, audience: String?)
        case header(name: String)
    }

    package let listen: [Address]
    package let socket: String?
    package let admin: Address
    package let authentication: Authentication
    package let trustedProxies: [IPRange]
    /// nil: every sale.
    package let sales: Set<SaleID>?
    package let maxConnections: Int
    package let database: String
    package let busyTimeout: Span
    /// A new connection to the database, for each thread of the server that needs one.
    package let openStore: @Sendable () throws -> any Store
    /// The time for a decision: `FLASHSALE_NOW`, else the system clock.
    package let clock: @Sendable () -> Instant
    /// `FLASHSALE_NOW`'s time, when it fixes the clock: said in the log at the start.
    package let fixedNow: Instant?
}
