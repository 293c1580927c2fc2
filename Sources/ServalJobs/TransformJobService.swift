import Foundation
import NIOCore
public import ServalCore
public import ServalObjects
public import ServalStore
import ServalTransform

/// Creating, describing, listing and stopping transform jobs, for every frontend. The ``TransformRunner`` runs
/// them.
public struct TransformJobService: Sendable {
    let store: any MetadataStore
    let objects: any ObjectStore
    let runner: TransformRunner
    let clock: any WallClock

    /// Creates the service.
    public init(store: any MetadataStore, objects: any ObjectStore, runner: TransformRunner, clock: any WallClock) {
        self.store = store
        self.objects = objects
        self.runner = runner
        self.clock = clock
    }

    /// Checks a job and records it `InProgress` with its tags (checked by the caller,
    /// ``ServalCore/ResourceTags/validate(_:field:)``); the runner plans and runs it.
    ///
    /// - Throws: `.validationError` for bad parameters, an invalid JSONPath, or an input with no objects;
    ///   `.notFound` for an unknown model; `.conflict` when a job has the name.
    public func create(_ spec: TransformJobSpec, tags: [ResourceTag] = []) async throws -> TransformJob {
        try spec.validate()
        _ = try TransformRecordSettings(spec: spec)
        guard try await store.model(named: spec.modelName) != nil else {
            throw ServalError.notFound("Model", spec.modelName, hint: "create it first with serval models create")
        }
        let inputs = try await TransformInputs.list(spec, objects: objects, limit: 1)
        guard !inputs.isEmpty else {
            throw ServalError(
                .validationError,
                "The input \(spec.inputUri) has no objects; upload the files first (serval objects put) or check the URI.")
        }
        let now = clock.now()
        let job = TransformJob(spec: spec, createdAt: now, updatedAt: now)
        try await store.createTransformJob(job)
        if !tags.isEmpty { _ = try await store.addTags(tags, to: TaggedResource(.transformJob, spec.name)) }
        runner.workArrived()
        return job
    }

    /// The job, or `.notFound`.
    public func describe(_ name: String) async throws -> TransformJob {
        guard let job = try await store.transformJob(named: name) else { throw Self.notFound(name) }
        return job
    }

    /// A page of jobs.
    public func list(_ filter: TransformJobFilter) async throws -> (jobs: [TransformJob], nextToken: String?) {
        try await store.transformJobs(filter: filter)
    }

    /// Asks a running job to stop: it becomes `Stopping`, then `Stopped` once its units in flight end. A job that
    /// has ended is returned unchanged.
    public func stop(_ name: String) async throws -> TransformJob {
        guard let job = try await store.requestTransformJobStop(named: name, now: clock.now()) else {
            throw Self.notFound(name)
        }
        runner.workArrived()
        return job
    }

    static func notFound(_ name: String) -> ServalError {
        ServalError(.notFound, "Transform job \"\(name)\" does not exist; check the name (serval transform list).")
    }
}

/// The input objects of a job: every object under its prefix, or the keys its manifest lists.
enum TransformInputs {
    /// One input object.
    struct Input: Sendable, Equatable {
        var location: ObjectLocation
        var size: Int64
        /// The key relative to the input's folder, which names the output (`<output prefix>/<relative>.out`).
        var relativeKey: String
    }

    /// Lists the job's inputs in key order (manifest order for a manifest), at most `limit` of them.
    static func list(_ spec: TransformJobSpec, objects: any ObjectStore, limit: Int = .max) async throws -> [Input] {
        let field = "TransformInput.DataSource.S3DataSource.S3Uri"
        let (bucket, key) = try ObjectLocation.split(uri: spec.inputUri, field: field)
        guard try await objects.bucketExists(bucket) else {
            throw ServalError(.validationError, "The input bucket \"\(bucket)\" does not exist; create it and upload the inputs first.")
        }
        switch spec.dataType {
        case .s3Prefix:
            // Outputs are named after the key's part below the prefix's folder, as SageMaker does for a prefix
            // ending in "/": s3://b/in/ and s3://b/in/part both name in/part-1.csv's output part-1.csv.out.
            let folder = key.lastIndex(of: "/").map { String(key[...$0]) } ?? ""
            var inputs: [Input] = []
            var token: String?
            repeat {
                let page = try await objects.list(
                    ObjectListRequest(bucket: bucket, prefix: key, continuationToken: token, maxKeys: min(1000, limit)))
                for object in page.objects {
                    inputs.append(
                        Input(
                            location: object.location, size: object.size,
                            relativeKey: String(object.location.key.dropFirst(folder.count))))
                    if inputs.count >= limit { return inputs }
                }
                token = page.isTruncated ? page.nextContinuationToken : nil
            } while token != nil
            return inputs
        case .manifestFile:
            let manifest = try ObjectLocation(uri: spec.inputUri, field: field)
            guard try await objects.head(manifest) != nil else {
                throw ServalError(.validationError, "The manifest \(spec.inputUri) does not exist.")
            }
            let entries = try parseManifest(try await objects.readAll(manifest, upTo: 64 << 20), uri: spec.inputUri)
            // The plan records each object's key only, and units read it from the manifest's bucket.
            guard entries.bucket == bucket else {
                throw ServalError(
                    .validationError,
                    "The manifest \(spec.inputUri) lists objects in bucket \"\(entries.bucket)\", but Serval reads a manifest's objects from the manifest's own bucket \"\(bucket)\"; put the manifest in bucket \"\(entries.bucket)\".")
            }
            var inputs: [Input] = []
            for relative in entries.keys.prefix(limit) {
                let location = try ObjectLocation(bucket: entries.bucket, key: entries.prefix + relative)
                guard let info = try await objects.head(location) else {
                    throw ServalError(.validationError, "The manifest \(spec.inputUri) lists \(location.uri), which does not exist.")
                }
                inputs.append(Input(location: location, size: info.size, relativeKey: relative))
            }
            return inputs
        }
    }

    /// Reads SageMaker's manifest: `[{"prefix": "s3://bucket/prefix/"}, "relative/key", ...]`.
    static func parseManifest(_ bytes: ByteBuffer, uri: String) throws -> (bucket: String, prefix: String, keys: [String]) {
        let problem = ServalError(
            .validationError,
            "The manifest \(uri) is not a JSON array of the form [{\"prefix\": \"s3://bucket/prefix/\"}, \"key1\", \"key2\", ...].")
        guard let array = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [Any],
            let head = array.first as? [String: Any], let prefixURI = head["prefix"] as? String
        else { throw problem }
        let (bucket, prefix) = try ObjectLocation.split(uri: prefixURI, field: "manifest prefix")
        var keys: [String] = []
        for entry in array.dropFirst() {
            guard let key = entry as? String, !key.isEmpty else { throw problem }
            keys.append(key)
        }
        guard !keys.isEmpty else {
            throw ServalError(.validationError, "The manifest \(uri) lists no objects.")
        }
        return (bucket, prefix, keys)
    }

    /// The output object of an input: `<output prefix>/<relative key>.out`.
    static func outputLocation(for input: Input, outputPath: String) throws -> ObjectLocation {
        let (bucket, prefix) = try ObjectLocation.split(uri: outputPath, field: "TransformOutput.S3OutputPath")
        var base = prefix
        while base.hasSuffix("/") { base.removeLast() }
        return try ObjectLocation(bucket: bucket, key: base.isEmpty ? input.relativeKey + ".out" : base + "/" + input.relativeKey + ".out")
    }
}
