import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServalAPI
import ServalCore
import ServalLogs

/// The part of CloudWatch Logs that reads model workers' output (boto3's `logs` client, JSON 1.1 on the main port,
/// beside SageMaker's control plane): `POST /` with `X-Amz-Target: Logs_20140328.<Operation>` for
/// `DescribeLogStreams`, `GetLogEvents` and `FilterLogEvents`, times in epoch milliseconds, errors
/// `{"__type", "message"}`. docs/logs.md describes the groups, streams and tokens.
struct CloudWatchLogsRoutes: Sendable {
    let logs: WorkerLogStore
    /// The account and region shown in stream ARNs.
    let arns: SageMakerARN

    /// The `X-Amz-Target` prefix of CloudWatch Logs' operations.
    static let targetPrefix = "Logs_20140328."

    /// Answers one CloudWatch Logs request; `operation` is the target without ``targetPrefix``.
    func handle(_ operation: String, _ request: Request, context: ServalRequestContext) async -> Response {
        do {
            let body = try await request.body.collect(upTo: SageMakerControlRoutes.maxBodyBytes)
            let data = Data(body.readableBytesView)
            let output: any Encodable
            switch operation {
            case "DescribeLogStreams": output = try await describeLogStreams(try Self.decode(data))
            case "GetLogEvents": output = try await getLogEvents(try Self.decode(data))
            case "FilterLogEvents": output = try await filterLogEvents(try Self.decode(data))
            default:
                throw CloudWatchLogsError(
                    .unknownOperation,
                    "Serval does not implement the CloudWatch Logs operation \(operation); it serves DescribeLogStreams, GetLogEvents and FilterLogEvents (docs/logs.md).")
            }
            return try SageMakerControlRoutes.response(output)
        } catch {
            let failure = Self.logsError(from: error, request: request, context: context)
            if failure.kind == .serviceUnavailable {
                context.logger.warning("CloudWatch Logs \(operation) failed", metadata: ["error": "\(failure)"])
            }
            var headers: HTTPFields = [.contentType: "application/x-amz-json-1.1"]
            headers[.amznErrorType] = failure.kind.rawValue
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let body = (try? encoder.encode(["__type": failure.kind.rawValue, "message": failure.message])) ?? Data()
            return Response(
                status: HTTPResponse.Status(code: failure.status), headers: headers,
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }

    // MARK: Operations

    func describeLogStreams(_ input: DescribeLogStreamsInput) async throws -> DescribeLogStreamsOutput {
        var query = LogStreamQuery(group: try Self.group(input.logGroupName, input.logGroupIdentifier))
        query.namePrefix = try input.logStreamNamePrefix.map { try Self.streamName($0, field: "logStreamNamePrefix") }
        if let orderBy = input.orderBy {
            guard let order = LogStreamQuery.Order(rawValue: orderBy) else {
                throw ServalError.invalid("orderBy", "is \"\(orderBy)\"; use LogStreamName or LastEventTime.")
            }
            query.orderBy = order
        }
        query.descending = input.descending ?? false
        query.limit = input.limit ?? 50
        query.nextToken = input.nextToken
        let page = try await logs.streams(query)
        return DescribeLogStreamsOutput(
            logStreams: page.streams.map { stream in
                CloudWatchLogStream(
                    logStreamName: stream.id.name, creationTime: stream.creationTime.millisecondsSinceEpoch,
                    firstEventTimestamp: stream.firstEventTime.millisecondsSinceEpoch,
                    lastEventTimestamp: stream.lastEventTime.millisecondsSinceEpoch,
                    lastIngestionTime: stream.lastIngestionTime.millisecondsSinceEpoch,
                    arn: "arn:aws:logs:\(arns.region):\(arns.account):log-group:\(stream.id.group):log-stream:\(stream.id.name)",
                    storedBytes: stream.storedBytes)
            },
            nextToken: page.nextToken)
    }

    func getLogEvents(_ input: GetLogEventsInput) async throws -> GetLogEventsOutput {
        var query = LogEventsQuery(
            stream: LogStreamID(
                group: try Self.group(input.logGroupName, input.logGroupIdentifier),
                name: try Self.streamName(input.logStreamName, field: "logStreamName")))
        query.startTime = input.startTime.map(Timestamp.init(millisecondsSinceEpoch:))
        query.endTime = input.endTime.map(Timestamp.init(millisecondsSinceEpoch:))
        query.startFromHead = input.startFromHead ?? false
        query.limit = input.limit ?? 10_000
        query.nextToken = input.nextToken
        let page = try await logs.events(query)
        return GetLogEventsOutput(
            events: page.events.map {
                CloudWatchLogEvent(
                    logStreamName: nil, timestamp: $0.timestamp.millisecondsSinceEpoch, message: $0.message,
                    ingestionTime: $0.ingestionTime.millisecondsSinceEpoch, eventId: nil)
            },
            nextForwardToken: page.nextForwardToken, nextBackwardToken: page.nextBackwardToken)
    }

    func filterLogEvents(_ input: FilterLogEventsInput) async throws -> FilterLogEventsOutput {
        var query = LogFilterQuery(group: try Self.group(input.logGroupName, input.logGroupIdentifier))
        query.streamNames = try input.logStreamNames.map { names in try names.map { try Self.streamName($0, field: "logStreamNames") } }
        query.streamNamePrefix = try input.logStreamNamePrefix.map { try Self.streamName($0, field: "logStreamNamePrefix") }
        query.startTime = input.startTime.map(Timestamp.init(millisecondsSinceEpoch:))
        query.endTime = input.endTime.map(Timestamp.init(millisecondsSinceEpoch:))
        query.pattern = try LogFilterPattern(parsing: input.filterPattern ?? "")
        query.limit = input.limit ?? 10_000
        query.nextToken = input.nextToken
        let page = try await logs.filter(query)
        return FilterLogEventsOutput(
            events: page.events.map {
                CloudWatchLogEvent(
                    logStreamName: $0.stream, timestamp: $0.timestamp.millisecondsSinceEpoch, message: $0.message,
                    ingestionTime: $0.ingestionTime.millisecondsSinceEpoch, eventId: String($0.id))
            },
            searchedLogStreams: page.searchedStreams.map { SearchedLogStream(logStreamName: $0, searchedCompletely: page.nextToken == nil) },
            nextToken: page.nextToken)
    }

    // MARK: Parameters

    static func decode<Input: Decodable>(_ data: Data) throws -> Input {
        try JSONDecoder().decode(Input.self, from: data.isEmpty ? Data("{}".utf8) : data)
    }

    /// The group a request names by `logGroupName`, or by `logGroupIdentifier` (a name or an ARN); exactly one.
    static func group(_ name: String?, _ identifier: String?) throws(ServalError) -> String {
        let group: String
        switch (name, identifier) {
        case (let name?, nil):
            group = name
        case (nil, let identifier?):
            // arn:aws:logs:REGION:ACCOUNT:log-group:NAME, optionally ending in ":*".
            if identifier.hasPrefix("arn:"), let range = identifier.range(of: ":log-group:") {
                var rest = identifier[range.upperBound...]
                if rest.hasSuffix(":*") { rest = rest.dropLast(2) }
                group = String(rest)
            } else {
                group = identifier
            }
        case (nil, nil):
            throw .invalid("logGroupName", "is required (or logGroupIdentifier).")
        case (_?, _?):
            throw .invalid("logGroupIdentifier", "cannot be given with logGroupName; give one or the other.")
        }
        let allowed = group.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || [0x2E, 0x2D, 0x5F, 0x2F, 0x23].contains(byte)
        }
        guard (1...512).contains(group.utf8.count), allowed else {
            throw .invalid("logGroupName", "must be 1-512 characters of letters, digits and . - _ / #.")
        }
        return group
    }

    /// A stream name or prefix: 1-512 characters without `:` or `*`.
    static func streamName(_ name: String, field: String) throws(ServalError) -> String {
        guard (1...512).contains(name.utf8.count), !name.contains(":"), !name.contains("*") else {
            throw .invalid(field, "must be 1-512 characters without : or *.")
        }
        return name
    }

    /// Maps any error to CloudWatch Logs': unknown resources are `ResourceNotFoundException`, bad parameters
    /// `InvalidParameterException`, anything else `ServiceUnavailableException` (details in the log).
    static func logsError(from error: any Error, request: Request, context: ServalRequestContext) -> CloudWatchLogsError {
        if let error = error as? CloudWatchLogsError { return error }
        let serval = ErrorMiddleware.servalError(from: error, request: request, context: context)
        switch serval.code {
        case .notFound: return CloudWatchLogsError(.resourceNotFound, serval.message)
        case .validationError, .payloadTooLarge, .conflict: return CloudWatchLogsError(.invalidParameter, serval.message)
        default: return CloudWatchLogsError(.serviceUnavailable, serval.message)
        }
    }
}
