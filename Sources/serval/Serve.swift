import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServalAPI
import ServalArtifacts
import ServalAuth
import ServalCore
import ServalGRPC
import ServalHTTPGuards
import ServalHTTP
import ServalJobs
import ServalMetrics
import ServalLogs
import ServalObjects
import ServalRuntime
import ServalS3
import ServalServices
import ServalStore
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `serval serve`: one process serving the REST API, the SageMaker runtime routes and every endpoint's workers.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the Serval server.")

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The HTTP port (0 picks a free one and prints it).")
    var port = 8080

    @Option(help: "The Open Inference Protocol gRPC port (0 picks a free one and prints it).")
    var grpcPort = 8081

    @Option(help: "The S3-compatible object API port (0 picks a free one and prints it).")
    var s3Port = 9000

    @Option(help: "The data folder: the SQLite database and stored model packages.")
    var dataDir = ".serval"

    @Option(help: "The Python interpreter for the base runtime (or SERVAL_PYTHON).")
    var python: String?

    @Option(help: "Where Python environments are cached (or SERVAL_PYTHON_CACHE; default <data-dir>/python).")
    var pythonCache: String?

    @Option(help: "The folder holding the serval_worker package (or SERVAL_WORKER_PATH; found automatically in a checkout).")
    var workerPath: String?

    @Option(help: "The user model workers (and pip) run as when Serval runs as root (default: serval-worker, created on first use); see docs/security.md.")
    var workerUser: String?

    @Option(help: "The largest model package archive (an upload, an object or a file under a --model-source-root), in bytes.")
    var maxPackageBytes = 10 * 1024 * 1024 * 1024

    @Option(help: "The most bytes a model package may unpack to (default 10 times --max-package-bytes).")
    var maxUnpackedBytes: Int?

    @Option(help: "The free bytes storing a model package must leave on the data folder's disk.")
    var diskReserveBytes = 1024 * 1024 * 1024

    @Option(help: "A folder on this server whose packages REST model creation may name by path (modelDataUrl); repeat it. None by default: clients upload packages.")
    var modelSourceRoot: [String] = []

    @Option(help: "Seconds a lease on an async invocation or a transform job's unit lasts without a heartbeat: how long the work of a crashed Serval waits before it runs again.")
    var leaseSeconds = 30

    @Option(help: "A host, *.domain, IP address or CIDR block webhooks may be sent to (repeat it; default any host). A listed name reaches loopback and private addresses only inside a listed block. Link-local, unspecified and multicast addresses are always refused.")
    var webhookAllow: [String] = []

    @Option(help: "The first delay before a failed webhook delivery is retried, in milliseconds (it doubles up to 5 minutes).")
    var webhookRetryBaseMs = 1000

    @Option(help: "The account id in the SageMaker control plane's ARNs (12 digits).")
    var accountId = "000000000000"

    @Option(help: "The region in the SageMaker control plane's ARNs when a request's SigV4 credential scope names none.")
    var region = "us-east-1"

    @Option(help: "Days model workers' logs are kept after their last line (docs/logs.md).")
    var logRetentionDays = 30

    @Option(help: "The most one worker log stream keeps, in bytes; its oldest lines go first.")
    var logStreamMaxBytes = 8 * 1024 * 1024

    @Option(help: "The most all worker logs keep together, in bytes; the streams whose last line is oldest go first.")
    var logMaxBytes = 1024 * 1024 * 1024

    @Option(help: "Seconds an idle HTTP connection stays open.")
    var idleTimeout = 75

    @Option(help: "Seconds a client has to send a whole request head on the HTTP and S3 ports; a slower one gets 408 and is closed.")
    var headerTimeout = 10

    @Option(help: "HTTP connections open at once on each of the HTTP and S3 ports; one more is answered 503 and closed.")
    var maxConnections = 4096

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Flag(help: "Require an access key on every request but /ping and the health routes (or SERVAL_AUTH=1); see docs/access-keys.md.")
    var auth = false

    @Flag(help: "Turn off Prometheus metrics: no GET /metrics and no recording on the request paths.")
    var noMetrics = false

    @Flag(help: "Serve without authentication on an address other than loopback.")
    var allowUnauthenticated = false

    func run() async throws {
        var logger = Logger(label: "serval")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let environment = ProcessInfo.processInfo.environment
        let dataDirectory = URL(fileURLWithPath: dataDir).standardizedFileURL.path
        try PortCheck.ensureFree(
            host: host, ports: [("HTTP", port), ("gRPC", grpcPort), ("S3", s3Port)],
            flag: { ["HTTP": "--port", "gRPC": "--grpc-port", "S3": "--s3-port"][$0] ?? "--port" })
        try DataFolder.secure(dataDirectory, logger: logger)

        guard let workerPath = workerPath ?? environment["SERVAL_WORKER_PATH"] ?? Self.findWorker() else {
            throw ValidationError(
                "Cannot find the Python worker (a folder containing serval_worker/). Pass --worker-path or set SERVAL_WORKER_PATH.")
        }
        var settings = PythonSettings(
            executable: await PythonSettings.interpreterPath(python ?? environment["SERVAL_PYTHON"] ?? "python3"),
            workerPath: URL(fileURLWithPath: workerPath).standardizedFileURL.path,
            cacheDirectory: URL(fileURLWithPath: pythonCache ?? environment["SERVAL_PYTHON_CACHE"] ?? dataDirectory + "/python").standardizedFileURL.path,
            basePackages: PythonSettings.defaultBasePackages)
        try FileManager.default.createDirectory(atPath: settings.cacheDirectory, withIntermediateDirectories: true)
        if let user = try await WorkerIsolation.user(requested: workerUser, logger: logger) {
            settings.runAs = try WorkerIsolation.prepare(
                user: user, paths: [settings.executable, settings.workerPath, dataDirectory + "/models"],
                cacheDirectory: settings.cacheDirectory, exchangeDirectory: dataDirectory + "/exchange", logger: logger)
        }

        let clock = SystemClock()
        // Webhook secrets and secret-looking model environment values are sealed at rest, as access key secrets are.
        let store = try SQLiteMetadataStore(
            path: dataDirectory + "/serval.sqlite",
            sealer: MasterKeySealer(masterKeyPath: AccessKeyService.masterKeyPath(dataDirectory: dataDirectory)))
        let authentication = authenticationEnabled(environment: environment)
        try checkAuthenticationPolicy(enabled: authentication)
        let access = try await makeAccessControl(
            store: store, dataDirectory: dataDirectory, clock: clock, enabled: authentication, logger: logger)
        var packages = PackageStore(dataDirectory: dataDirectory)
        guard maxPackageBytes > 0, maxUnpackedBytes ?? 1 > 0, diskReserveBytes >= 0 else {
            throw ValidationError("--max-package-bytes and --max-unpacked-bytes must be positive, --disk-reserve-bytes not negative.")
        }
        packages.maxPackageBytes = Int64(maxPackageBytes)
        packages.maxUnpackedBytes = Int64(maxUnpackedBytes ?? (maxPackageBytes > Int.max / 10 ? Int.max : maxPackageBytes * 10))
        packages.diskReserveBytes = Int64(diskReserveBytes)
        do {
            packages.sourceRoots = try PackageSourceRoots(modelSourceRoot)
        } catch {
            throw ValidationError(error.description)
        }
        let objects = try LocalObjectStore(root: dataDirectory + "/objects")
        let environments = PythonEnvironments(settings: settings, logger: logger)
        let logs: WorkerLogStore
        do {
            logs = try WorkerLogStore(
                path: dataDirectory + "/logs.sqlite",
                settings: WorkerLogSettings(
                    maxStreamBytes: Int64(logStreamMaxBytes), maxTotalBytes: Int64(logMaxBytes),
                    retentionDays: logRetentionDays),
                clock: clock, logger: logger)
        } catch let error as ServalError {
            throw ValidationError("--log-retention-days, --log-stream-max-bytes, --log-max-bytes: \(error.message)")
        }
        let metrics = noMetrics ? nil : ServalMetrics()
        let variants = VariantFactory(
            launcher: PythonWorkerLauncher(
                environments: environments, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logs: logs),
            observer: metrics ?? NoInferenceObserver(), logger: logger)
        let manager = EndpointManager(store: store, packages: packages, variants: variants, clock: clock, logger: logger)
        let capture = DataCaptureWriter(objects: objects, clock: clock, logger: logger)
        let inference = InferenceService(endpoints: manager, capture: capture)
        let webhookPolicy = try WebhookPolicy(allow: webhookAllow.isEmpty ? ["*"] : webhookAllow)
        let configs = EndpointConfigService(store: store, clock: clock, webhookPolicy: webhookPolicy)
        let owner = UUID().uuidString.lowercased()
        let dispatcher = AsyncDispatcher(
            store: store, objects: objects, inference: inference, clock: clock,
            settings: AsyncSettings(
                owner: owner, leaseDuration: .seconds(leaseSeconds), webhookPolicy: webhookPolicy,
                webhookInitialBackoff: .milliseconds(webhookRetryBaseMs)),
            logger: logger)
        let transforms = TransformRunner(
            store: store, objects: objects, packages: packages, variants: variants, inference: inference, clock: clock,
            settings: TransformSettings(
                owner: owner, partsDirectory: dataDirectory + "/transform-parts", leaseDuration: .seconds(leaseSeconds)),
            logger: logger)
        let repository = ModelRepositoryService(endpoints: manager, configs: configs, inference: inference, store: store)
        let models = ModelService(store: store, packages: packages, clock: clock)
        for leftover in try await models.removeLeftovers() {
            logger.notice(
                "Removed what an interrupted upload or extraction left in the data folder",
                metadata: ["path": "\(leftover.path)", "bytes": "\(leftover.bytes)"])
        }
        let asyncInvocations = AsyncInvocationService(store: store, objects: objects, dispatcher: dispatcher, clock: clock)
        var services = HTTPServices(
            models: models,
            configs: configs,
            endpoints: manager,
            inference: inference,
            repository: repository,
            asyncInvocations: asyncInvocations,
            transformJobs: TransformJobService(store: store, objects: objects, runner: transforms, clock: clock),
            tags: ResourceTagService(store: store),
            logs: logs,
            clock: clock)
        guard SageMakerARN.isAccount(accountId), SageMakerARN.isRegion(region) else {
            throw ValidationError("--account-id must be 12 digits and --region lowercase letters, digits and hyphens.")
        }
        services.sageMaker = SageMakerControlSettings(objects: objects, accountID: accountId, defaultRegion: region)
        services.metrics = metrics.map {
            MetricsSource(
                metrics: $0, endpoints: manager, asyncInvocations: asyncInvocations,
                transformVariants: { transforms.runningVariants() })
        }

        let grpcListening = Mutex<Int?>(nil)
        services.grpcPort = { grpcListening.withLock { $0 } }
        let host = self.host
        let app = HTTPApplication(services: services, accessControl: access.http).application(
            configuration: .init(address: .hostname(host, port: port), serverName: "Serval"),
            server: .guardedHTTP1(
                configuration: .init(idleTimeout: .seconds(Int64(idleTimeout))),
                limits: ConnectionLimits(
                    headerTimeout: .seconds(Int64(headerTimeout)), maxConnections: maxConnections,
                    errorBody: { code, message in
                        let body = (try? JSONEncoder().encode(ErrorBody(code: code, message: message))) ?? Data()
                        return ("application/json", String(decoding: body, as: UTF8.self))
                    })),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                FileHandle.standardOutput.write(Data("Serval is listening on http://\(host):\(port)\n".utf8))
            },
            logger: logger)
        let grpc = GRPCFrontend(
            host: host, port: grpcPort, service: InferenceGRPCService(inference: inference, repository: repository, logger: logger),
            maxRequestBytes: InvocationLimits.maxTensorRequestBytes,
            authentication: access.authenticator.map { AuthenticationInterceptor(authenticator: $0, logger: logger) }
        ) { host, port in
            grpcListening.withLock { $0 = port }
            FileHandle.standardOutput.write(Data("Serval gRPC is listening on \(host):\(port)\n".utf8))
        }
        let s3 = S3Frontend(
            store: objects, host: host, port: s3Port, idleTimeoutSeconds: idleTimeout, headerTimeoutSeconds: headerTimeout,
            maxConnections: maxConnections,
            authenticator: access.authenticator, logger: logger
        ) { host, port in
            FileHandle.standardOutput.write(Data("Serval S3 is listening on http://\(host):\(port)\n".utf8))
        }
        // Shutdown runs in reverse order: package copies and extractions stop first (their requests fail with 503),
        // then the gRPC, HTTP and S3 servers drain their requests; then the
        // async dispatcher stops claiming and lets running invocations finish, and the transform runner stops
        // its workers and returns its units to the queue; then the endpoints stop; last the worker logs are
        // written out.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    // Shut down in reverse order: capture flushes once the frontends and the dispatcher are done, and
                    // the workers' logs are written out last.
                    .init(service: logs), .init(service: manager), .init(service: capture), .init(service: dispatcher),
                    .init(service: transforms),
                    .init(service: s3),
                    .init(service: app),
                    .init(service: grpc),
                    .init(service: CancelOnShutdown(cancellation: packages.shutdown)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }

    /// Cancels `cancellation` when graceful shutdown begins.
    private struct CancelOnShutdown: Service {
        let cancellation: PackageCancellation

        func run() async throws {
            try? await gracefulShutdown()
            cancellation.cancel()
        }
    }

    /// Looks for the worker package beside an installed binary, then up from the binary (a source checkout). The
    /// binary is found from the running process, not from `argv[0]`, which is a bare name when it ran from `PATH`.
    private static func findWorker() -> String? {
        let executable = (Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])).resolvingSymlinksInPath()
        var folder = executable.deletingLastPathComponent()
        let installed = folder.appendingPathComponent("../share/serval/python").standardizedFileURL
        if FileManager.default.fileExists(atPath: installed.appendingPathComponent("serval_worker/__main__.py").path) {
            return installed.path
        }
        for _ in 0..<6 {
            let candidate = folder.appendingPathComponent("python")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("serval_worker/__main__.py").path) {
                return candidate.path
            }
            folder.deleteLastPathComponent()
        }
        let current = FileManager.default.currentDirectoryPath + "/python"
        return FileManager.default.fileExists(atPath: current + "/serval_worker/__main__.py") ? current : nil
    }
}
