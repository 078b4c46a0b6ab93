import Glibc
import FlashSaleCore
import FlashSaleEngine

/// What the executable running the command line has linked beyond it: the HTTP server
/// (`serve`) and the PostgreSQL client (`--db postgresql://…`). Both are SwiftNIO, whose
/// start-up would cost every `book` on a SQLite file, so `flashsale` links neither
/// (`handOff`) and becomes `flashsale-serve`, the same command line with both, for a
/// command that needs one.
package struct Linked: Sendable {
    /// `serve`: run the server on its settings.
    package let serve: ServeHandler
    /// A database named by URL: check the URL, and say how to open it. Called before the
    /// command runs, so that a hand-off happens before anything is read or written.
    package let databaseServer: DatabaseServerOpener
    /// `rehearse --via http`'s client; nil in `flashsale`, which hands that rehearsal over.
    package let httpExchange: HTTPExchange?

    package init(serve: @escaping ServeHandler, databaseServer: @escaping DatabaseServerOpener,
                 httpExchange: HTTPExchange? = nil) {
        self.serve = serve
        self.databaseServer = databaseServer
        self.httpExchange = httpExchange
    }

    /// `flashsale`'s: hand the command to `flashsale-serve`.
    package static let handOff = Linked(serve: { _ in try handOffToServer() }, databaseServer: { _, _, _, _ in try handOffToServer() })

    /// The executable beside `flashsale` that links what it does not.
    static let serverExecutable = "flashsale-serve"

    /// This process becomes `flashsale-serve` from the same directory, with the same
    /// arguments and environment, so that users see one command.
    static func handOffToServer() throws -> Never {
        let own = try ownExecutable()
        let directory = own.utf8.lastIndex(of: UInt8(ascii: "/")).map { String(own[..<$0]) } ?? "."
        let server = directory + "/" + serverExecutable
        let arguments = CommandLine.unsafeArgv
        let argv = [strdup(server)] + (1..<Int(CommandLine.argc)).map { arguments[$0] } + [nil]
        execv(server, argv)
        // Whole: cut at Quoted's 40 characters, the path lost the very name that is missing
        // (found by a walk-through).
        throw FlashSaleError.cantOpen("cannot run \(Quoted(server, keeping: .max)): \(String(cString: strerror(errno))); "
                                      + "install \(serverExecutable) beside flashsale")
    }
}

extension Linked {
    /// This process's own executable, from /proc/self/exe.
    static func ownExecutable() throws(FlashSaleError) -> String {
        var link = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &link, Int(PATH_MAX))
        guard length > 0 else {
            throw FlashSaleError.cantOpen("cannot find flashsale's own path to start \(serverExecutable): \(String(cString: strerror(errno)))")
        }
        return String(decoding: link[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// What `serve` does with its settings: exec the server (`flashsale`), or be it
/// (`flashsale-serve`).
package typealias ServeHandler = @Sendable (ServeSettings) throws -> Void

/// Opens a database server's URL (`--db`), in the schema `--pg-schema` names (nil: the
/// URL's), with the environment's variables filling in what the URL leaves out; waits up
/// to the busy timeout for another's lock. A URL that does not parse is a usage error.
package typealias DatabaseServerOpener = @Sendable (_ url: String, _ schema: String?, _ environment: [String: String],
                                                    _ busyTimeout: Span) throws -> StoreOpening
