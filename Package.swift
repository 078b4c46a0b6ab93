// swift-tools-version: 6.1
import PackageDescription

/// flashsale's own modules refer to concrete generic types (`Set<UserID>`, `[String: [String]]`)
/// through their metadata accessors rather than by mangled name: a name is resolved at run time
/// by scanning every protocol conformance record of the binary for each generic requirement
/// first met, which cost a one-shot `book` on PostgreSQL about a millisecond (10,000 records
/// in flashsale-serve).
let directMetadataAccess: [SwiftSetting] = [
    .unsafeFlags(["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"]),
]

let package = Package(
    name: "flashsale",
    // Hummingbird and jwt-kit's floor; the command line itself runs anywhere Swift does.
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "flashsale", targets: ["flashsale"]),
        // `flashsale serve` execs this from beside itself: the HTTP stack (SwiftNIO,
        // Foundation) would cost every `book` its start-up if it were linked into `flashsale`.
        .executable(name: "flashsale-serve", targets: ["flashsale-serve"]),
        // For the fuzz targets in stress/fuzz, a separate package: a package may use another
        // only through its products, and libFuzzer's main cannot link into this one's
        // -static-executable binary.
        .library(name: "FlashSaleCore", targets: ["FlashSaleCore"]),
        .library(name: "FlashSaleCLI", targets: ["FlashSaleCLI"]),
    ],
    // Only for `flashsale-serve`; each is named with its reason in the README.
    dependencies: [
        // Hummingbird's default traits pull in full Foundation and swift-configuration, which
        // serve needs neither of.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // Hummingbird's own transport; named for the tests' HTTP client.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // The PostgreSQL store's client: pure Swift on SwiftNIO (which serve links already),
        // so the second executable stays static.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // verify-full's host name check as libpq makes it (RFC 6125's server identity);
        // jwt-kit links it already.
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    ],
    targets: [
        // The system libsqlite3 (Debian: libsqlite3-dev), linked through a module map as GRDB does.
        .systemLibrary(
            name: "CSQLite",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // Linux calls Swift cannot import (variadic, or GNU only): for rehearse's children,
        // and the store's reservation of disk space and naming of new files.
        .systemLibrary(name: "CLinux"),
        // The rules: pure Swift, no SQLite, no I/O.
        .target(name: "FlashSaleCore", swiftSettings: directMetadataAccess),
        // Every state change, written once, on the store protocols it defines; no SQL, no I/O.
        .target(name: "FlashSaleEngine", dependencies: ["FlashSaleCore"], swiftSettings: directMetadataAccess),
        // The SQLite store: the engine's protocols in SQL, and the read-only reports.
        .target(name: "FlashSaleStore", dependencies: ["CSQLite", "CLinux", "FlashSaleCore", "FlashSaleEngine"],
                swiftSettings: directMetadataAccess),
        // What the modules on SwiftNIO share: a task executor on an event loop.
        .target(name: "FlashSaleNIO", dependencies: [.product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: directMetadataAccess),
        // The PostgreSQL store: the same protocols in PostgreSQL's SQL, for `--db postgresql://`.
        .target(name: "FlashSalePostgres", dependencies: [
            "FlashSaleCore", "FlashSaleEngine", "FlashSaleNIO",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "X509", package: "swift-certificates"),
        ], swiftSettings: directMetadataAccess),
        // Argument parsing, commands, output.
        .target(name: "FlashSaleCLI", dependencies: ["CLinux", "FlashSaleCore", "FlashSaleEngine", "FlashSaleStore"],
                swiftSettings: directMetadataAccess),
        // Fully static: no dynamic loader work at start-up, which is most of a single `book`
        // (about 0.9 ms against 1.9 ms with libstdc++ and libgcc_s loaded dynamically).
        // SQLite comes from libsqlite3-dev's libsqlite3.a, Debian's build of it.
        .executableTarget(
            name: "flashsale",
            dependencies: ["FlashSaleCLI"],
            linkerSettings: [.unsafeFlags(["-static-executable"])]
        ),
        // `flashsale serve`: the buyers' HTTP API (../shared/http.md) on the engine.
        .target(name: "FlashSaleServer", dependencies: [
            "FlashSaleCLI", "FlashSaleEngine", "FlashSaleStore", "FlashSaleCore", "FlashSaleNIO",
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: directMetadataAccess),
        .executableTarget(
            name: "flashsale-serve",
            dependencies: ["FlashSaleServer", "FlashSalePostgres"],
            // Static too. postgres-nio brings full Foundation; a debug build (without
            // --static-swift-stdlib) must then name its static parts and their C++ runtime.
            linkerSettings: [.unsafeFlags(["-static-executable"]),
                             .linkedLibrary("_FoundationCollections"), .linkedLibrary("_FoundationCShims"),
                             .linkedLibrary("CoreFoundation"), .linkedLibrary("_FoundationICU"),
                             .linkedLibrary("stdc++")]
        ),

        .testTarget(name: "FlashSaleCoreTests", dependencies: ["FlashSaleCore"]),
        // The tests' clock and helpers, shared by the targets below.
        .target(name: "FlashSaleTestSupport", dependencies: ["FlashSaleCore", "FlashSaleEngine", "FlashSaleStore"],
                path: "Tests/FlashSaleTestSupport"),
        // The store conformance suite: every rule, through Engine, against every store.
        .testTarget(name: "FlashSaleEngineTests",
                    dependencies: ["FlashSaleEngine", "FlashSaleCore", "FlashSaleStore", "FlashSalePostgres", "FlashSaleTestSupport"]),
        // What only SQL can see: migrations, verify's checks, the file, the line's runs.
        .testTarget(name: "FlashSaleStoreTests",
                    dependencies: ["FlashSaleStore", "FlashSaleEngine", "FlashSaleCore", "FlashSaleTestSupport"]),
        // What only PostgreSQL's SQL can see: migrations under concurrency, the event log's
        // order across sales, lock timeouts, connection failures (skipped without a server);
        // and its URLs, read without one.
        .testTarget(name: "FlashSalePostgresTests",
                    dependencies: ["FlashSalePostgres", "FlashSaleEngine", "FlashSaleCore", "FlashSaleTestSupport"]),
        // `swift test` builds every target, the flashsale binary these tests run included.
        // (Depending on the executable target would pass its -static-executable to the
        // test bundle, which links Foundation dynamically.)
        .testTarget(name: "FlashSaleCLITests",
                    dependencies: ["FlashSaleCLI", "FlashSaleEngine", "FlashSaleStore", "FlashSalePostgres", "FlashSaleTestSupport"]),
        // serve over real sockets, through the flashsale binary, with a real HTTP client.
        .testTarget(name: "FlashSaleServerTests",
                    dependencies: ["FlashSaleServer", "FlashSaleStore", "FlashSaleEngine", "FlashSaleCore", "FlashSaleTestSupport",
                                   .product(name: "JWTKit", package: "jwt-kit"),
                                   .product(name: "NIOHTTP1", package: "swift-nio"),
                                   .product(name: "NIOPosix", package: "swift-nio"),
                                   .product(name: "NIOEmbedded", package: "swift-nio")]),
    ],
    swiftLanguageModes: [.v6]
)
