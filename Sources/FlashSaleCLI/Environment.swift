import FlashSaleCore

/// The environment variables flashsale reads, as text. One that is not UTF-8 is refused
/// where it would be read, not before: `help`, `--version`, a command given `--db`, or a
/// SQLite command with a stray `PGHOST`, never read it, and were refused (found by probing).
struct Environment {
    private let texts: [String: String]
    private let notTexts: Set<String>

    /// The variables as the process has them. Those that find libpq's files in the home
    /// directory are left out when not text: no reason to refuse a command over a file
    /// that is then looked for where libpq would look without them.
    init(_ raw: [String: [UInt8]]) {
        var texts: [String: String] = [:]
        var notTexts: Set<String> = []
        for (name, bytes) in raw {
            if let text = String(validating: bytes, as: UTF8.self) {
                texts[name] = text
            } else if !DatabaseURL.homeFileVariables.contains(name) {
                notTexts.insert(name)
            }
        }
        self.texts = texts
        self.notTexts = notTexts
    }

    /// The variable's text; nil when unset.
    func value(_ name: String) throws(FlashSaleError) -> String? {
        guard !notTexts.contains(name) else { throw .usage("\(name) is not valid UTF-8") }
        return texts[name]
    }

    /// The variables a server's URL is completed and checked with (`PG*`).
    func databaseServerVariables() throws(FlashSaleError) -> [String: String] {
        for name in (DatabaseURL.environmentVariables + DatabaseURL.unfollowedVariables).sorted() where notTexts.contains(name) {
            throw .usage("\(name) is not valid UTF-8")
        }
        return texts
    }
}
