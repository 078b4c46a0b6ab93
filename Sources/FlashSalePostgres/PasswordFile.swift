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
        let wanted = [host, String(port), location.database, location.user]
        for line in lines where line.first != UInt8(ascii: "#") {
            let fields = Self.fields(of: line)
            guard fields.count == 5, zip(fields, wanted).allSatisfy({ field, value in
                field.bytes.elementsEqual(value.utf8) || (field.bytes == Array("*".utf8) && !field.escaped)
            }) else { continue }
            return String(decoding: fields[4].bytes, as: UTF8.self)
        }
        return nil
    }

    /// The line's five fields, split at unescaped colons and unescaped; the password ends
    /// at the first unescaped colon after it, and a backslash that ends the line is kept,
    /// as libpq reads them.
    private static func fields(of line: ArraySlice<UInt8>) -> [(bytes: [UInt8], escaped: Bool)] {
        var fields: [(bytes: [UInt8], escaped: Bool)] = [([], false)]
        var escaping = false
        for byte in line {
            if escaping {
                fields[fields.count - 1].bytes.append(byte)
                fields[fields.count - 1].escaped = true
                escaping = false
            } else if byte == UInt8(ascii: "\\") {
                escaping = true
            } else if byte == UInt8(ascii: ":") {
                if fields.count == 5 { return fields }
                fields.append(([], false))
            } else {
                fields[fields.count - 1].bytes.append(byte)
            }
        }
        if escaping { fields[fields.count - 1].bytes.append(UInt8(ascii: "\\")) }
        return fields
    }
}

/// The user's home, for libpq's files: `HOME`, or, when it is unset or empty (cron, a
/// service), the password database's entry, as libpq does.
func homeDirectory(_ environment: [String: String]) -> String? {
    if let home = environment["HOME"], !home.isEmpty { return home }
    guard let entry = getpwuid(geteuid()), let directory = entry.pointee.pw_dir else { return nil }
    return String(cString: directory)
}
