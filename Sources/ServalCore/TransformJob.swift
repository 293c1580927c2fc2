/// Batch transform jobs: SageMaker's `CreateTransformJob` parameters (CONTRACTS.md §2), the job's lifecycle and
/// progress, and the work units a job is split into.

/// How an input object is split into records.
public enum TransformSplitType: String, Codable, Sendable, Equatable, CaseIterable {
    /// The whole object is one record.
    case none = "None"
    /// Each line (ending in `\n`, or the object's end) is a record; an empty line is not.
    case line = "Line"
    /// MXNet RecordIO: each record is framed by a magic number and a length.
    case recordIO = "RecordIO"
    /// TensorFlow TFRecord: each record is framed by a length and two CRCs.
    case tfRecord = "TFRecord"
}

/// How many records go into one invocation of the model.
public enum TransformBatchStrategy: String, Codable, Sendable, Equatable, CaseIterable {
    /// One record per invocation.
    case singleRecord = "SingleRecord"
    /// As many whole records as fit in the job's maximum payload.
    case multiRecord = "MultiRecord"
}

/// How input objects are compressed.
public enum TransformCompression: String, Codable, Sendable, Equatable, CaseIterable {
    case none = "None"
    /// gzip; the object is decompressed as it is read.
    case gzip = "Gzip"
}

/// How the outputs of one input object's records are put together in its `.out` object.
public enum TransformAssembly: String, Codable, Sendable, Equatable, CaseIterable {
    /// The model's responses are concatenated as they are.
    case none = "None"
    /// One line per record, in input order.
    case line = "Line"
}

/// What an output record is joined with.
public enum TransformJoinSource: String, Codable, Sendable, Equatable, CaseIterable {
    /// The output alone.
    case none = "None"
    /// The input record with its output: JSON objects gain `SageMakerOutput`, CSV rows gain columns.
    case input = "Input"
}

/// What the job's input URI names.
public enum TransformDataType: String, Codable, Sendable, Equatable, CaseIterable {
    /// Every object whose key starts with the URI's key.
    case s3Prefix = "S3Prefix"
    /// A manifest object: a JSON array whose first element is `{"prefix": "s3://bucket/prefix/"}` and whose other
    /// elements are keys relative to that prefix.
    case manifestFile = "ManifestFile"
}

/// The lifecycle of a transform job.
public enum TransformJobStatus: String, Codable, Sendable, Equatable, CaseIterable {
    /// Planned or running.
    case inProgress = "InProgress"
    /// Every input object has its complete `.out` object.
    case completed = "Completed"
    /// It ended early; the failure reason names the object and record.
    case failed = "Failed"
    /// A stop was asked for; units in flight finish or are abandoned.
    case stopping = "Stopping"
    /// It was stopped. Outputs already assembled stay; no partial output is left.
    case stopped = "Stopped"

    /// Whether the job has ended.
    public var isFinal: Bool { self == .completed || self == .failed || self == .stopped }
}

/// Limits and defaults of transform jobs (SageMaker's, CONTRACTS.md §2).
public enum TransformLimits {
    /// The allowed maximum payloads, in SageMaker's MB (MiB: 6 MB is 6 × 1,048,576 bytes).
    public static let maxPayloadMB = 1...100
    /// The default maximum payload.
    public static let defaultMaxPayloadMB = 6
    /// The largest `MaxConcurrentTransforms × MaxPayloadInMB`.
    public static let maxConcurrencyTimesPayloadMB = 100
    /// The allowed invocation timeouts, in seconds.
    public static let invocationTimeoutSeconds = 1...3600
    /// The default invocation timeout.
    public static let defaultInvocationTimeoutSeconds = 600
    /// The allowed retries of a failed invocation.
    public static let maxRetries = 0...3
    /// The default number of retries.
    public static let defaultMaxRetries = 3
    /// The allowed instance counts.
    public static let instanceCount = 1...64
    /// The most environment variables.
    public static let maxEnvironmentEntries = 100
    /// The longest environment key or value.
    public static let maxEnvironmentLength = 1024
    /// The longest JSONPath filter.
    public static let maxFilterLength = 63

    /// Bytes in one of SageMaker's payload megabytes.
    public static let bytesPerMB = 1_048_576
}

/// What a user asks for when creating a transform job: SageMaker's `CreateTransformJob`, flattened.
public struct TransformJobSpec: Codable, Sendable, Equatable {
    /// The job's name; unique among jobs.
    public var name: String
    /// The model to run.
    public var modelName: String
    /// Whether `inputUri` is a prefix or a manifest.
    public var dataType: TransformDataType
    /// `s3://bucket/prefix` (every object under it) or `s3://bucket/manifest.json`.
    public var inputUri: String
    /// The records' content type, passed to the model; empty for the model's default.
    public var contentType: String
    public var compression: TransformCompression
    public var splitType: TransformSplitType
    public var batchStrategy: TransformBatchStrategy
    /// The largest payload sent to the model, in SageMaker MB (MiB).
    public var maxPayloadMB: Int
    /// How many invocations each instance runs at once.
    public var maxConcurrentTransforms: Int
    /// How long one invocation may run.
    public var invocationTimeoutSeconds: Int
    /// How many times a failed invocation is retried.
    public var maxRetries: Int
    /// `s3://bucket/prefix` under which each input object's `<relative key>.out` is written.
    public var outputPath: String
    /// The content type asked of the model; empty for the model's default.
    public var accept: String
    public var assembleWith: TransformAssembly
    /// JSONPath selecting what of each input record is sent to the model; `nil` for all of it.
    public var inputFilter: String?
    /// JSONPath selecting what of each (joined) output record is written; `nil` for all of it.
    public var outputFilter: String?
    public var joinSource: TransformJoinSource
    /// Worker instances the job starts for itself.
    public var instanceCount: Int
    /// Recorded and reported; Serval does not act on it.
    public var instanceType: String?
    /// Environment variables for the job's workers, on top of the model's.
    public var environment: [String: String]

    /// Creates a spec with SageMaker's defaults.
    public init(
        name: String, modelName: String, dataType: TransformDataType = .s3Prefix, inputUri: String,
        contentType: String = "", compression: TransformCompression = .none, splitType: TransformSplitType = .none,
        batchStrategy: TransformBatchStrategy = .multiRecord, maxPayloadMB: Int = TransformLimits.defaultMaxPayloadMB,
        maxConcurrentTransforms: Int = 1,
        invocationTimeoutSeconds: Int = TransformLimits.defaultInvocationTimeoutSeconds,
        maxRetries: Int = TransformLimits.defaultMaxRetries, outputPath: String, accept: String = "",
        assembleWith: TransformAssembly = .none, inputFilter: String? = nil, outputFilter: String? = nil,
        joinSource: TransformJoinSource = .none, instanceCount: Int = 1, instanceType: String? = nil,
        environment: [String: String] = [:]
    ) {
        self.name = name
        self.modelName = modelName
        self.dataType = dataType
        self.inputUri = inputUri
        self.contentType = contentType
        self.compression = compression
        self.splitType = splitType
        self.batchStrategy = batchStrategy
        self.maxPayloadMB = maxPayloadMB
        self.maxConcurrentTransforms = maxConcurrentTransforms
        self.invocationTimeoutSeconds = invocationTimeoutSeconds
        self.maxRetries = maxRetries
        self.outputPath = outputPath
        self.accept = accept
        self.assembleWith = assembleWith
        self.inputFilter = inputFilter
        self.outputFilter = outputFilter
        self.joinSource = joinSource
        self.instanceCount = instanceCount
        self.instanceType = instanceType
        self.environment = environment
    }

    /// The largest payload in bytes.
    public var maxPayloadBytes: Int { maxPayloadMB * TransformLimits.bytesPerMB }

    /// Checks names, URIs, ranges and the environment. The JSONPath filters are checked where they are parsed.
    public func validate() throws(ServalError) {
        try ResourceName.validate(name, field: "TransformJobName")
        try ResourceName.validate(modelName, field: "ModelName")
        let (_, inputKey) = try ObjectLocation.split(uri: inputUri, field: "TransformInput.DataSource.S3DataSource.S3Uri")
        if dataType == .manifestFile, inputKey.isEmpty {
            throw .invalid("TransformInput.DataSource.S3DataSource.S3Uri", "\"\(inputUri)\" names a bucket; a ManifestFile source names the manifest object.")
        }
        let (_, outputKey) = try ObjectLocation.split(uri: outputPath, field: "TransformOutput.S3OutputPath")
        // Prefixes may be empty or end in "/"; otherwise they follow the rules of keys (no "..", no "//").
        for (field, uri, key) in [
            ("TransformInput.DataSource.S3DataSource.S3Uri", inputUri, inputKey),
            ("TransformOutput.S3OutputPath", outputPath, outputKey),
        ] {
            let trimmed = key.hasSuffix("/") ? String(key.dropLast()) : key
            guard !trimmed.isEmpty else { continue }
            do {
                try ObjectLocation.validate(key: trimmed)
            } catch {
                throw .invalid(field, "\"\(uri)\": \(error.message)")
            }
        }
        guard TransformLimits.maxPayloadMB.contains(maxPayloadMB) else {
            throw .invalid("MaxPayloadInMB", "is \(maxPayloadMB); it must be between 1 and 100.")
        }
        guard maxConcurrentTransforms >= 1,
            maxConcurrentTransforms * maxPayloadMB <= TransformLimits.maxConcurrencyTimesPayloadMB
        else {
            throw .invalid(
                "MaxConcurrentTransforms",
                "is \(maxConcurrentTransforms); it must be at least 1, and MaxConcurrentTransforms × MaxPayloadInMB (\(maxPayloadMB)) must not exceed 100.")
        }
        guard TransformLimits.invocationTimeoutSeconds.contains(invocationTimeoutSeconds) else {
            throw .invalid("ModelClientConfig.InvocationsTimeoutInSeconds", "is \(invocationTimeoutSeconds); it must be between 1 and 3600.")
        }
        guard TransformLimits.maxRetries.contains(maxRetries) else {
            throw .invalid("ModelClientConfig.InvocationsMaxRetries", "is \(maxRetries); it must be between 0 and 3.")
        }
        guard TransformLimits.instanceCount.contains(instanceCount) else {
            throw .invalid("TransformResources.InstanceCount", "is \(instanceCount); it must be between 1 and 64.")
        }
        guard environment.count <= TransformLimits.maxEnvironmentEntries else {
            throw .invalid("Environment", "has \(environment.count) entries; the limit is 100.")
        }
        for (key, value) in environment {
            guard (1...TransformLimits.maxEnvironmentLength).contains(key.utf8.count),
                value.utf8.count <= TransformLimits.maxEnvironmentLength
            else {
                throw .invalid("Environment", "keys must be 1 to 1024 characters and values at most 1024; \"\(key.prefix(40))\" is not.")
            }
        }
        for (field, filter) in [("DataProcessing.InputFilter", inputFilter), ("DataProcessing.OutputFilter", outputFilter)] {
            if let filter, filter.isEmpty || filter.utf8.count > TransformLimits.maxFilterLength {
                throw .invalid(field, "must be 1 to \(TransformLimits.maxFilterLength) characters long.")
            }
        }
    }
}

/// How far a job got. Totals are known once the job is planned.
public struct TransformProgress: Codable, Sendable, Equatable {
    /// Input objects to transform.
    public var objectsTotal: Int
    /// Input objects whose `.out` object is written.
    public var objectsDone: Int
    /// Records in all inputs.
    public var recordsTotal: Int
    /// Records whose output is committed.
    public var recordsDone: Int
    /// Records the model rejected.
    public var recordsFailed: Int
    /// Bytes of input (decompressed sizes are unknown before reading, so gzip objects count their stored size).
    public var bytesTotal: Int64
    /// Bytes of input whose records' outputs are committed.
    public var bytesDone: Int64
    /// Work units the job is split into.
    public var unitsTotal: Int
    /// Work units whose output part is committed.
    public var unitsDone: Int

    /// Creates a progress record.
    public init(
        objectsTotal: Int = 0, objectsDone: Int = 0, recordsTotal: Int = 0, recordsDone: Int = 0,
        recordsFailed: Int = 0, bytesTotal: Int64 = 0, bytesDone: Int64 = 0, unitsTotal: Int = 0, unitsDone: Int = 0
    ) {
        self.objectsTotal = objectsTotal
        self.objectsDone = objectsDone
        self.recordsTotal = recordsTotal
        self.recordsDone = recordsDone
        self.recordsFailed = recordsFailed
        self.bytesTotal = bytesTotal
        self.bytesDone = bytesDone
        self.unitsTotal = unitsTotal
        self.unitsDone = unitsDone
    }
}

/// A transform job: what was asked, where it stands and how far it got.
public struct TransformJob: Codable, Sendable, Equatable {
    public var spec: TransformJobSpec
    public var status: TransformJobStatus
    /// Why it failed, naming the object and record; or why it stopped.
    public var failureReason: String?
    /// Whether its objects and units are recorded (planning lists the inputs and finds record boundaries).
    public var planned: Bool
    public var progress: TransformProgress
    /// When it was created.
    public var createdAt: Timestamp
    /// When it last changed.
    public var updatedAt: Timestamp
    /// When it was planned and its workers were ready: when it started running on its instances.
    public var startedAt: Timestamp?
    /// When it ended.
    public var endedAt: Timestamp?

    /// Creates a job record.
    public init(
        spec: TransformJobSpec, status: TransformJobStatus = .inProgress, failureReason: String? = nil,
        planned: Bool = false, progress: TransformProgress = .init(), createdAt: Timestamp, updatedAt: Timestamp,
        startedAt: Timestamp? = nil, endedAt: Timestamp? = nil
    ) {
        self.spec = spec
        self.status = status
        self.failureReason = failureReason
        self.planned = planned
        self.progress = progress
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.startedAt = startedAt
        self.endedAt = endedAt
    }

    /// The job's name.
    public var name: String { spec.name }
}

/// One input object of a planned job.
public struct TransformObject: Codable, Sendable, Equatable {
    /// Its place among the job's objects (0-based, in key order).
    public var index: Int
    /// Its key in the input bucket.
    public var key: String
    /// Where its output goes: `<output prefix>/<key relative to the input prefix>.out`, a key in the output bucket.
    public var outputKey: String
    /// Its size as stored.
    public var sizeBytes: Int64
    /// How many work units it is split into.
    public var unitCount: Int
    /// Whether its `.out` object is written.
    public var assembled: Bool

    /// Creates an object record.
    public init(index: Int, key: String, outputKey: String, sizeBytes: Int64, unitCount: Int, assembled: Bool = false) {
        self.index = index
        self.key = key
        self.outputKey = outputKey
        self.sizeBytes = sizeBytes
        self.unitCount = unitCount
        self.assembled = assembled
    }
}

/// The state of a work unit.
public enum TransformUnitStatus: String, Codable, Sendable, Equatable, CaseIterable {
    case pending = "Pending"
    /// Claimed under a lease.
    case inProgress = "InProgress"
    /// Its output part is committed.
    case done = "Done"
}

/// One work unit: a byte range of whole records of one input object, processed and committed as one part.
///
/// For an uncompressed object with a split type, ranges start and end on record boundaries and hold about one
/// maximum payload of records. A gzip object, or one whose split type is `None`, is one unit.
public struct TransformUnit: Codable, Sendable, Equatable {
    /// The object's index.
    public var objectIndex: Int
    /// The unit's place within the object (0-based); parts are assembled in this order.
    public var part: Int
    /// The first byte (of the stored object).
    public var start: Int64
    /// One past the last byte.
    public var end: Int64
    /// The records in the range; for a gzip object, the records found by planning's decompressing read.
    public var records: Int
    /// The first record's index within the object (0-based), for naming a failing record.
    public var firstRecord: Int
    public var status: TransformUnitStatus
    /// How many times it was started.
    public var attempts: Int

    /// Creates a unit record.
    public init(
        objectIndex: Int, part: Int, start: Int64, end: Int64, records: Int, firstRecord: Int,
        status: TransformUnitStatus = .pending, attempts: Int = 0
    ) {
        self.objectIndex = objectIndex
        self.part = part
        self.start = start
        self.end = end
        self.records = records
        self.firstRecord = firstRecord
        self.status = status
        self.attempts = attempts
    }
}

extension TransformUnit: Identifiable {
    /// Names a unit within its job: its object's index and its part.
    public struct ID: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
        /// The object's index.
        public var objectIndex: Int
        /// The unit's part within the object.
        public var part: Int

        /// Creates an id.
        public init(objectIndex: Int, part: Int) {
            self.objectIndex = objectIndex
            self.part = part
        }

        /// Object order, then part order: the order units are claimed in.
        public static func < (lhs: ID, rhs: ID) -> Bool {
            (lhs.objectIndex, lhs.part) < (rhs.objectIndex, rhs.part)
        }

        /// `<objectIndex>/<part>`.
        public var description: String { "\(objectIndex)/\(part)" }
    }

    /// The unit's id within its job.
    public var id: ID { ID(objectIndex: objectIndex, part: part) }
}
