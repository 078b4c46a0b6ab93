import Foundation
import HTTPTypes
import Testing
@testable import FlashSaleServer

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
private let documentFile = packageRoot.appendingPathComponent("openapi.json")
private let generatedSource = packageRoot.appendingPathComponent("Sources/FlashSaleServer/OpenAPIDocument.swift")

/// openapi.json is the one source of the buyer API's description: the server carries it
/// compiled in (OpenAPIDocument.swift, generated from it), and it must name exactly the
/// routes and statuses of `BuyerRoute`.
@Suite struct OpenAPITests {
    /// Like the man page's check: the committed Swift file must be what the generator makes
    /// of openapi.json. With FLASHSALE_UPDATE_OPENAPI=1 the test writes it first.
    @Test func theServedDocumentIsTheRepositorysOpenAPIJSON() throws {
        let document = try String(contentsOf: documentFile, encoding: .utf8)
        let source = OpenAPISource.render(document)
        let updating = ProcessInfo.processInfo.environment["FLASHSALE_UPDATE_OPENAPI"] == "1"
        if updating, try String(contentsOf: generatedSource, encoding: .utf8) != source {
            try source.write(to: generatedSource, atomically: true, encoding: .utf8)
        }
        if let line = firstDifference(try String(contentsOf: generatedSource, encoding: .utf8), source) {
            Issue.record("""
                Sources/FlashSaleServer/OpenAPIDocument.swift:\(line) is not what openapi.json makes of it: \
                run FLASHSALE_UPDATE_OPENAPI=1 swift test --filter OpenAPI
                """)
        }
        // What this build serves; after an update, the next build's.
        if !updating, let line = firstDifference(OpenAPIDocument.json, document) {
            Issue.record("the served document differs from openapi.json at line \(line)")
        }
    }

    /// A `"#` or `\#` in the document must neither end the literal nor start an escape.
    @Test func theLiteralsDelimiterHasMoreHashesThanAnyRunInTheText() {
        let text = "{\"a\": \"\\\"#\", \"b\": \"\\\\##(x)\"}\n"
        #expect(OpenAPISource.literal(text) == "###\"\"\"\n\(text)\n\"\"\"###")
    }

    @Test func everyRouteAndStatusOfTheCodeIsInTheDocumentAndNothingElse() throws {
        let paths = try #require(try document()["paths"] as? [String: [String: Any]])
        var documented: [String: (operationID: String?, statuses: Set<Int>)] = [:]
        for (path, item) in paths {
            for (method, operation) in item {
                guard let operation = operation as? [String: Any], let responses = operation["responses"] as? [String: Any] else { continue }
                documented["\(method.uppercased()) \(template(path))"] = (operation["operationId"] as? String,
                                                                          Set(responses.keys.compactMap { Int($0) }))
            }
        }
        for route in BuyerRoute.allCases {
            let key = "\(route.method.rawValue) \(template(route.pattern))"
            guard let operation = documented.removeValue(forKey: key) else {
                Issue.record("openapi.json lacks \(route) (\(route.method.rawValue) \(route.pattern))")
                continue
            }
            // Logs and metrics label requests with the route's name: the operation's id is it.
            #expect(operation.operationID == route.rawValue, "\(key)")
            let coded = Set(route.statuses.map(\.code))
            #expect(coded.subtracting(operation.statuses).isEmpty,
                    "openapi.json lacks statuses of \(route): \(coded.subtracting(operation.statuses).sorted())")
            #expect(operation.statuses.subtracting(coded).isEmpty,
                    "openapi.json has statuses \(route) never answers: \(operation.statuses.subtracting(coded).sorted())")
        }
        #expect(documented.isEmpty, "openapi.json has operations no route answers: \(documented.keys.sorted())")
    }

    /// A reference that names nothing breaks every client generated from the document.
    @Test func everyReferenceNamesAPartOfTheDocument() throws {
        let root = try document()
        var references: [String] = []
        func collect(_ value: Any) {
            if let object = value as? [String: Any] {
                if let reference = object["$ref"] as? String { references.append(reference) }
                object.values.forEach(collect)
            } else if let array = value as? [Any] {
                array.forEach(collect)
            }
        }
        collect(root)
        #expect(!references.isEmpty)
        for reference in references {
            #expect(reference.hasPrefix("#/"), "\(reference)")
            let found = reference.dropFirst(2).split(separator: "/").reduce(Optional<Any>(root)) { node, name in
                (node as? [String: Any])?[String(name)]
            }
            #expect(found != nil, "\(reference) names nothing in openapi.json")
        }
    }

    /// The first line (from 1) where two texts differ; nil when they do not.
    private func firstDifference(_ a: String, _ b: String) -> Int? {
        let (left, right) = (a.split(separator: "\n", omittingEmptySubsequences: false),
                             b.split(separator: "\n", omittingEmptySubsequences: false))
        guard left != right else { return nil }
        return (zip(left, right).enumerated().first { $1.0 != $1.1 }?.offset ?? min(left.count, right.count)) + 1
    }

    private func document() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: documentFile)) as? [String: Any])
    }

    /// A path with its parameters' names left out: OpenAPI holds paths that differ only in
    /// them to be the same path (so `POST /booking-service/requests/{sale}` and `GET
    /// /booking-service/requests/{id}` share one, whose parameter has one name).
    private func template(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("{") ? "{}" : String($0) }.joined(separator: "/")
    }
}

/// OpenAPIDocument.swift, made from openapi.json's text.
enum OpenAPISource {
    static func render(_ document: String) -> String {
        """
        // Generated from openapi.json by OpenAPITests: edit openapi.json, then run
        // FLASHSALE_UPDATE_OPENAPI=1 swift test --filter OpenAPI

        /// The OpenAPI 3.1 description of the buyer API, served at `GET /openapi.json` on the
        /// admin listener: the repository's openapi.json, compiled in (the binary is static and
        /// carries no resource files).
        enum OpenAPIDocument {
            static let json = \(literal(document))
        }

        """
    }

    /// `text` as a multi-line raw string literal whose value is exactly `text`: its lines at
    /// the left margin (the closing delimiter's), and more `#` than any run of them in the
    /// text, so that neither `"""#` nor `\#` in it can end the literal or escape.
    static func literal(_ text: String) -> String {
        var longest = 0
        var run = 0
        for character in text {
            run = character == "#" ? run + 1 : 0
            longest = max(longest, run)
        }
        let hashes = String(repeating: "#", count: longest + 1)
        // The newline before the closing delimiter is not part of the value.
        return "\(hashes)\"\"\"\n\(text)\n\"\"\"\(hashes)"
    }
}
