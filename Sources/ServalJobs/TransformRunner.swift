import Foundation
public import Logging
import NIOCore
import ServalArtifacts
public import ServalServices
public import ServalCore
public import ServalObjects
public import ServalRuntime
public import ServalStore
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Settings of transform jobs for one Serval process.
public struct TransformSettings: Sendable {
    /// Identifies this process's leases; unique per start.
    public var owner: String
    /// How long a unit's claim lasts without a heartbeat: a Serval that dies holds its units this long.
    public var leaseDuration: Duration
    /// How often jobs are looked at when nothing signals a change.
    public var pollInterval: Duration
    /// Where committed output parts wait until their object is assembled (`<folder>/<job>/<object>/<part>`).
    public var partsDirectory: String
    /// The first delay before a failed invocation is retried; it doubles with each retry.
    public var retryDelay: Duration

    /// Creates settings with Serval's defaults.
    public init(
        owner: String, partsDirectory: String, leaseDuration: Duration = .seconds(30), pollInterval: Duration = .seconds(1),
        retryDelay: Duration = .milliseconds(200)
    ) {
        self.owner = owner
        self.partsDirectory = partsDirectory
        self.leaseDuration = leaseDuration
        self.pollInterval = pollInterval
        self.retryDelay = retryDelay
    }
}

/// Runs transform jobs: plans each (lists its inputs and splits them into work units of whole records), starts
/// the job's own worker instances, claims units under leases renewed by a heartbeat, writes each unit's output
/// part atomically, assembles every input's `.out` object from its parts in order, and ends the job.
///
/// Everything is recorded in the store before it is acted on, so a `kill -9` of Serval or of a worker at any
/// moment loses nothing and duplicates nothing: a unit whose runner died goes back to the queue when its lease
/// ends and runs again; its part is written to a temporary file and renamed into place, so a part exists whole
/// or not at all and only committed units' parts are assembled; an `.out` object is renamed into place whole.
public final class TransformRunner: Service, Sendable {
    /// One job this process runs.
    private struct Running {
        var spec: TransformJobSpec
        var runtime: (any VariantServing)?
        /// Units in flight.
        var inFlight: Set<TransformUnit.ID> = []
        /// Whether planning is under way.
        var planning = false
        /// Not to claim before this instant (the workers were busy).
        var holdOff: ContinuousClock.Instant?
        /// The planned objects (their keys, output keys and unit counts never change), read once.
        var objects: [TransformObject]?
    }

    private struct State {
        var jobs: [String: Running] = [:]
        var housekeeping = HousekeepingGate()
        var stopping = false
    }

    private let store: any DeploymentStore & TransformJobStore
    private var queue: any LeasedQueue<TransformUnit> { store.transformUnitQueue }
    private let objects: any ObjectStore
    private let packages: PackageStore
    private let variants: VariantFactory
    private let inference: InferenceService
    private let clock: any WallClock
    private let settings: TransformSettings
    private let logger: Logger
    private let state = Mutex(State())
    private let work = Wakeup()
    private let heartbeat = Wakeup()

    /// Creates the runner.
    public init(
        store: any DeploymentStore & TransformJobStore, objects: any ObjectStore, packages: PackageStore,
        variants: VariantFactory,
        inference: InferenceService, clock: any WallClock, settings: TransformSettings, logger: Logger
    ) {
        self.store = store
        self.objects = objects
        self.packages = packages
        self.variants = variants
        self.inference = inference
        self.clock = clock
        self.settings = settings
        self.logger = logger
    }

    /// The workers of the jobs running now, one variant per job.
    public func runningVariants() -> [any VariantServing] {
        state.withLock { $0.jobs.values.compactMap(\.runtime) }
    }

    /// Tells the runner that a job was created or asked to stop.
    public func workArrived() {
        work.signal()
    }

    // MARK: Service

    /// Runs jobs until graceful shutdown; then stops claiming, stops the jobs' workers, and puts the units in
    /// flight back in the queue for the next start.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.renewLeases() }
            await withGracefulShutdownHandler {
                while !self.isStopping {
                    await self.pass(into: &group)
                    await self.work.wait(upTo: self.settings.pollInterval)
                }
            } onGracefulShutdown: {
                self.state.withLock { $0.stopping = true }
                self.work.signal()
                self.heartbeat.signal()
            }
            for runtime in state.withLock({ $0.jobs.values.compactMap(\.runtime) }) {
                group.addTask { await runtime.stop(drainTimeout: .zero, exitTimeout: .seconds(5)) }
            }
        }
    }

    private var isStopping: Bool { state.withLock(\.stopping) }

    /// One look at every active job: plan it, start its workers, claim what they have room for, or end it.
    private func pass(into group: inout DiscardingTaskGroup) async {
        let now = clock.now()
        let housekeeping = state.withLock { $0.housekeeping.isDue(every: settings.pollInterval) }
        do {
            if housekeeping {
                let rescued = try await queue.rescueExpired(now: now)
                if rescued > 0 { logger.notice("Re-queued transform units whose lease expired", metadata: ["count": "\(rescued)"]) }
            }
            let active = try await store.activeTransformJobs()
            let activeNames = Set(active.map(\.name))
            for job in active {
                try await step(job, into: &group)
            }
            // Jobs that ended elsewhere (or whose record vanished) release their workers.
            let gone = state.withLock { state in state.jobs.filter { !activeNames.contains($0.key) && $0.value.inFlight.isEmpty && !$0.value.planning }.map(\.key) }
            for name in gone { release(name, into: &group) }
        } catch {
            logger.error("Transform pass failed", metadata: ["error": "\(error)"])
        }
    }

    private func step(_ job: TransformJob, into group: inout DiscardingTaskGroup) async throws {
        let name = job.name
        let running = state.withLock { state -> Running in
            if let running = state.jobs[name] { return running }
            state.jobs[name] = Running(spec: job.spec)
            return state.jobs[name]!
        }
        if job.status == .stopping {
            guard running.inFlight.isEmpty, !running.planning else { return }
            if try await store.finishTransformJob(named: name, status: .stopped, failureReason: "Stopped on request.", now: clock.now()) {
                logger.info("Transform job stopped", metadata: ["job": "\(name)"])
            }
            release(name, into: &group)
            return
        }
        guard job.planned else {
            guard !running.planning else { return }
            state.withLock { $0.jobs[name]?.planning = true }
            // The workers start while the inputs are planned: loading a model takes about as long as reading
            // a few hundred megabytes.
            let runtime: any VariantServing
            do {
                runtime = try await self.runtime(for: job, into: &group)
            } catch {
                state.withLock { $0.jobs[name]?.planning = false }
                throw error
            }
            group.addTask {
                await self.plan(job, runtime: runtime)
                self.state.withLock { $0.jobs[name]?.planning = false }
                self.work.signal()
            }
            return
        }
        if job.progress.unitsDone == job.progress.unitsTotal {
            guard running.inFlight.isEmpty else { return }
            try await complete(job)
            release(name, into: &group)
            return
        }
        let runtime = try await runtime(for: job, into: &group)
        switch await runtime.status().state {
        case .failed(let reason):
            try await fail(name, "The model \"\(job.spec.modelName)\" could not run: \(reason)", into: &group)
            return
        case .starting, .stopped:
            return
        case .ready:
            break
        }
        let room = state.withLock { state -> Int in
            guard let running = state.jobs[name] else { return 0 }
            if let until = running.holdOff, until > .now { return 0 }
            return job.spec.instanceCount * job.spec.maxConcurrentTransforms - running.inFlight.count
        }
        guard room > 0 else { return }
        let now = clock.now()
        let units = try await queue.claim(
            in: name, owner: settings.owner, limit: room, now: now, leaseUntil: now.adding(settings.leaseDuration),
            overdueOnly: false)
        for unit in units {
            let id = unit.id
            state.withLock { _ = $0.jobs[name]?.inFlight.insert(id) }
            group.addTask {
                await self.process(unit, of: job, on: runtime)
                self.state.withLock { _ = $0.jobs[name]?.inFlight.remove(id) }
                self.work.signal()
                if self.isStopping { self.heartbeat.signal() }
            }
        }
    }

    /// The job's variant runtime, started on first use.
    private func runtime(for job: TransformJob, into group: inout DiscardingTaskGroup) async throws -> any VariantServing {
        if let runtime = state.withLock({ $0.jobs[job.name]?.runtime }) { return runtime }
        guard var model = try await store.model(named: job.spec.modelName) else {
            throw ServalError.notFound("Model", job.spec.modelName)
        }
        model.environment.merge(job.spec.environment) { _, job in job }
        let spec = job.spec
        // Each payload is its own invocation: the records are batched already, so the batcher only queues.
        let variant = ProductionVariant(
            name: "Transform", modelName: spec.modelName, instanceCount: spec.instanceCount,
            batching: BatchingSettings(
                maxBatchSize: 1, maxQueueDelayMicroseconds: 0,
                maxQueueSize: spec.instanceCount * spec.maxConcurrentTransforms * 2),
            invocationTimeoutSeconds: spec.invocationTimeoutSeconds)
        let runtime = variants.make(
            VariantSpec(
                endpointName: "transform-job/\(job.name)", variant: variant, model: model,
                modelDirectory: packages.absolutePath(of: model.packagePath),
                logDestination: .transformJob(job.name, createdAt: job.createdAt))
        ) { [weak self] _ in self?.work.signal() }
        state.withLock { $0.jobs[job.name]?.runtime = runtime }
        group.addTask { await runtime.run() }
        return runtime
    }

    /// Forgets a job and stops its workers.
    private func release(_ name: String, into group: inout DiscardingTaskGroup) {
        guard let running = state.withLock({ $0.jobs.removeValue(forKey: name) }) else { return }
        if let runtime = running.runtime {
            group.addTask { await runtime.stop(drainTimeout: .zero, exitTimeout: .seconds(5)) }
        }
        let folder = partsFolder(name)
        group.addTask { try? FileManager.default.removeItem(atPath: folder) }
    }

    private func fail(_ name: String, _ reason: String, into group: inout DiscardingTaskGroup) async throws {
        if try await store.finishTransformJob(named: name, status: .failed, failureReason: reason, now: clock.now()) {
            logger.warning("Transform job failed", metadata: ["job": "\(name)", "reason": "\(reason)"])
        }
        release(name, into: &group)
    }

    /// Ends a job whose units are all done: assembles the objects not yet assembled (those without units, and
    /// any whose assembly a crash interrupted), then records it `Completed`.
    private func complete(_ job: TransformJob) async throws {
        for object in try await store.transformObjects(job: job.name) where !object.assembled {
            try await assemble(object, of: job.spec)
        }
        if try await store.finishTransformJob(named: job.name, status: .completed, failureReason: nil, now: clock.now()) {
            logger.info("Transform job completed", metadata: ["job": "\(job.name)", "records": "\(job.progress.recordsDone)"])
        }
    }

    // MARK: Planning

    /// Lists the job's inputs and finds their units; once the job's workers are ready, records the plan, which
    /// marks the job started (SageMaker's TransformStartTime: when it starts on its instances). A job whose inputs
    /// cannot be planned (no objects any more, a record above the payload limit, corrupt framing) or whose model
    /// cannot load fails with the reason.
    private func plan(_ job: TransformJob, runtime: any VariantServing) async {
        let spec = job.spec
        do {
            let inputs = try await TransformInputs.list(spec, objects: objects)
            guard !inputs.isEmpty else {
                throw ServalError(.validationError, "The input \(spec.inputUri) has no objects any more.")
            }
            _ = try await objects.createBucket(try ObjectLocation.split(uri: spec.outputPath, field: "S3OutputPath").bucket)
            var objectRecords: [TransformObject] = []
            var units: [TransformUnit] = []
            var progress = TransformProgress()
            for (index, input) in inputs.enumerated() {
                let found = try await TransformUnitReader.plan(input.location, index: index, spec: spec, objects: objects)
                objectRecords.append(
                    TransformObject(
                        index: index, key: input.location.key,
                        outputKey: try TransformInputs.outputLocation(for: input, outputPath: spec.outputPath).key,
                        sizeBytes: input.size, unitCount: found.count))
                units += found
                progress.recordsTotal += found.reduce(0) { $0 + $1.records }
                progress.bytesTotal += input.size
            }
            progress.objectsTotal = inputs.count
            progress.unitsTotal = units.count
            while true {
                switch await runtime.status().state {
                case .ready:
                    break
                case .failed(let reason):
                    throw ServalError(.modelError, "The model \"\(spec.modelName)\" could not run: \(reason)")
                case .stopped:
                    return  // Serval is stopping, or the job was released.
                case .starting:
                    if isStopping { return }
                    try await Task.sleep(for: .milliseconds(10))
                    continue
                }
                break
            }
            if try await store.recordTransformPlan(job: spec.name, objects: objectRecords, units: units, progress: progress, now: clock.now()) {
                logger.info(
                    "Transform job planned",
                    metadata: ["job": "\(spec.name)", "objects": "\(inputs.count)", "units": "\(units.count)", "records": "\(progress.recordsTotal)"])
            }
        } catch {
            let reason = (error as? ServalError)?.message ?? "Planning failed: \(error)"
            do {
                _ = try await store.finishTransformJob(named: spec.name, status: .failed, failureReason: reason, now: clock.now())
            } catch {
                logger.error("Could not record a transform job's failure", metadata: ["job": "\(spec.name)", "error": "\(error)"])
            }
        }
    }

    // MARK: Units

    /// Runs one claimed unit: writes its part, records it done, and assembles its object when it was the last.
    private func process(_ unit: TransformUnit, of job: TransformJob, on runtime: any VariantServing) async {
        let spec = job.spec
        let id = unit.id
        var logger = self.logger
        logger[metadataKey: "job"] = "\(spec.name)"
        do {
            let path = partPath(spec.name, id)
            // With attempts > 1 the part may be there already: a previous attempt committed it, then died before
            // recording it. Its bytes are what this attempt would write.
            let committed = unit.attempts > 1 ? try await TransformPart.exists(at: path) : false
            if !committed {
                let object = try ObjectLocation(
                    bucket: try ObjectLocation.split(uri: spec.inputUri, field: "S3Uri").bucket,
                    key: try await plannedObject(unit.objectIndex, job: spec.name).key)
                let part = try await TransformPart.Writer(path: path)
                try await TransformUnitReader(spec: spec, objects: objects, inference: inference, retryDelay: settings.retryDelay)
                    .run(unit, of: object, on: runtime, into: part) { [self] in isStopping }
                try await part.commit()
            }
            guard
                try await queue.finish(
                    in: spec.name, id: id, owner: settings.owner,
                    completion: TransformUnitProgress(recordsDone: unit.records, recordsFailed: 0, bytes: unit.end - unit.start),
                    now: clock.now())
            else {
                logger.warning("Lost the lease of a transform unit before recording it; another attempt owns it")
                return
            }
            runtime.observer.recordsTransformed(unit.records)
            // The last unit of its object assembles it. (A job that ended meanwhile has no unit rows left: the
            // count then differs, and nothing is assembled from parts that may be gone.)
            let units = try await store.transformUnits(job: spec.name, objectIndex: unit.objectIndex)
            let object = try await plannedObject(unit.objectIndex, job: spec.name)
            if units.count == object.unitCount, units.allSatisfy({ $0.status == .done }) {
                try await assemble(object, of: spec)
            }
        } catch let error as ServalError where [.overloaded, .modelNotReady].contains(error.code) || isStopping {
            // The workers are busy, starting or stopping: the unit waits for the next claim.
            state.withLock { $0.jobs[spec.name]?.holdOff = .now + .milliseconds(200) }
            _ = try? await queue.release(in: spec.name, id: id, owner: settings.owner, now: clock.now(), countAttempt: false)
        } catch {
            let reason = (error as? ServalError)?.message ?? "Serval could not run the unit: \(error)"
            do {
                if try await store.finishTransformJob(named: spec.name, status: .failed, failureReason: reason, now: clock.now()) {
                    logger.warning("Transform job failed", metadata: ["reason": "\(reason)"])
                }
            } catch {
                logger.error("Could not record a transform job's failure; the unit's lease will expire and it will run again", metadata: ["error": "\(error)"])
            }
            work.signal()
        }
    }

    /// The planned object of a unit, from the store once per job rather than once per unit.
    private func plannedObject(_ index: Int, job: String) async throws -> TransformObject {
        let cached = state.withLock { $0.jobs[job]?.objects }
        let objects: [TransformObject]
        if let cached {
            objects = cached
        } else {
            objects = try await store.transformObjects(job: job)
            state.withLock { $0.jobs[job]?.objects = objects }
        }
        guard objects.indices.contains(index), objects[index].index == index else {
            throw ServalError(.internalFailure, "The plan of transform job \"\(job)\" has no object \(index).")
        }
        return objects[index]
    }

    /// Concatenates an object's committed parts, in order, into its `.out` object (renamed into place whole),
    /// then records it assembled. Assembling twice writes the same bytes again, so it is safe after a crash.
    private func assemble(_ object: TransformObject, of spec: TransformJobSpec) async throws {
        let (bucket, _) = try ObjectLocation.split(uri: spec.outputPath, field: "S3OutputPath")
        let output = try ObjectLocation(bucket: bucket, key: object.outputKey)
        let temporary = try await objects.makeTemporaryFile()
        let parts = (0..<object.unitCount).map { partPath(spec.name, TransformUnit.ID(objectIndex: object.index, part: $0)) }
        try await TransformPart.concatenate(parts, into: temporary)
        _ = try await objects.commit(temporaryFile: temporary, to: output, contentType: spec.accept.isEmpty ? nil : spec.accept)
        _ = try await store.markTransformObjectAssembled(job: spec.name, objectIndex: object.index, now: clock.now())
    }

    private func partsFolder(_ job: String) -> String { settings.partsDirectory + "/" + job }

    private func partPath(_ job: String, _ id: TransformUnit.ID) -> String {
        partsFolder(job) + "/\(id.objectIndex)/\(id.part)"
    }

    // MARK: Leases

    /// Renews the leases of units in flight every third of the lease duration.
    private func renewLeases() async {
        await renewLeasesUntilStopped(
            heartbeat: heartbeat, leaseDuration: settings.leaseDuration, clock: clock, logger: logger,
            what: "transform units", held: { state.withLock { ($0.jobs.mapValues { Array($0.inFlight) }, $0.stopping) } }
        ) { job, units, until in
            try await queue.renew(in: job, ids: units, owner: settings.owner, until: until).count
        }
    }
}
