// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "flashsale",
    products: [
        .executable(name: "flashsale", targets: ["flashsale"]),
    ],
    targets: [
        // The system libsqlite3 (Debian: libsqlite3-dev), linked through a module map as GRDB does.
        .systemLibrary(
            name: "CSQLite",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // The rules: pure Swift, no SQLite, no I/O.
        .target(name: "FlashSaleCore"),
        // SQLite and nothing else; SaleStore holds all business SQL.
        .target(name: "FlashSaleStore", dependencies: ["CSQLite", "FlashSaleCore"]),
        // Argument parsing, commands, output.
        .target(name: "FlashSaleCLI", dependencies: ["FlashSaleCore", "FlashSaleStore"]),
        .executableTarget(name: "flashsale", dependencies: ["FlashSaleCLI"]),

        .testTarget(name: "FlashSaleCoreTests", dependencies: ["FlashSaleCore"]),
        .testTarget(name: "FlashSaleStoreTests", dependencies: ["FlashSaleStore", "FlashSaleCore"]),
        // Depends on the executable so that `swift test` builds the binary these tests run.
        .testTarget(name: "FlashSaleCLITests", dependencies: ["FlashSaleCLI", "flashsale"]),
    ],
    swiftLanguageModes: [.v6]
)
