import Testing

/// `serve`'s options refused before anything listens: exit 2 and one line that says what is
/// wrong, where the listener's bind said "address already in use" (sending the operator to
/// look for another process) or NIO's own error name.
@Suite struct ServeOptionTests {
    @Test func anAddressGivenTwiceAndASocketPathTooLongAreUsageErrors() throws {
        let box = try Sandbox()
        let serve = ["serve", "--auth", "header", "--user-header", "X-User"]
        let longest = "/tmp/" + String(repeating: "s", count: 98)
        let cases: [([String], String)] = [
            (["--listen", "127.0.0.1:18080", "--listen", "127.0.0.1:18080"], "--listen 127.0.0.1:18080 is given twice"),
            (["--listen", "127.0.0.1:18080", "--admin-listen", "127.0.0.1:18080"],
             "--admin-listen 127.0.0.1:18080 is also a --listen address; the admin listener needs one of its own"),
            (["--socket", longest + "s"],
             "--socket '\(longest.prefix(40))...' is 104 bytes long; a Unix socket's path has 103 at most"),
        ]
        for (arguments, message) in cases {
            let result = try box.spawn(serve + arguments)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(result.stderr == "flashsale: \(message)\n", "\(arguments)")
        }
    }

    /// Host names are not case-sensitive: LOCALHOST is loopback, as localhost is, for the
    /// header mode (found by probing: refused as not loopback). The options pass, and serve
    /// goes on to find no database there (73), where a refusal of them is 2.
    @Test(arguments: ["localhost", "LOCALHOST", "LocalHost"])
    func theHeaderModeTakesLocalhostInAnyCase(_ host: String) throws {
        let result = try Sandbox().spawn(["serve", "--auth", "header", "--user-header", "X-User", "--listen", "\(host):18080"])
        #expect(result.status == 73, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("flashsale: no flashsale database at "), "\(result.stderr)")
    }
}
