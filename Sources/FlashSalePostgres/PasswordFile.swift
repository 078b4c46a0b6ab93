import Glibc
import FlashSaleCore

/// libpq's password file, so that a password need not be in the URL (where `ps` shows it)
/// or in `PGPASSWORD` (where `/proc` does): `PGPASSFILE`, else `~/.pgpass`, lines of
/// `host:port:database:user:password`, each of the first four a value or `*`, `\` escaping
/// `:` and `\`, `#` starting a comment line (PostgreSQL's "The Password File"). The first line that matches gives the
/// password. As libpq does, a file that group or others may read is not used, and neither
/// is the file when the URL or `PGPASSWORD` gives a password.
struct PasswordFile {
    let path: String
    private let text: String

    /// The file `environment` names, if it is there, a regular file, and private to its owner.
    init?(environment: [String: String]) {
        guard let path = environment["PGPASSFILE"].flatMap({ $0.isEmpty ? nil : $0 })
                ?? environment["HOME"].map({ $0 + "/.pgpass" }) else { return nil }
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
        self.init(path: path, text: String(decoding: bytes, as: UTF8.self))
    }

    init(path: String, text: String) {
        self.path = path
        self.text = text
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
        let wanted = [host, String(port), location.database, location.user]
        for line in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            let fields = Self.fields(of: line)
            guard fields.count == 5,
                  zip(fields, wanted).allSatisfy({ field, value in field.text == value || (field.text == "*" && !field.escaped) })
            else { continue }
            return fields[4].text
        }
        return nil
    }

    /// The line's five fields, split at unescaped colons and unescaped; the password ends
    /// at the first unescaped colon after it, as libpq reads it.
    private static func fields(of line: Substring) -> [(text: String, escaped: Bool)] {
        var fields: [(text: String, escaped: Bool)] = [("", false)]
        var escaping = false
        for character in line {
            if escaping {
                fields[fields.count - 1].text.append(character)
                fields[fields.count - 1].escaped = true
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else if character == ":" {
                if fields.count == 5 { break }
                fields.append(("", false))
            } else {
                fields[fields.count - 1].text.append(character)
            }
        }
        return fields
    }
}
