import Glibc
import FlashSaleCore

/// libpq's password file, so that a password need not be in the URL (where `ps` shows it)
/// or in `PGPASSWORD` (where `/proc` does): `PGPASSFILE`, else `~/.pgpass`, lines of
/// `host:port:database:user:password`, each of the first four a value or `*`, `\` escaping
/// `:` and `\`, `#` starting a comment line (PostgreSQL's "The Password File"). The first
/// line that matches gives the password. As libpq does, a file that group or others may
/// read is not used, and neither is the file when the URL or `PGPASSWORD` gives a password.
/// Read and compared as bytes, as libpq does.
struct PasswordFile {
    private let lines: [ArraySlice<UInt8>]

    /// The file `PGPASSFILE` names, else `.pgpass` in `home`, if it is there, a regular
    /// file, and private to its owner.
    init?(environment: [String: String], home: @autoclosure () -> String?) {
        guard let path = environment["PGPASSFILE"].flatMap({ $0.isEmpty ? nil : $0 })
                ?? home().map({ $0 + "/.pgpass" }) else { return nil }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG,
              status.st_mode & (S_IRWXG | S_IRWXO) == 0 else { return nil }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &chunk, chunk.count)
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        self.init(bytes)
    }

    init(_ bytes: [UInt8]) {
        lines = bytes.split(separator: UInt8(ascii: "\n")).map { $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0 }
    }

    /// The password of the first line that matches `location`. A socket in the default
    /// directory is looked up as `localhost`, as libpq does; another directory by its path.
    func password(for location: PostgresLocation) -> String? {
        let host: String
        let port: Int
        switch location.endpoint {
        case .tcp(let name, let number):
            (host, port) = (name, number)
        case .unixSocket(let directory, let number):
            (host, port) = (directory == PostgresLocation.defaultSocketDirectory ? "localhost" : directory, number)
        }
        let wanted = [host, String(port), location.database, location.user].map { Array($0.utf8) }
        for line in lines where line.first != UInt8(ascii: "#") {
            var start: Int? = line.startIndex
            for value in wanted { start = start.flatMap { Self.field(of: line, from: $0, matching: value) } }
            if let start { return Self.password(in: line[start...]) }
        }
        return nil
    }

    /// Where the next field begins when the one at `start` matches `value`, as libpq
    /// matches it (`pwdfMatchesString`): `*` alone is anything; else the field is read
    /// against the value byte by byte, `\` escaping the next one, and ends at a colon
    /// met once the value is all matched. So an unescaped `::1` or `us:er` matches, as it
    /// does for psql (found by probing: `::1:5432:…` lines matched nothing).
    private static func field(of line: ArraySlice<UInt8>, from start: Int, matching value: [UInt8]) -> Int? {
        let (colon, backslash) = (UInt8(ascii: ":"), UInt8(ascii: "\\"))
        if line[start...].starts(with: [UInt8(ascii: "*"), colon]) { return start + 2 }
        var index = start
        var matched = 0
        while index < line.endIndex {
            var escaped = false
            if line[index] == backslash {
                index += 1
                escaped = true
                guard index < line.endIndex else { return nil }
            }
            if line[index] == colon && !escaped && matched == value.count { return index + 1 }
            guard matched < value.count, line[index] == value[matched] else { return nil }
            index += 1
            matched += 1
        }
        return nil
    }

    /// The password: up to its first unescaped colon, unescaped; a backslash that ends the
    /// line is kept, as libpq reads it.
    private static func password(in rest: ArraySlice<UInt8>) -> String {
        var bytes: [UInt8] = []
        var index = rest.startIndex
        while index < rest.endIndex, rest[index] != UInt8(ascii: ":") {
            if rest[index] == UInt8(ascii: "\\"), index + 1 < rest.endIndex { index += 1 }
            bytes.append(rest[index])
            index += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The user's home, for libpq's files: `HOME`, or, when it is unset or empty (cron, a
/// service), the password database's entry, as libpq does.
func homeDirectory(_ environment: [String: String]) -> String? {
    if let home = environment["HOME"], !home.isEmpty { return home }
    guard let entry = getpwuid(geteuid()), let directory = entry.pointee.pw_dir else { return nil }
    return String(cString: directory)
}
