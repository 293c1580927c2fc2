import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import ServalArtifacts
import ServalAuth
import ServalCore
import ServalJobs
import ServalLogs
import ServalMetrics
import ServalObjects
import ServalRuntime
import ServalServices
import ServalStore

@testable import ServalHTTP

/// Serval's HTTP application over real services: a SQLite store, a package store, an object store and the worker
/// log store in a temporary folder. No service runs (no dispatcher, no transform runner, no endpoint), so nothing
/// here starts a model worker; requests are served in process (HummingbirdTesting's `.router`).
struct HTTPApplicationFixture {
    let folder: String
    let packages: PackageStore
    let builder: HTTPApplication
    /// `ACCESS_KEY_ID:SECRET` of an admin, a deployer and an invoker; empty when authentication is off.
    let keys: [AccessKeyRole: String]

    /// Builds the services; with `authentication`, an admin, a deployer and an invoker key.
    init(authentication: Bool, maxPackageBytes: Int64 = 10 * 1024 * 1024) async throws {
        folder = NSTemporaryDirectory() + "serval-http-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let logger = Logger(label: "test")
        let clock = SystemClock()
        let store = try SQLiteMetadataStore(path: folder + "/serval.sqlite")
        var packages = PackageStore(dataDirectory: folder)
        packages.maxPackageBytes = maxPackageBytes
        self.packages = packages
        let objects = try LocalObjectStore(root: folder + "/objects")
        let variants = VariantFactory(
            launcher: PythonWorkerLauncher(
                environments: PythonEnvironments(
                    settings: PythonSettings(executable: "python3", workerPath: folder, cacheDirectory: folder, basePackages: []),
                    logger: logger),
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton),
            logger: logger)
        let endpoints = EndpointManager(store: store, packages: packages, variants: variants, clock: clock, logger: logger)
        let inference = InferenceService(endpoints: endpoints)
        let configs = EndpointConfigService(store: store, clock: clock)
        let dispatcher = AsyncDispatcher(
            store: store, objects: objects, inference: inference, clock: clock, settings: AsyncSettings(owner: "test"),
            logger: logger)
        let runner = TransformRunner(
            store: store, objects: objects, packages: packages, variants: variants, inference: inference, clock: clock,
            settings: TransformSettings(owner: "test", partsDirectory: folder + "/transform-parts"), logger: logger)
        var services = HTTPServices(
            models: ModelService(store: store, packages: packages, clock: clock), configs: configs, endpoints: endpoints,
            inference: inference,
            repository: ModelRepositoryService(endpoints: endpoints, configs: configs, inference: inference, store: store),
            asyncInvocations: AsyncInvocationService(store: store, objects: objects, dispatcher: dispatcher, clock: clock),
            transformJobs: TransformJobService(store: store, objects: objects, runner: runner, clock: clock),
            tags: ResourceTagService(store: store),
            logs: try WorkerLogStore(path: folder + "/logs.sqlite", clock: clock, logger: logger), clock: clock)
        services.sageMaker = SageMakerControlSettings(objects: objects)
        services.metrics = MetricsSource(
            metrics: ServalMetrics(), endpoints: endpoints, asyncInvocations: services.asyncInvocations,
            transformVariants: { [] })
        let accessKeys = AccessKeyService(
            store: store, masterKeyPath: AccessKeyService.masterKeyPath(dataDirectory: folder), clock: clock, logger: logger)
        var keys: [AccessKeyRole: String] = [:]
        var authenticator: RequestAuthenticator?
        if authentication {
            try accessKeys.prepare()
            for role in AccessKeyRole.allCases {
                let new = try await accessKeys.create(role: role, description: nil)
                keys[role] = "\(new.key.id):\(new.secret.value)"
            }
            authenticator = RequestAuthenticator(directory: accessKeys, clock: clock)
        }
        self.keys = keys
        builder = HTTPApplication(
            services: services, accessControl: HTTPAccessControl(keys: accessKeys, authenticator: authenticator))
    }

    /// Runs `test` against the application in process, then removes the folder.
    func test(_ test: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var logger = Logger(label: "serval-http-tests")
        logger.logLevel = .warning
        try await builder.application(logger: logger).test(.router, test)
    }

    /// The `Authorization` header of `role`'s key.
    func authorization(_ role: AccessKeyRole?) -> HTTPFields {
        guard let role, let key = keys[role] else { return [:] }
        return [.authorization: "Bearer " + key]
    }
}

extension TestResponse {
    /// The body as a JSON object.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
    }
}

extension RegisteredRoute {
    /// The path with every `{parameter}` filled in.
    var example: String {
        path.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("{") ? "x" : String($0) }.joined(separator: "/")
    }
}
