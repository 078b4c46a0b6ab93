// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "flashsale",
    products: [
        .executable(name: "flashsale", targets: ["flashsale"]),
        // For the fuzz targets in stress/fuzz, a separate package: a package may use another
        // only through its products, and libFuzzer's main cannot link into this one's
        // -static-executable binary.
        .library(name: "FlashSaleCore", targets: ["FlashSaleCore"]),
        .library(name: "FlashSaleCLI", targets: ["FlashSaleCLI"]),
    ],
    targets: [
        // The system libsqlite3 (Debian: libsqlite3-dev), linked through a module map as GRDB does.
        .systemLibrary(
            name: "CSQLite",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // The rules: pure Swift, no SQLite, no I/O.
        .target(name: "FlashSaleCore"),
        // Every state change, written once, on the store protocols it defines; no SQL, no I/O.
        .target(name: "FlashSaleEngine", dependencies: ["FlashSaleCore"]),
        // The SQLite store: the engine's protocols in SQL, and the read-only reports.
        .target(name: "FlashSaleStore", dependencies: ["CSQLite", "FlashSaleCore", "FlashSaleEngine"]),
        // Argument parsing, commands, output.
        .target(name: "FlashSaleCLI", dependencies: ["FlashSaleCore", "FlashSaleEngine", "FlashSaleStore"]),
        // Fully static: no dynamic loader work at start-up, which is most of a single `book`
        // (about 0.9 ms against 1.9 ms with libstdc++ and libgcc_s loaded dynamically).
        // SQLite comes from libsqlite3-dev's libsqlite3.a, Debian's build of it.
        .executableTarget(
            name: "flashsale",
            dependencies: ["FlashSaleCLI"],
            linkerSettings: [.unsafeFlags(["-static-executable"])]
        ),

        .testTarget(name: "FlashSaleCoreTests", dependencies: ["FlashSaleCore"]),
        // The tests' clock and helpers, shared by the targets below.
        .target(name: "FlashSaleTestSupport", dependencies: ["FlashSaleCore", "FlashSaleEngine"], path: "Tests/FlashSaleTestSupport"),
        // The store conformance suite: every rule, through Engine, against every store.
        .testTarget(name: "FlashSaleEngineTests",
                    dependencies: ["FlashSaleEngine", "FlashSaleCore", "FlashSaleStore", "FlashSaleTestSupport"]),
        // What only SQL can see: migrations, verify's checks, the file, the line's runs.
        .testTarget(name: "FlashSaleStoreTests",
                    dependencies: ["FlashSaleStore", "FlashSaleEngine", "FlashSaleCore", "FlashSaleTestSupport"]),
        // `swift test` builds every target, the flashsale binary these tests run included.
        // (Depending on the executable target would pass its -static-executable to the
        // test bundle, which links Foundation dynamically.)
        .testTarget(name: "FlashSaleCLITests",
                    dependencies: ["FlashSaleCLI", "FlashSaleEngine", "FlashSaleStore", "FlashSaleTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
