import Foundation
import Testing
import FlashSaleCore
@testable import FlashSalePostgres

/// libpq's password file, read as libpq reads it (PostgreSQL's "The Password File"), with no server.
struct PasswordFileTests {
    private func location(_ url: String) throws -> PostgresLocation {
        try PostgresLocation(url: url, environment: [:], operatingSystemUser: "osuser")
    }

    private func password(_ url: String, in text: String) throws -> String? {
        PasswordFile(Array(text.utf8)).password(for: try location(url))
    }

    @Test func theFirstLineThatMatchesEveryFieldGivesThePassword() throws {
        let text = """
            # host:port:database:user:password
            db.example:5432:shop:bob:not-ann
            db.example:5432:shop:ann:first
            db.example:5432:shop:ann:second
            """
        #expect(try password("postgresql://ann@db.example/shop", in: text) == "first")
        #expect(try password("postgresql://ann@db.example:6543/shop", in: text) == nil)
        #expect(try password("postgresql://ann@db.example/other", in: text) == nil)
        #expect(try password("postgresql://ann@other.example/shop", in: text) == nil)
    }

    @Test func aStarMatchesAnythingButAnEscapedStarOnlyAStar() throws {
        let text = "\\*:*:*:ann:escaped\n*:*:*:ann:wild\n"
        #expect(try password("postgresql://ann@db.example:6543/shop", in: text) == "wild")
    }

    @Test func backslashEscapesColonsAndBackslashesAndAnUnescapedColonEndsThePassword() throws {
        let text = "db.example:5432:sh\\:op:ann:pa\\:ss\\\\word:rest\r\n"
        #expect(try password("postgresql://ann@db.example/sh%3Aop", in: text) == "pa:ss\\word")
    }

    @Test func aSocketInTheDefaultDirectoryIsLocalhostAndAnotherIsItsPath() throws {
        let text = "/tmp/pg:5433:shop:ann:by-path\nlocalhost:5432:shop:ann:by-localhost\n"
        #expect(try password("postgresql://ann@/shop", in: text) == "by-localhost")
        #expect(try password("postgresql://ann@/shop?host=/tmp/pg&port=5433", in: text) == "by-path")
    }

    /// As libpq: a backslash that ends the line is kept; names compare byte by byte, so a
    /// user name in another Unicode normal form is another user.
    @Test func aFinalBackslashIsKeptAndNamesCompareAsBytes() throws {
        #expect(try password("postgresql://ann@db.example/shop", in: "*:*:*:ann:ends-in\\\n") == "ends-in\\")
        #expect(try password("postgresql://caf%C3%A9@db.example/shop", in: "*:*:*:cafe\u{301}:decomposed\n") == nil)
    }

    /// As libpq matches a field: a colon in it needs no escape where the value has one
    /// (found by probing: an IPv6 host's line, or a user's with a colon, matched for psql
    /// and not here).
    @Test func aColonWhereTheValueHasOneMatchesUnescaped() throws {
        #expect(try password("postgresql://ann@[::1]/shop", in: "::1:5432:shop:ann:by-address\n") == "by-address")
        #expect(try password("postgresql://we%3Aird@db.example/shop", in: "db.example:5432:shop:we:ird:by-user\n") == "by-user")
        #expect(try password("postgresql://ann@[::1]/shop", in: "\\:\\:1:5432:shop:ann:escaped\n") == "escaped")
        #expect(try password("postgresql://ann@[::1]:6543/shop", in: "::1:5432:shop:ann:other-port\n") == nil)
    }

    @Test func aLineWithFewerFieldsMatchesNothing() throws {
        #expect(try password("postgresql://ann@db.example/shop", in: "db.example:5432:shop:ann\n") == nil)
    }

    /// As libpq: PGPASSFILE over $HOME/.pgpass, and a file that group or others may read, or
    /// that is not a regular file, is not used.
    @Test func onlyAPrivateRegularFileIsRead() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pgpass-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let home = directory.appendingPathComponent(".pgpass")
        let named = directory.appendingPathComponent("named")
        try "*:*:*:*:from-home\n".write(to: home, atomically: true, encoding: .utf8)
        try "*:*:*:*:from-named\n".write(to: named, atomically: true, encoding: .utf8)
        let url = try location("postgresql://ann@db.example/shop")
        func read(_ environment: [String: String]) -> String? {
            PasswordFile(environment: environment, home: homeDirectory(environment))?.password(for: url)
        }
        for file in [home, named] { try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path) }
        #expect(read(["HOME": directory.path]) == "from-home")
        #expect(read(["HOME": directory.path, "PGPASSFILE": named.path]) == "from-named")
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: named.path)
        #expect(read(["HOME": directory.path, "PGPASSFILE": named.path]) == nil)
        #expect(read(["PGPASSFILE": directory.path]) == nil)
        #expect(read(["HOME": directory.appendingPathComponent("nowhere").path]) == nil)
    }
}
