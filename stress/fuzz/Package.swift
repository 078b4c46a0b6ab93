// swift-tools-version: 6.0
import PackageDescription

// libFuzzer targets for flashsale's parsers; see ../FUZZING.md. A package of its own because
// libFuzzer brings its own `main`, which the root package's static `flashsale` binary cannot
// share. Build with `swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing -Xswiftc -use-ld=lld`
// (the targets reach internal parsers through `@testable import`), or just run ../fuzz.sh.
let package = Package(
    name: "flashsale-fuzz",
    dependencies: [.package(name: "flashsale", path: "../..")],
    targets: [
        // Each fuzz target is an executable whose @main hands over to libFuzzer's driver:
        // SwiftPM links every executable with a main of its own, so libFuzzer's cannot be used.
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer", .product(name: "FlashSaleCore", package: "flashsale")]),
        .executableTarget(name: "fuzz-args", dependencies: [
            "FuzzSupport",
            .product(name: "FlashSaleCore", package: "flashsale"),
            .product(name: "FlashSaleCLI", package: "flashsale"),
        ]),
        .executableTarget(name: "fuzz-ndjson", dependencies: ["FuzzSupport", .product(name: "FlashSaleCore", package: "flashsale")]),
        .executableTarget(name: "fuzz-csv", dependencies: ["FuzzSupport", .product(name: "FlashSaleCore", package: "flashsale")]),
        .executableTarget(name: "fuzz-time", dependencies: ["FuzzSupport", .product(name: "FlashSaleCore", package: "flashsale")]),
    ],
    swiftLanguageModes: [.v6]
)
