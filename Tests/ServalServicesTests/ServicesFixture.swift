import Foundation
import Logging
import NIOCore
import ServalArtifacts
import ServalCore
import ServalRuntime
import ServalServices
import ServalStore
import ServalWorkerFake
import ServiceLifecycle
import Synchronization
import Testing

/// Serval's log in these tests: expected failures would fill the output.
let quietLogger: Logger = {
    var logger = Logger(label: "serval-services-tests")
    logger.logLevel = .critical
    return logger
}()

/// Endpoint services over a real SQLite store in a temporary folder, with fake workers: an `EndpointManager` made
/// the way `serve` makes it (through a `VariantFactory`), and the `InferenceService` in front of it.
final class ServicesFixture: Sendable {
    let folder: String
    let store: SQLiteMetadataStore
    let configs: EndpointConfigService
    let observer = RecordingInferenceObserver()

    init() throws {
        folder = FileManager.default.temporaryDirectory.appending(path: "serval-services-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        store = try SQLiteMetadataStore(path: folder + "/serval.sqlite")
        configs = EndpointConfigService(store: store, clock: SystemClock())
    }

    deinit {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Records models of these names (their packages are never read: the workers are fake).
    func models(_ names: String...) async throws {
        for name in names {
            try await store.createModel(
                Model(
                    name: name, packagePath: "models/\(name)",
                    package: ModelPackageInfo(artifact: .sklearn, hasInferenceCode: false, requirements: nil, digest: "00", sizeBytes: 1),
                    environment: [:], createdAt: SystemClock().now()))
        }
    }

    /// Records an endpoint config, through the config service's checks.
    func config(_ name: String, _ variants: [ProductionVariant]) async throws {
        _ = try await configs.create(name: name, variants: variants)
    }

    /// Runs an endpoint manager whose workers `launcher` starts while `body` runs, then shuts it down gracefully
    /// (every endpoint drains and its workers exit).
    func running<T>(
        _ launcher: FakeWorkerLauncher, _ body: (EndpointManager, InferenceService) async throws -> T
    ) async throws -> T {
        let manager = EndpointManager(
            store: store, packages: PackageStore(dataDirectory: folder),
            variants: VariantFactory(launcher: launcher, observer: observer, logger: quietLogger), clock: SystemClock(),
            logger: quietLogger)
        let inference = InferenceService(endpoints: manager)
        let group = ServiceGroup(services: [manager], logger: quietLogger)
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let result: T
            do {
                result = try await body(manager, inference)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        }
    }

    /// Waits until the stored endpoint satisfies `condition`, and returns it.
    func endpoint(
        _ name: String, within timeout: Duration = .seconds(30), where condition: @escaping (Endpoint) -> Bool
    ) async throws -> Endpoint? {
        var found: Endpoint?
        _ = try await eventually(within: timeout) {
            found = try await store.endpoint(named: name)
            return found.map(condition) ?? false
        }
        return found.flatMap { condition($0) ? $0 : nil }
    }
}

/// A variant whose timeouts are the largest allowed, so that only the scripted workers decide how long things take
/// (a loaded machine may hold this process's threads for minutes).
func variant(
    name: String, modelName: String, instanceCount: Int = 1, weight: Double = 1, batching: BatchingSettings = .off
) -> ProductionVariant {
    ProductionVariant(
        name: name, modelName: modelName, instanceCount: instanceCount, weight: weight, batching: batching,
        invocationTimeoutSeconds: 3600, modelLoadTimeoutSeconds: 3600)
}

/// A CSV request.
func csv(_ body: String) -> InvocationRequest {
    InvocationRequest(body: ByteBuffer(string: body), contentType: "text/csv", accept: "", customAttributes: "")
}

/// One FP64 `input-0` row.
func row(_ values: [Double]) -> InferenceRequest {
    var data = ByteBuffer()
    for value in values { data.writeInteger(value.bitPattern, endianness: .little) }
    return InferenceRequest(inputs: [Tensor(name: "input-0", datatype: .fp64, shape: [1, values.count], data: data)])
}

/// Records every invocation the inference entry reports, with the variant's labels.
final class RecordingInferenceObserver: InferenceObserver {
    struct Ended: Equatable {
        var labels: VariantLabels
        var path: InferencePath
        var failure: InferenceFailure?
    }

    private let log = Mutex<[Ended]>([])

    var ended: [Ended] { log.withLock { $0 } }

    func variant(_ labels: VariantLabels) -> any VariantObserver {
        Variant(labels: labels, parent: self)
    }

    fileprivate func record(_ event: Ended) {
        log.withLock { $0.append(event) }
    }

    private struct Variant: VariantObserver {
        let labels: VariantLabels
        let parent: RecordingInferenceObserver

        func invocationEnded(path: InferencePath, duration: Duration, failure: InferenceFailure?) {
            parent.record(Ended(labels: labels, path: path, failure: failure))
        }
        func batchSent(items: Int, rows: Int) {}
        func queued(for duration: Duration) {}
        func batchComputed(in duration: Duration) {}
        func modelLoaded(in duration: Duration) {}
        func recordsTransformed(_ count: Int) {}
        func captureDropped(_ count: Int) {}
    }
}
