/// `GET /endpoints/{name}/logs` and `GET /transform-jobs/{name}/logs`: the output lines of the resource's model
/// workers, in the order they were written.
public struct WorkerLogPage: Codable, Sendable, Equatable {
    /// The CloudWatch Logs group the lines are in (`/aws/sagemaker/Endpoints/<name>` or
    /// `/aws/sagemaker/TransformJobs`).
    public var logGroup: String
    /// The lines, oldest first.
    public var events: [WorkerLogLine]
    /// Pass as `nextToken` to read the lines written after these; present even when there were none.
    public var nextToken: String

    /// Creates a page.
    public init(logGroup: String, events: [WorkerLogLine], nextToken: String) {
        self.logGroup = logGroup
        self.events = events
        self.nextToken = nextToken
    }
}

/// One line a model worker printed.
public struct WorkerLogLine: Codable, Sendable, Equatable {
    /// When it was printed, ISO 8601 with milliseconds.
    public var time: String
    /// Its log stream: `<variant>/<instance id>` or `<job>/<instance id>-<epoch seconds>`.
    public var stream: String
    /// The line.
    public var message: String

    /// Creates a line.
    public init(time: String, stream: String, message: String) {
        self.time = time
        self.stream = stream
        self.message = message
    }
}

// MARK: CloudWatch Logs (JSON 1.1, `X-Amz-Target: Logs_20140328.<Operation>`)

/// A CloudWatch Logs error: `{"__type", "message"}` with HTTP 400, or 500 for `ServiceUnavailableException`.
public struct CloudWatchLogsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The `__type` values Serval answers with.
    public enum Kind: String, Sendable, Equatable {
        /// An unknown log group or stream.
        case resourceNotFound = "ResourceNotFoundException"
        /// A bad parameter.
        case invalidParameter = "InvalidParameterException"
        /// The `X-Amz-Target` names no operation Serval implements.
        case unknownOperation = "UnknownOperationException"
        /// An unexpected failure inside Serval; botocore retries.
        case serviceUnavailable = "ServiceUnavailableException"
    }

    /// The error's `__type`.
    public var kind: Kind
    /// The error's `message`.
    public var message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The HTTP status botocore expects with this error.
    public var status: Int { kind == .serviceUnavailable ? 500 : 400 }

    public var description: String { "\(kind.rawValue): \(message)" }
}

/// `DescribeLogStreams` input.
public struct DescribeLogStreamsInput: Codable, Sendable {
    public var logGroupName: String?
    public var logGroupIdentifier: String?
    public var logStreamNamePrefix: String?
    /// `LogStreamName` (default) or `LastEventTime`.
    public var orderBy: String?
    public var descending: Bool?
    /// 1-50, default 50.
    public var limit: Int?
    public var nextToken: String?
}

/// `DescribeLogStreams` output: `nextToken` only when more streams follow.
public struct DescribeLogStreamsOutput: Codable, Sendable {
    public var logStreams: [CloudWatchLogStream]
    public var nextToken: String?

    /// Creates an output.
    public init(logStreams: [CloudWatchLogStream], nextToken: String?) {
        self.logStreams = logStreams
        self.nextToken = nextToken
    }
}

/// One stream in `DescribeLogStreams`; times are epoch milliseconds.
public struct CloudWatchLogStream: Codable, Sendable, Equatable {
    public var logStreamName: String
    public var creationTime: Int64
    public var firstEventTimestamp: Int64
    public var lastEventTimestamp: Int64
    public var lastIngestionTime: Int64
    public var arn: String
    public var storedBytes: Int64

    /// Creates a stream.
    public init(
        logStreamName: String, creationTime: Int64, firstEventTimestamp: Int64, lastEventTimestamp: Int64,
        lastIngestionTime: Int64, arn: String, storedBytes: Int64
    ) {
        self.logStreamName = logStreamName
        self.creationTime = creationTime
        self.firstEventTimestamp = firstEventTimestamp
        self.lastEventTimestamp = lastEventTimestamp
        self.lastIngestionTime = lastIngestionTime
        self.arn = arn
        self.storedBytes = storedBytes
    }
}

/// `GetLogEvents` input.
public struct GetLogEventsInput: Codable, Sendable {
    public var logGroupName: String?
    public var logGroupIdentifier: String?
    public var logStreamName: String
    public var startTime: Int64?
    public var endTime: Int64?
    public var nextToken: String?
    /// 1-10,000, default 10,000.
    public var limit: Int?
    public var startFromHead: Bool?
}

/// `GetLogEvents` output.
public struct GetLogEventsOutput: Codable, Sendable {
    public var events: [CloudWatchLogEvent]
    public var nextForwardToken: String
    public var nextBackwardToken: String

    /// Creates an output.
    public init(events: [CloudWatchLogEvent], nextForwardToken: String, nextBackwardToken: String) {
        self.events = events
        self.nextForwardToken = nextForwardToken
        self.nextBackwardToken = nextBackwardToken
    }
}

/// An event in `GetLogEvents` (no stream name or id) or `FilterLogEvents` (with them); times are epoch ms.
public struct CloudWatchLogEvent: Codable, Sendable, Equatable {
    public var logStreamName: String?
    public var timestamp: Int64
    public var message: String
    public var ingestionTime: Int64
    public var eventId: String?

    /// Creates an event.
    public init(logStreamName: String?, timestamp: Int64, message: String, ingestionTime: Int64, eventId: String?) {
        self.logStreamName = logStreamName
        self.timestamp = timestamp
        self.message = message
        self.ingestionTime = ingestionTime
        self.eventId = eventId
    }
}

/// `FilterLogEvents` input.
public struct FilterLogEventsInput: Codable, Sendable {
    public var logGroupName: String?
    public var logGroupIdentifier: String?
    public var logStreamNames: [String]?
    public var logStreamNamePrefix: String?
    public var startTime: Int64?
    public var endTime: Int64?
    public var filterPattern: String?
    public var nextToken: String?
    /// 1-10,000, default 10,000.
    public var limit: Int?
}

/// `FilterLogEvents` output: `nextToken` only when more events follow.
public struct FilterLogEventsOutput: Codable, Sendable {
    public var events: [CloudWatchLogEvent]
    public var searchedLogStreams: [SearchedLogStream]
    public var nextToken: String?

    /// Creates an output.
    public init(events: [CloudWatchLogEvent], searchedLogStreams: [SearchedLogStream], nextToken: String?) {
        self.events = events
        self.searchedLogStreams = searchedLogStreams
        self.nextToken = nextToken
    }
}

/// A stream `FilterLogEvents` searched.
public struct SearchedLogStream: Codable, Sendable, Equatable {
    public var logStreamName: String
    public var searchedCompletely: Bool

    /// Creates an entry.
    public init(logStreamName: String, searchedCompletely: Bool) {
        self.logStreamName = logStreamName
        self.searchedCompletely = searchedCompletely
    }
}
