import Glibc
import FlashSaleCore
import FlashSaleEngine

extension PostgresLocation {
    /// `--db postgresql://…` as the command line and the server open it: the URL checked
    /// now (a usage error), the password file read when neither the URL nor `PGPASSWORD`
    /// gives a password, libpq's default root certificate taken when it is there and
    /// nothing names one, a connection each time one is asked for.
    public static func opening(url: String, schema: String?, environment: [String: String],
                               busyTimeout: Span) throws -> StoreOpening {
        var given = try PostgresLocation(url: url, environment: environment,
                                         operatingSystemUser: operatingSystemUser(), schema: schema)
        // Looked up once, and only if a file in it is wanted: without HOME, it is a look-up
        // in the password database.
        lazy var home = homeDirectory(environment)
        if given.password == nil {
            given.password = PasswordFile(environment: environment, home: home)?.password(for: given)
        }
        if given.rootCertificate == nil, let home, access(home + "/.postgresql/root.crt", F_OK) == 0 {
            given.rootCertificate = home + "/.postgresql/root.crt"
        }
        let location = given
        return StoreOpening(description: location.description) { createIfMissing in
            try PostgresStore(location: location, busyTimeout: busyTimeout, createIfMissing: createIfMissing)
        }
    }

    /// libpq's default user: the effective user's name from the password database.
    static func operatingSystemUser() -> String? {
        guard let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name else { return nil }
        return String(cString: name)
    }
}
