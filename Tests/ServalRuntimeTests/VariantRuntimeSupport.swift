import Logging
import NIOCore
import ServalCore
import ServalRuntime
import ServalWorkerFake
import Synchronization
import Testing

/// Serval's log in these tests: expected crashes and kills would fill the output.
let quietLogger: Logger = {
    var logger = Logger(label: "serval-runtime-tests")
    logger.logLevel = .critical
    return logger
}()

/// The spec of a variant of endpoint `e` serving model `m` (the fake launcher does not read its folder).
///
/// The timeouts are the largest allowed unless a test sets them, so that only the scripted workers decide how long
/// things take (a loaded machine may hold this process's threads for minutes).
func spec(
    instances: Int = 1, batching: BatchingSettings = .off, invocationTimeoutSeconds: Int = 3600,
    modelLoadTimeoutSeconds: Int = 3600
) -> VariantSpec {
    VariantSpec(
        endpointName: "e",
        variant: ProductionVariant(
            name: "AllTraffic", modelName: "m", instanceCount: instances, batching: batching,
            invocationTimeoutSeconds: invocationTimeoutSeconds, modelLoadTimeoutSeconds: modelLoadTimeoutSeconds),
        model: Model(
            name: "m", packagePath: "models/m",
            package: ModelPackageInfo(artifact: .sklearn, hasInferenceCode: false, requirements: nil, digest: "00", sizeBytes: 1),
            environment: [:], createdAt: Timestamp(millisecondsSinceEpoch: 0)),
        modelDirectory: "/nonexistent/models/m")
}

/// Batching that lets a batch leave only when it is full (or after 30 s).
func batching(upTo size: Int) -> BatchingSettings {
    BatchingSettings(maxBatchSize: size, maxQueueDelayMicroseconds: 30_000_000, maxQueueSize: 1024)
}

/// A CSV request.
func csv(_ body: String) -> InvocationRequest {
    InvocationRequest(body: ByteBuffer(string: body), contentType: "text/csv", accept: "", customAttributes: "")
}

/// Everything a variant's observer was told, in order.
final class RecordingObserver: VariantObserver {
    enum Event: Equatable {
        case invocationEnded(InferencePath, InferenceFailure?)
        case batchSent(items: Int, rows: Int)
        case queued
        case batchComputed
        case modelLoaded
        case recordsTransformed(Int)
        case captureDropped(Int)
    }

    private let log = Mutex<[Event]>([])

    var events: [Event] { log.withLock { $0 } }

    func invocationEnded(path: InferencePath, duration: Duration, failure: InferenceFailure?) {
        log.withLock { $0.append(.invocationEnded(path, failure)) }
    }
    func batchSent(items: Int, rows: Int) { log.withLock { $0.append(.batchSent(items: items, rows: rows)) } }
    func queued(for duration: Duration) { log.withLock { $0.append(.queued) } }
    func batchComputed(in duration: Duration) { log.withLock { $0.append(.batchComputed) } }
    func modelLoaded(in duration: Duration) { log.withLock { $0.append(.modelLoaded) } }
    func recordsTransformed(_ count: Int) { log.withLock { $0.append(.recordsTransformed(count)) } }
    func captureDropped(_ count: Int) { log.withLock { $0.append(.captureDropped(count)) } }
}

/// The states a variant went through, in order.
final class StateLog: Sendable {
    private let states = Mutex<[VariantRuntime.State]>([])

    var all: [VariantRuntime.State] { states.withLock { $0 } }

    func record(_ state: VariantRuntime.State) {
        states.withLock { $0.append(state) }
    }
}

/// A running variant runtime over a fake launcher, with what it reports.
struct RunningVariant {
    let runtime: VariantRuntime
    let launcher: FakeWorkerLauncher
    let observer: RecordingObserver
    let states: StateLog

    /// Runs a variant of `spec` whose workers play `model` while `body` runs, then stops it and waits for `run()`
    /// to return.
    static func with<T>(
        _ model: FakeModel = FakeModel(), spec: VariantSpec = spec(), _ body: (RunningVariant) async throws -> T
    ) async throws -> T {
        let launcher = FakeWorkerLauncher(model)
        let observer = RecordingObserver()
        let states = StateLog()
        let runtime = VariantRuntime(
            spec: spec, launcher: launcher, observer: observer, logger: quietLogger,
            onStateChange: { states.record($0) })
        let variant = RunningVariant(runtime: runtime, launcher: launcher, observer: observer, states: states)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await runtime.run() }
            let result: T
            do {
                result = try await body(variant)
            } catch {
                await runtime.stop(drainTimeout: .zero, exitTimeout: .seconds(5))
                throw error
            }
            await runtime.stop(drainTimeout: .seconds(10), exitTimeout: .seconds(10))
            try await group.waitForAll()
            return result
        }
    }

    /// Waits until the variant is in `state`.
    func wait(for state: VariantRuntime.State, within timeout: Duration = .seconds(30)) async -> Bool {
        await eventually(within: timeout) { await runtime.status().state == state }
    }

    /// Waits until the variant has failed, and returns its reason.
    func failure(within timeout: Duration = .seconds(30)) async -> String? {
        var reason: String?
        _ = await eventually(within: timeout) {
            if case .failed(let why) = await runtime.status().state { reason = why }
            return reason != nil
        }
        return reason
    }
}
