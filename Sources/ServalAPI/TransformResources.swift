import Foundation
public import ServalCore

// Transform jobs speak SageMaker's shapes (`CreateTransformJob`, `DescribeTransformJob`, CONTRACTS.md §2) on
// Serval's REST API too, so that one JSON document works with `serval transform`, `POST /transform-jobs` and
// boto3. The properties are therefore spelled as on the wire (PascalCase).

/// A time in SageMaker's shapes: an ISO 8601 string on Serval's REST API, epoch seconds (a number) when the
/// encoder's `userInfo[.epochSecondTimes]` is `true` (SageMaker's JSON 1.1 protocol). Decoding takes either.
public struct WireTime: Codable, Sendable, Equatable {
    public var timestamp: Timestamp

    /// Wraps a time.
    public init(_ timestamp: Timestamp) {
        self.timestamp = timestamp
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Double.self) {
            timestamp = Timestamp(millisecondsSinceEpoch: Int64((seconds * 1000).rounded()))
            return
        }
        let text = try container.decode(String.self)
        guard let parsed = Timestamp(iso8601: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not an ISO 8601 time")
        }
        timestamp = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if encoder.userInfo[.epochSecondTimes] as? Bool == true {
            try container.encode(Double(timestamp.millisecondsSinceEpoch) / 1000)
        } else {
            try container.encode(timestamp.iso8601)
        }
    }
}

extension CodingUserInfoKey {
    /// Set to `true` to encode ``WireTime`` values as epoch seconds.
    public static let epochSecondTimes = CodingUserInfoKey(rawValue: "serval.epochSecondTimes")!
}

/// `ModelClientConfig`.
public struct TransformModelClientConfig: Codable, Sendable, Equatable {
    /// 1...3600; default 600.
    public var InvocationsTimeoutInSeconds: Int?
    /// 0...3; default 3.
    public var InvocationsMaxRetries: Int?

    public init(InvocationsTimeoutInSeconds: Int? = nil, InvocationsMaxRetries: Int? = nil) {
        self.InvocationsTimeoutInSeconds = InvocationsTimeoutInSeconds
        self.InvocationsMaxRetries = InvocationsMaxRetries
    }
}

/// `TransformInput.DataSource.S3DataSource`.
public struct TransformS3DataSource: Codable, Sendable, Equatable {
    /// `S3Prefix` (default) or `ManifestFile`.
    public var S3DataType: String?
    /// `s3://bucket/prefix` or the manifest's URI.
    public var S3Uri: String

    public init(S3DataType: String? = nil, S3Uri: String) {
        self.S3DataType = S3DataType
        self.S3Uri = S3Uri
    }
}

/// `TransformInput.DataSource`.
public struct TransformDataSource: Codable, Sendable, Equatable {
    public var S3DataSource: TransformS3DataSource

    public init(S3DataSource: TransformS3DataSource) {
        self.S3DataSource = S3DataSource
    }
}

/// `TransformInput`.
public struct TransformInputConfig: Codable, Sendable, Equatable {
    public var DataSource: TransformDataSource
    /// The records' MIME type, sent to the model.
    public var ContentType: String?
    /// `None` (default) or `Gzip`.
    public var CompressionType: String?
    /// `None` (default), `Line`, `RecordIO` or `TFRecord`.
    public var SplitType: String?

    public init(DataSource: TransformDataSource, ContentType: String? = nil, CompressionType: String? = nil, SplitType: String? = nil) {
        self.DataSource = DataSource
        self.ContentType = ContentType
        self.CompressionType = CompressionType
        self.SplitType = SplitType
    }
}

/// `TransformOutput`.
public struct TransformOutputConfig: Codable, Sendable, Equatable {
    /// `s3://bucket/prefix` for the `.out` objects.
    public var S3OutputPath: String
    /// The MIME type asked of the model.
    public var Accept: String?
    /// `None` (default) or `Line`.
    public var AssembleWith: String?
    /// Accepted and ignored: Serval's object store does not encrypt with KMS keys.
    public var KmsKeyId: String?

    public init(S3OutputPath: String, Accept: String? = nil, AssembleWith: String? = nil, KmsKeyId: String? = nil) {
        self.S3OutputPath = S3OutputPath
        self.Accept = Accept
        self.AssembleWith = AssembleWith
        self.KmsKeyId = KmsKeyId
    }
}

/// `TransformResources`.
public struct TransformResourcesConfig: Codable, Sendable, Equatable {
    /// Recorded; Serval does not act on it.
    public var InstanceType: String?
    /// Worker instances the job starts, 1...64; default 1.
    public var InstanceCount: Int?

    public init(InstanceType: String? = nil, InstanceCount: Int? = nil) {
        self.InstanceType = InstanceType
        self.InstanceCount = InstanceCount
    }
}

/// `DataProcessing`.
public struct TransformDataProcessing: Codable, Sendable, Equatable {
    /// JSONPath applied to each input record.
    public var InputFilter: String?
    /// JSONPath applied to each (joined) output record.
    public var OutputFilter: String?
    /// `None` (default) or `Input`.
    public var JoinSource: String?

    public init(InputFilter: String? = nil, OutputFilter: String? = nil, JoinSource: String? = nil) {
        self.InputFilter = InputFilter
        self.OutputFilter = OutputFilter
        self.JoinSource = JoinSource
    }
}

/// `POST /transform-jobs` (and SageMaker's `CreateTransformJob`).
public struct CreateTransformJobRequest: Codable, Sendable, Equatable {
    public var TransformJobName: String
    public var ModelName: String
    /// Invocations each instance runs at once; default 1.
    public var MaxConcurrentTransforms: Int?
    /// 1...100; default 6.
    public var MaxPayloadInMB: Int?
    /// `MultiRecord` (default) or `SingleRecord`.
    public var BatchStrategy: String?
    public var ModelClientConfig: TransformModelClientConfig?
    /// Environment variables for the job's workers, on top of the model's.
    public var Environment: [String: String]?
    public var TransformInput: TransformInputConfig
    public var TransformOutput: TransformOutputConfig
    public var TransformResources: TransformResourcesConfig?
    public var DataProcessing: TransformDataProcessing?
    /// The job's tags (SageMaker's `CreateTransformJob`).
    public var Tags: [SageMakerTag]?

    public init(
        TransformJobName: String, ModelName: String, MaxConcurrentTransforms: Int? = nil, MaxPayloadInMB: Int? = nil,
        BatchStrategy: String? = nil, ModelClientConfig: TransformModelClientConfig? = nil,
        Environment: [String: String]? = nil, TransformInput: TransformInputConfig, TransformOutput: TransformOutputConfig,
        TransformResources: TransformResourcesConfig? = nil, DataProcessing: TransformDataProcessing? = nil
    ) {
        self.TransformJobName = TransformJobName
        self.ModelName = ModelName
        self.MaxConcurrentTransforms = MaxConcurrentTransforms
        self.MaxPayloadInMB = MaxPayloadInMB
        self.BatchStrategy = BatchStrategy
        self.ModelClientConfig = ModelClientConfig
        self.Environment = Environment
        self.TransformInput = TransformInput
        self.TransformOutput = TransformOutput
        self.TransformResources = TransformResources
        self.DataProcessing = DataProcessing
    }

    /// The domain spec, with SageMaker's defaults for absent fields. Enumerations are checked here; ranges and
    /// names by ``TransformJobSpec/validate()``; tags by ``Swift/Array/validated(field:)``.
    public func spec() throws(ServalError) -> TransformJobSpec {
        func choice<Value: RawRepresentable & CaseIterable>(
            _ text: String?, _ field: String, default value: Value
        ) throws(ServalError) -> Value where Value.RawValue == String {
            guard let text else { return value }
            guard let parsed = Value(rawValue: text) else {
                let allowed = Value.allCases.map(\.rawValue).joined(separator: ", ")
                throw .invalid(field, "is \"\(text)\"; it must be one of \(allowed).")
            }
            return parsed
        }
        let source = TransformInput.DataSource.S3DataSource
        return TransformJobSpec(
            name: TransformJobName, modelName: ModelName,
            dataType: try choice(source.S3DataType, "TransformInput.DataSource.S3DataSource.S3DataType", default: .s3Prefix),
            inputUri: source.S3Uri, contentType: TransformInput.ContentType ?? "",
            compression: try choice(TransformInput.CompressionType, "TransformInput.CompressionType", default: .none),
            splitType: try choice(TransformInput.SplitType, "TransformInput.SplitType", default: .none),
            batchStrategy: try choice(BatchStrategy, "BatchStrategy", default: .multiRecord),
            maxPayloadMB: MaxPayloadInMB ?? TransformLimits.defaultMaxPayloadMB,
            maxConcurrentTransforms: MaxConcurrentTransforms ?? 1,
            invocationTimeoutSeconds: ModelClientConfig?.InvocationsTimeoutInSeconds
                ?? TransformLimits.defaultInvocationTimeoutSeconds,
            maxRetries: ModelClientConfig?.InvocationsMaxRetries ?? TransformLimits.defaultMaxRetries,
            outputPath: TransformOutput.S3OutputPath, accept: TransformOutput.Accept ?? "",
            assembleWith: try choice(TransformOutput.AssembleWith, "TransformOutput.AssembleWith", default: .none),
            inputFilter: DataProcessing?.InputFilter, outputFilter: DataProcessing?.OutputFilter,
            joinSource: try choice(DataProcessing?.JoinSource, "DataProcessing.JoinSource", default: .none),
            instanceCount: TransformResources?.InstanceCount ?? 1, instanceType: TransformResources?.InstanceType,
            environment: Environment ?? [:])
    }
}

/// A job's progress in its description (Serval's addition to `DescribeTransformJob`).
public struct TransformProgressDescription: Codable, Sendable, Equatable {
    public var ObjectsTotal: Int
    public var ObjectsDone: Int
    public var RecordsTotal: Int
    public var RecordsDone: Int
    public var RecordsFailed: Int
    public var BytesTotal: Int64
    public var BytesDone: Int64
    /// Records done per second since the job started.
    public var RecordsPerSecond: Double?
    /// Seconds left at that rate, while the job runs.
    public var EtaSeconds: Double?
}

/// `GET /transform-jobs/{name}` (and SageMaker's `DescribeTransformJob`), plus `Progress`.
public struct TransformJobDescription: Codable, Sendable, Equatable {
    public var TransformJobName: String
    public var TransformJobArn: String?
    /// `InProgress`, `Completed`, `Failed`, `Stopping` or `Stopped`.
    public var TransformJobStatus: String
    public var FailureReason: String?
    public var ModelName: String
    public var MaxConcurrentTransforms: Int
    public var MaxPayloadInMB: Int
    public var BatchStrategy: String
    public var ModelClientConfig: TransformModelClientConfig
    public var Environment: [String: String]
    public var TransformInput: TransformInputConfig
    public var TransformOutput: TransformOutputConfig
    public var TransformResources: TransformResourcesConfig
    public var DataProcessing: TransformDataProcessing
    public var CreationTime: WireTime
    public var TransformStartTime: WireTime?
    public var TransformEndTime: WireTime?
    public var LastModifiedTime: WireTime
    public var Progress: TransformProgressDescription

    /// Describes a job as of `now` (for the rate and the ETA).
    public init(_ job: TransformJob, now: Timestamp, arn: String? = nil) {
        let spec = job.spec
        TransformJobName = spec.name
        TransformJobArn = arn
        TransformJobStatus = job.status.rawValue
        FailureReason = job.failureReason
        ModelName = spec.modelName
        MaxConcurrentTransforms = spec.maxConcurrentTransforms
        MaxPayloadInMB = spec.maxPayloadMB
        BatchStrategy = spec.batchStrategy.rawValue
        ModelClientConfig = .init(
            InvocationsTimeoutInSeconds: spec.invocationTimeoutSeconds, InvocationsMaxRetries: spec.maxRetries)
        Environment = spec.environment
        TransformInput = .init(
            DataSource: .init(S3DataSource: .init(S3DataType: spec.dataType.rawValue, S3Uri: spec.inputUri)),
            ContentType: spec.contentType.isEmpty ? nil : spec.contentType, CompressionType: spec.compression.rawValue,
            SplitType: spec.splitType.rawValue)
        TransformOutput = .init(
            S3OutputPath: spec.outputPath, Accept: spec.accept.isEmpty ? nil : spec.accept,
            AssembleWith: spec.assembleWith.rawValue)
        TransformResources = .init(InstanceType: spec.instanceType, InstanceCount: spec.instanceCount)
        DataProcessing = .init(
            InputFilter: spec.inputFilter, OutputFilter: spec.outputFilter, JoinSource: spec.joinSource.rawValue)
        CreationTime = WireTime(job.createdAt)
        TransformStartTime = job.startedAt.map(WireTime.init)
        TransformEndTime = job.endedAt.map(WireTime.init)
        LastModifiedTime = WireTime(job.updatedAt)
        let progress = job.progress
        var rate: Double?
        var eta: Double?
        if let started = job.startedAt {
            let until = job.endedAt ?? now
            let seconds = Double(until.millisecondsSinceEpoch - started.millisecondsSinceEpoch) / 1000
            if seconds > 0, progress.recordsDone > 0 {
                rate = Double(progress.recordsDone) / seconds
                if !job.status.isFinal, let rate {
                    eta = Double(max(0, progress.recordsTotal - progress.recordsDone - progress.recordsFailed)) / rate
                }
            }
        }
        Progress = .init(
            ObjectsTotal: progress.objectsTotal, ObjectsDone: progress.objectsDone, RecordsTotal: progress.recordsTotal,
            RecordsDone: progress.recordsDone, RecordsFailed: progress.recordsFailed, BytesTotal: progress.bytesTotal,
            BytesDone: progress.bytesDone, RecordsPerSecond: rate, EtaSeconds: eta)
    }
}

/// One job in `GET /transform-jobs` (SageMaker's `TransformJobSummary`).
public struct TransformJobSummary: Codable, Sendable, Equatable {
    public var TransformJobName: String
    public var TransformJobArn: String?
    public var TransformJobStatus: String
    public var FailureReason: String?
    public var CreationTime: WireTime
    public var TransformEndTime: WireTime?
    public var LastModifiedTime: WireTime

    /// Summarises a job.
    public init(_ job: TransformJob, arn: String? = nil) {
        TransformJobName = job.name
        TransformJobArn = arn
        TransformJobStatus = job.status.rawValue
        FailureReason = job.failureReason
        CreationTime = WireTime(job.createdAt)
        TransformEndTime = job.endedAt.map(WireTime.init)
        LastModifiedTime = WireTime(job.updatedAt)
    }
}

/// `GET /transform-jobs`: a page of summaries, newest first by default.
public struct TransformJobList: Codable, Sendable, Equatable {
    public var TransformJobSummaries: [TransformJobSummary]
    public var NextToken: String?

    public init(TransformJobSummaries: [TransformJobSummary], NextToken: String?) {
        self.TransformJobSummaries = TransformJobSummaries
        self.NextToken = NextToken
    }
}
