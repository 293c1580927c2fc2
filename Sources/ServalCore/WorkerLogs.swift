/// One log stream: the output of one model worker instance, named as SageMaker names the CloudWatch Logs streams
/// of its containers.
public struct LogStreamID: Hashable, Sendable, CustomStringConvertible {
    /// The log group, e.g. `/aws/sagemaker/Endpoints/churn`.
    public var group: String
    /// The stream's name within the group, e.g. `AllTraffic/i-0a1b2c3d4e5f60718`.
    public var name: String

    /// Creates an id.
    public init(group: String, name: String) {
        self.group = group
        self.name = name
    }

    public var description: String { "\(group):\(name)" }
}

/// Where the worker instances of one variant write their output: SageMaker's log group and stream names.
///
/// An endpoint's variant writes to `/aws/sagemaker/Endpoints/<endpoint>`, one stream `<variant>/<instance id>` per
/// worker start: a restarted worker is a new instance, so a new stream. A transform job writes to
/// `/aws/sagemaker/TransformJobs`, one stream `<job>/<instance id>-<epoch seconds>` per instance slot for the job's
/// whole life (the id and time derive from the job's name, slot and creation time), so that a job always has as many
/// streams as instances, as the SageMaker SDK's log tailing expects; a restarted worker writes on in its slot's
/// stream.
public enum WorkerLogDestination: Sendable, Equatable {
    /// A production variant of an endpoint.
    case endpoint(String, variant: String)
    /// The workers of a transform job created at `createdAt`.
    case transformJob(String, createdAt: Timestamp)

    /// The log group of an endpoint.
    public static func endpointGroup(_ endpoint: String) -> String { "/aws/sagemaker/Endpoints/\(endpoint)" }

    /// The log group every transform job writes to.
    public static let transformJobsGroup = "/aws/sagemaker/TransformJobs"

    /// The group this destination writes to.
    public var group: String {
        switch self {
        case .endpoint(let endpoint, _): Self.endpointGroup(endpoint)
        case .transformJob: Self.transformJobsGroup
        }
    }

    /// The stream of a worker started in instance slot `slot`.
    public func stream(slot: Int) -> LogStreamID {
        switch self {
        case .endpoint(_, let variant):
            return LogStreamID(group: group, name: "\(variant)/\(Self.newInstanceID())")
        case .transformJob(let job, let createdAt):
            // FNV-1a of "<job>/<slot>": the same instance id whenever this slot of this job runs.
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in "\(job)/\(slot)".utf8 {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            }
            let digits = String(hash, radix: 16)
            let instance = "i-0" + String(repeating: "0", count: 16 - digits.count) + digits
            return LogStreamID(group: group, name: "\(job)/\(instance)-\(createdAt.millisecondsSinceEpoch / 1000)")
        }
    }

    /// A new worker instance id, `i-` and 17 random hexadecimal digits (as EC2 instance ids look).
    static func newInstanceID() -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef")
        return "i-" + String((0..<17).map { _ in digits[Int(generator.next() % 16)] })
    }
}

/// Where model workers' output lines go besides the tail kept for failure reasons.
public protocol WorkerLogSink: Sendable {
    /// Appends one line of a worker's output to `stream`, creating the stream with its first line.
    ///
    /// Never blocks and never fails: a slow disk must not stall a model. When the writer falls behind, lines are
    /// dropped and counted, and the stream later says how many.
    func append(_ message: String, at timestamp: Timestamp, to stream: LogStreamID)
}

/// Bounds on worker log lines.
public enum WorkerLogLimits {
    /// The longest message one log event holds, in UTF-8 bytes; longer output lines are split into several events.
    public static let maxMessageBytes = 16 * 1024
    /// What CloudWatch Logs counts per event on top of its message, and Serval's caps count the same way.
    public static let eventOverheadBytes = 26
}
