/// A string literal in Swift source: its text with each interpolation replaced by `\(…)`,
/// and the interpolated expressions, as written.
struct StringLiteral: Equatable {
    let line: Int
    let text: String
    let interpolations: [String]
}

/// Finds the string literals of Swift source: `"…"`, `"""…"""` and raw `#"…"#` forms,
/// with interpolations (and literals nested in them); comments are skipped. Enough Swift
/// for checking how SQL is written, not a full lexer (regex literals are not recognised).
struct StringLiteralScanner {
    private let source: [UInt8]
    private var index = 0
    private var line = 1
    private(set) var literals: [StringLiteral] = []

    static func literals(in source: String) -> [StringLiteral] {
        var scanner = StringLiteralScanner(source: Array(source.utf8))
        scanner.scanCode(untilClosingParenthesis: false)
        return scanner.literals
    }

    private init(source: [UInt8]) {
        self.source = source
    }

    private func byte(at offset: Int) -> UInt8? {
        index + offset < source.count ? source[index + offset] : nil
    }

    private func starts(with text: String) -> Bool {
        let bytes = Array(text.utf8)
        return index + bytes.count <= source.count && Array(source[index..<(index + bytes.count)]) == bytes
    }

    private mutating func advance(_ count: Int = 1) {
        for _ in 0..<count where index < source.count {
            if source[index] == UInt8(ascii: "\n") { line += 1 }
            index += 1
        }
    }

    /// Code, up to the end or (inside an interpolation) the parenthesis that closes it.
    private mutating func scanCode(untilClosingParenthesis: Bool) {
        var depth = 0
        while let current = byte(at: 0) {
            if starts(with: "//") {
                while let next = byte(at: 0), next != UInt8(ascii: "\n") { advance() }
            } else if starts(with: "/*") {
                advance(2)
                while byte(at: 0) != nil, !starts(with: "*/") { advance() }
                advance(2)
            } else if current == UInt8(ascii: "#") || current == UInt8(ascii: "\"") {
                var hashes = 0
                while byte(at: hashes) == UInt8(ascii: "#") { hashes += 1 }
                if byte(at: hashes) == UInt8(ascii: "\"") {
                    advance(hashes)
                    scanLiteral(hashes: hashes)
                } else {
                    advance(max(hashes, 1))
                }
            } else if current == UInt8(ascii: "(") {
                depth += 1
                advance()
            } else if current == UInt8(ascii: ")") {
                advance()
                if untilClosingParenthesis {
                    if depth == 0 { return }
                    depth -= 1
                }
            } else {
                advance()
            }
        }
    }

    /// A literal whose opening quote (after `hashes` #s) is at the cursor.
    private mutating func scanLiteral(hashes: Int) {
        let startLine = line
        let multiline = starts(with: "\"\"\"")
        let quote = multiline ? "\"\"\"" : "\""
        let closing = quote + String(repeating: "#", count: hashes)
        let escape = "\\" + String(repeating: "#", count: hashes)
        advance(quote.utf8.count)
        var text: [UInt8] = []
        var interpolations: [String] = []
        while byte(at: 0) != nil, !starts(with: closing) {
            if starts(with: escape + "(") {
                advance(escape.utf8.count + 1)
                let start = index
                scanCode(untilClosingParenthesis: true)
                interpolations.append(String(decoding: source[start..<(index - 1)], as: UTF8.self))
                text += Array("\\(…)".utf8)
            } else if starts(with: escape) {
                text += source[index..<min(index + escape.utf8.count + 1, source.count)]
                advance(escape.utf8.count + 1)
            } else {
                text.append(source[index])
                advance()
            }
        }
        advance(closing.utf8.count)
        literals.append(StringLiteral(line: startLine, text: String(decoding: text, as: UTF8.self), interpolations: interpolations))
    }
}
