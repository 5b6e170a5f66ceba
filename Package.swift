// swift-tools-version:6.1
import PackageDescription

// Swift 6 language mode (the tools version's default) gives complete strict concurrency checking.
let package = Package(
    name: "Conveyor",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ConveyorAMQP", targets: ["ConveyorAMQP"]),
        .library(name: "ConveyorRedis", targets: ["ConveyorRedis"]),
        .library(name: "Conveyor", targets: ["Conveyor"]),
        .library(name: "ConveyorWorker", targets: ["ConveyorWorker"]),
        .library(name: "ConveyorPrometheus", targets: ["ConveyorPrometheus"]),
        .library(name: "ConveyorGateway", targets: ["ConveyorGateway"]),
        .executable(name: "conveyor", targets: ["conveyor"]),
        .executable(name: "conveyor-examples-worker", targets: ["ConveyorExamplesWorker"]),
        .executable(name: "conveyor-examples-actor-client", targets: ["ConveyorExamplesActorClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.70.0"),
    ],
    targets: [
        // C libraries, wrapped by the two clients and never seen above them.
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        // No pkgConfig: hiredis.pc adds -D_FILE_OFFSET_BITS=64, which SwiftPM rejects with a warning on every
        // build; the header is under /usr/include (hiredis/) and the module map links the library.
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),

        // Connection plumbing both clients share: the owning thread, its wakeup, the one reconnect policy.
        .target(
            name: "ConveyorIO",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "ConveyorAMQP",
            dependencies: [
                "CRabbitMQ",
                "ConveyorIO",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "ConveyorRedis",
            dependencies: [
                "CHiredis",
                "ConveyorIO",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),

        // Benchmark programs: each prints one JSON line of figures (docs/BENCHMARKS.md).
        .target(
            name: "BenchmarkSupport",
            dependencies: ["ConveyorAMQP", "ConveyorIO", "ConveyorRedis"],
            path: "Benchmarks/BenchmarkSupport"
        ),
        .executableTarget(
            name: "ConveyorBenchmarks",
            dependencies: ["BenchmarkSupport", "ConveyorAMQP", "ConveyorRedis", "ConveyorIO"],
            path: "Benchmarks/ConveyorBenchmarks"
        ),
        // The C reference the AMQP figures are compared with: the same library driven by a minimal C loop.
        .executableTarget(
            name: "amqp-reference",
            dependencies: ["CRabbitMQ"],
            path: "Benchmarks/AMQPReference"
        ),
        .executableTarget(
            name: "amqp-latency",
            dependencies: ["CRabbitMQ"],
            path: "Benchmarks/AMQPLatency"
        ),
        // What producers and workers share: definitions, the wire protocol, the Redis schema, the client.
        .target(
            name: "Conveyor",
            dependencies: [
                "ConveyorAMQP",
                "ConveyorRedis",
                "ConveyorIO",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),

        // The runtime: registry, consumers, execution slots, retries, limits, dead letters, heartbeats, shutdown.
        .target(
            name: "ConveyorWorker",
            dependencies: [
                "Conveyor",
                "ConveyorAMQP",
                "ConveyorRedis",
                "ConveyorIO",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // The example task definitions and their implementations (README, demo, tests, benchmark).
        .target(
            name: "ConveyorGateway",
            dependencies: [
                "Conveyor", "ConveyorAMQP", "ConveyorRedis",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ConveyorPrometheus",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ConveyorExamples",
            dependencies: [
                "Conveyor", "ConveyorWorker", "ConveyorRedis", "ConveyorPrometheus",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/ConveyorExamples"
        ),
        .executableTarget(
            name: "ConveyorExamplesWorker",
            dependencies: [
                "ConveyorExamples", "ConveyorWorker",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/ConveyorExamplesWorker"
        ),
        // Spawns or finds a named example Counter and increments it: the actor tests' second, third... process.
        .executableTarget(
            name: "ConveyorExamplesActorClient",
            dependencies: [
                "ConveyorExamples", "Conveyor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/ConveyorExamplesActorClient"
        ),
        // Calls to one actor: throughput with 100 in flight, latency of sequential calls (docs/BENCHMARKS.md).
        .executableTarget(
            name: "ConveyorActorBenchmark",
            dependencies: ["BenchmarkSupport", "Conveyor", "ConveyorAMQP", "ConveyorWorker", "ConveyorExamples"],
            path: "Benchmarks/ConveyorActors"
        ),
        // Tasks end to end: a worker process running examples.noop, against the raw broker rate.
        .executableTarget(
            name: "ConveyorEndToEndBenchmark",
            dependencies: [
                "BenchmarkSupport", "Conveyor", "ConveyorAMQP", "ConveyorRedis", "ConveyorIO", "ConveyorExamples",
            ],
            path: "Benchmarks/ConveyorEndToEnd"
        ),
        // Generators end to end: items/s from one generator to one consumer, and time to first item.
        .executableTarget(
            name: "ConveyorStreamBenchmark",
            dependencies: [
                "BenchmarkSupport", "Conveyor", "ConveyorWorker", "ConveyorRedis", "ConveyorIO",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/ConveyorStream"
        ),
        // The command-line tool.
        .executableTarget(
            name: "conveyor",
            dependencies: [
                "Conveyor", "ConveyorWorker", "ConveyorExamples", "ConveyorIO", "ConveyorAMQP", "ConveyorRedis",
                "ConveyorGateway", "ConveyorPrometheus",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Shared by the test targets: server URLs, unique names, private server instances for chaos tests.
        .target(
            name: "ConveyorTestSupport",
            dependencies: ["ConveyorIO", "ConveyorRedis"],
            path: "Tests/ConveyorTestSupport"
        ),
        .testTarget(name: "ConveyorIOTests", dependencies: ["ConveyorIO"]),
        .testTarget(name: "ConveyorAMQPTests", dependencies: ["ConveyorAMQP", "ConveyorTestSupport"]),
        .testTarget(name: "ConveyorRedisTests", dependencies: ["ConveyorRedis", "ConveyorTestSupport"]),
        .testTarget(
            name: "ConveyorTests", dependencies: ["Conveyor", "ConveyorTestSupport"], exclude: ["Fixtures"]),
        .testTarget(
            name: "ConveyorWorkerTests",
            dependencies: [
                "ConveyorWorker", "Conveyor", "ConveyorExamples", "ConveyorTestSupport", "ConveyorGateway",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
    ]
)
