// swift-tools-version:6.1
import PackageDescription

// Layout (one-way dependencies):
//   CRabbitMQ (C binding) -> RabbitMQ (AMQP client, the only Swift code touching the C API)
//   DariBridge (domain: decoding, URL policy, retry policy, pipeline; protocols only: no broker, no HTTP, no C)
//   DariBridgeApp (adapters and wiring: configuration, RabbitMQ adapter, Dari HTTP client, worker service, /metrics)
//   dari-bridge (executable), dari-bridge-bench (benchmark), FakeDari (a Dari stand-in for tests/bench)
let package = Package(
    name: "dari-bridge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "dari-bridge", targets: ["dari-bridge"]),
        .executable(name: "dari-bridge-bench", targets: ["dari-bridge-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // No default traits: FullFoundation would link all of Foundation (ICU) into the binary.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        .target(
            name: "RabbitMQ",
            dependencies: ["CRabbitMQ", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "DariBridge",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "DariBridgeApp",
            dependencies: [
                "DariBridge", "RabbitMQ",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
            ]
        ),
        .target(name: "CMallocTuning"),
        .executableTarget(
            name: "dari-bridge",
            dependencies: ["DariBridgeApp", "CMallocTuning"],
            linkerSettings: [.unsafeFlags(["-use-ld=lld", "-Xlinker", "--no-export-dynamic", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(configuration: .release))]
        ),
        .target(
            name: "FakeDari",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "dari-bridge-bench",
            dependencies: ["FakeDari", "RabbitMQ", "DariBridge", .product(name: "AsyncHTTPClient", package: "async-http-client")]
        ),
        // What the test targets share: an in-memory broker, scripted Dari transports, a raw
        // recording HTTP server, a capturing log handler.
        .target(
            name: "TestSupport",
            dependencies: ["DariBridge", .product(name: "Logging", package: "swift-log"),
                           .product(name: "InMemoryTracing", package: "swift-distributed-tracing")],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "DariBridgeTests", dependencies: [
            "DariBridge", "DariBridgeApp", "FakeDari", "TestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            .product(name: "MetricsTestKit", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .testTarget(name: "RabbitMQTests", dependencies: ["RabbitMQ", "TestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: [
            "DariBridgeApp", "DariBridge", "RabbitMQ", "FakeDari", "TestSupport",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "MetricsTestKit", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
