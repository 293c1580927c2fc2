// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    // Lets release builds specialise generics across Serval's own modules (the batcher is generic over its
    // items and sits on the hot path); measured in bench/.
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]

let package = Package(
    name: "serval",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "serval", targets: ["serval"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Domain values, errors and configuration. Knows nothing of I/O.
        .target(
            name: "ServalCore",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Batch transform's record pipeline, without I/O: planning units on record boundaries, splitting records,
        // building payloads, JSONPath filters, joins and assembling outputs.
        .target(
            name: "ServalTransform",
            dependencies: ["ServalCore"],
            swiftSettings: swiftSettings
        ),
        // Pure state machines for batching, admission, restart backoff, traffic routing and deployments.
        .target(
            name: "ServalScheduling",
            dependencies: ["ServalCore", .product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: swiftSettings
        ),
        // The versioned, length-prefixed frame codec spoken with model workers.
        .target(
            name: "ServalWorkerIPC",
            dependencies: ["ServalCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Metadata store protocols, the leased work queue, and their SQLite implementation.
        .target(
            name: "ServalStore",
            dependencies: ["ServalCore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        // Model workers' output as CloudWatch-style log events: its own SQLite database, bounded, written off the
        // workers' path; the queries behind CloudWatch Logs' API and `serval logs`.
        .target(
            name: "ServalLogs",
            dependencies: [
                "ServalCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // zlib, for gzip-compressed model packages.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Model packages: safe archive extraction, package layout detection.
        .target(
            name: "ServalArtifacts",
            dependencies: [
                "ServalCore",
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Starting child processes with only the descriptors, user and parent-death signal they should have.
        .target(name: "CServalSpawn"),
        // Worker processes, Python environments, per-variant batching and routing.
        .target(
            name: "ServalRuntime",
            dependencies: [
                "ServalCore", "ServalScheduling", "ServalWorkerIPC", "CServalSpawn",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Serval's object store: buckets of objects in a local folder, written atomically.
        .target(
            name: "ServalObjects",
            dependencies: [
                "ServalCore", "ServalArtifacts",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Access keys and request authentication: AWS Signature Version 4 and bearer tokens verified over plain
        // values, roles and their permissions, and sealing secrets at rest. Pure: no HTTP framework, no I/O.
        .target(
            name: "ServalAuth",
            dependencies: ["ServalCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Serval's metrics: the instruments the inference paths record into (swift-metrics, with swift-prometheus as
        // the backend) and their Prometheus exposition.
        .target(
            name: "ServalMetrics",
            dependencies: [
                "ServalCore",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // Protocol-agnostic use cases shared by every frontend.
        .target(
            name: "ServalServices",
            dependencies: [
                "ServalCore", "ServalStore", "ServalArtifacts", "ServalRuntime", "ServalScheduling", "ServalAuth", "ServalObjects",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Asynchronous inference: the dispatcher that claims queued invocations under leases, the rescuer, and
        // webhook delivery.
        .target(
            name: "ServalJobs",
            dependencies: [
                "ServalCore", "ServalStore", "ServalObjects", "ServalRuntime", "ServalServices", "ServalTransform",
                "ServalArtifacts",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Guards on the HTTP/1 connections of every HTTP port: the request head deadline, the connection limit,
        // HTTP/1.0 connection closing and the Host check.
        .target(
            name: "ServalHTTPGuards",
            dependencies: [
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The S3-compatible object API on its own port (path-style), over ServalObjects.
        .target(
            name: "ServalS3",
            dependencies: [
                "ServalCore", "ServalObjects", "ServalAuth", "ServalHTTPGuards",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Open Inference Protocol v2 REST codecs: JSON tensors and Triton's binary tensor extension.
        .target(
            name: "ServalOIP",
            dependencies: ["ServalCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Code generated from proto/grpc_predict_v2.proto by scripts/generate-grpc.sh (committed, not built from
        // the proto): the Open Inference Protocol's gRPC messages, service and client.
        .target(
            name: "ServalOIPProto",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // The gRPC frontend: inference.GRPCInferenceService over the protocol-agnostic services.
        .target(
            name: "ServalGRPC",
            dependencies: [
                "ServalCore", "ServalServices", "ServalOIPProto", "ServalAuth",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The JSON shapes of Serval's REST API, shared by the server and the client.
        .target(
            name: "ServalAPI",
            dependencies: ["ServalCore"],
            swiftSettings: swiftSettings
        ),
        // The HTTP frontend: Serval's REST API and the SageMaker runtime contract.
        .target(
            name: "ServalHTTP",
            dependencies: [
                "ServalCore", "ServalAPI", "ServalServices", "ServalRuntime", "ServalOIP", "ServalJobs", "ServalObjects",
                "ServalStore", "ServalArtifacts", "ServalAuth", "ServalMetrics", "ServalLogs",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            resources: [.copy("Resources/openapi.json")],
            swiftSettings: swiftSettings
        ),
        // A typed HTTP client for Serval's REST API, used by the CLI and the tests.
        .target(
            name: "ServalClient",
            dependencies: [
                "ServalCore", "ServalAPI", "ServalArtifacts", "ServalAuth",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "serval",
            dependencies: [
                "ServalCore", "ServalAPI", "ServalServices", "ServalHTTP", "ServalGRPC", "ServalClient", "ServalArtifacts",
                "ServalStore", "ServalObjects", "ServalS3", "ServalJobs", "ServalAuth", "ServalHTTPGuards", "ServalMetrics", "ServalLogs",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                "ServalRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // bench/: a gRPC load generator with its own latency histogram, for the OIP gRPC benchmark.
        .executableTarget(
            name: "serval-grpc-load",
            dependencies: [
                "ServalOIPProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "bench/grpc-load",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "ServalCoreTests", dependencies: ["ServalCore", "ServalFuzzSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ServalSchedulingTests", dependencies: ["ServalScheduling", "ServalCore", "ServalFuzzSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "ServalMetricsTests", dependencies: ["ServalMetrics", "ServalCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ServalServicesTests",
            dependencies: [
                "ServalServices", "ServalCore", "ServalObjects", "ServalRuntime", "ServalStore", "ServalArtifacts",
                "ServalWorkerFake", "ServalWorkerIPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalHTTPGuardsTests",
            dependencies: [
                "ServalHTTPGuards", .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "ServalRuntimeTests",
            dependencies: [
                "ServalRuntime", "ServalCore", "ServalWorkerFake", "ServalWorkerIPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalTransformTests", dependencies: ["ServalTransform", "ServalCore", "ServalFuzzSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalWorkerIPCTests",
            dependencies: ["ServalWorkerIPC", "ServalCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalOIPTests",
            dependencies: ["ServalOIP", "ServalCore", "ServalFuzzSupport", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalObjectsTests",
            dependencies: ["ServalObjects", "ServalCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalS3Tests",
            dependencies: [
                "ServalS3", "ServalObjects", "ServalCore", "ServalAuth", "ServalFuzzSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalJobsTests",
            dependencies: [
                "ServalJobs", "ServalStore", "ServalObjects", "ServalCore", "ServalServices", "ServalRuntime", "ServalArtifacts",
                "ServalWorkerFake",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalAuthTests",
            dependencies: ["ServalAuth", "ServalCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalHTTPTests",
            dependencies: [
                "ServalHTTP", "ServalAuth", "ServalServices", "ServalStore", "ServalArtifacts", "ServalRuntime", "ServalJobs",
                "ServalObjects", "ServalLogs", "ServalCore", "ServalMetrics",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalStoreTests", dependencies: ["ServalStore", "ServalCore", "ServalAuth"], swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalLogsTests",
            dependencies: ["ServalLogs", "ServalCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Seeds and a time budget for the seeded random tests (fuzzing) of the test targets below.
        .target(name: "ServalFuzzSupport", path: "Tests/ServalFuzzSupport", swiftSettings: swiftSettings),
        // An in-process model worker for tests: scripted fake models behind the real worker protocol (a socketpair,
        // ServalWorkerIPC's codec), so that Runtime, Services and Jobs are tested without Python.
        .target(
            name: "ServalWorkerFake",
            dependencies: [
                "ServalCore", "ServalWorkerIPC", "ServalRuntime",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/ServalWorkerFake",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalArtifactsTests",
            dependencies: [
                "ServalArtifacts", "ServalCore", "ServalFuzzSupport", .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServalEndToEndTests",
            dependencies: [
                "ServalCore", "ServalAPI", "ServalClient",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
