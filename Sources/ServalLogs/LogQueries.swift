import Foundation
public import ServalCore

/// Bounds on what the worker log store keeps.
public struct WorkerLogSettings: Sendable, Equatable {
    /// The most one stream keeps, counted as CloudWatch counts (each message's UTF-8 bytes plus 26). Past it the
    /// stream's oldest events are deleted until it holds three quarters of this.
    public var maxStreamBytes: Int64
    /// The most all streams keep together, counted the same way. Past it whole streams are deleted, those whose
    /// last event is oldest first, until they hold nine tenths of this.
    public var maxTotalBytes: Int64
    /// Streams whose last event is older than this many days are deleted (checked at start and hourly).
    public var retentionDays: Int
    /// The most output waiting to be written, in bytes; lines beyond it are dropped and counted.
    public var maxPendingBytes: Int

    /// Creates settings; the defaults keep 8 MiB per stream, 1 GiB in all, for 30 days.
    public init(
        maxStreamBytes: Int64 = 8 << 20, maxTotalBytes: Int64 = 1 << 30, retentionDays: Int = 30,
        maxPendingBytes: Int = 8 << 20
    ) {
        self.maxStreamBytes = maxStreamBytes
        self.maxTotalBytes = maxTotalBytes
        self.retentionDays = retentionDays
        self.maxPendingBytes = maxPendingBytes
    }

    /// Checks that the bounds make sense together.
    public func validate() throws(ServalError) {
        guard maxStreamBytes >= 64 * 1024 else {
            throw .invalid("maxStreamBytes", "is \(maxStreamBytes); keep at least 65536 bytes per stream.")
        }
        guard maxTotalBytes >= maxStreamBytes else {
            throw .invalid("maxTotalBytes", "is \(maxTotalBytes), below the per-stream cap \(maxStreamBytes).")
        }
        guard retentionDays >= 1 else {
            throw .invalid("retentionDays", "is \(retentionDays); keep logs at least 1 day.")
        }
        guard maxPendingBytes >= 64 * 1024 else {
            throw .invalid("maxPendingBytes", "is \(maxPendingBytes); allow at least 65536 bytes.")
        }
    }
}

/// A log stream as `DescribeLogStreams` shows it.
public struct LogStreamSummary: Sendable, Equatable {
    /// The stream.
    public var id: LogStreamID
    /// When its first line was written.
    public var creationTime: Timestamp
    /// The oldest event it still holds, and the newest.
    public var firstEventTime: Timestamp
    public var lastEventTime: Timestamp
    /// When its newest event was written to the store.
    public var lastIngestionTime: Timestamp
    /// What it holds, counted as ``WorkerLogSettings/maxStreamBytes`` counts.
    public var storedBytes: Int64
}

/// One line of a worker's output.
public struct LogEvent: Sendable, Equatable {
    /// Its position in the store: unique, increasing in the order events were written.
    public var id: Int64
    /// The name of its stream.
    public var stream: String
    /// When the worker printed it.
    public var timestamp: Timestamp
    /// When it was written to the store.
    public var ingestionTime: Timestamp
    /// The line, without its newline.
    public var message: String
}

/// A `DescribeLogStreams` request.
public struct LogStreamQuery: Sendable, Equatable {
    /// How streams are ordered.
    public enum Order: String, Sendable, CaseIterable {
        case logStreamName = "LogStreamName"
        case lastEventTime = "LastEventTime"
    }

    /// The group.
    public var group: String
    /// Only streams whose name starts with this (not with ``Order/lastEventTime``).
    public var namePrefix: String?
    public var orderBy = Order.logStreamName
    public var descending = false
    /// Streams per page, 1-50.
    public var limit = 50
    /// Where the previous page ended.
    public var nextToken: String?

    /// Creates a query.
    public init(group: String) {
        self.group = group
    }
}

/// A page of streams; `nextToken` only when more follow.
public struct LogStreamPage: Sendable, Equatable {
    public var streams: [LogStreamSummary]
    public var nextToken: String?
}

/// A `GetLogEvents` request: one stream's events in the order they were written.
public struct LogEventsQuery: Sendable, Equatable {
    /// The stream.
    public var stream: LogStreamID
    /// Only events at or after `startTime` and before `endTime`.
    public var startTime: Timestamp?
    public var endTime: Timestamp?
    /// Without a token: the oldest events (`true`) or the newest (`false`, CloudWatch's default).
    public var startFromHead = false
    /// Events per page, 1-10,000; a page also stops at 1 MiB.
    public var limit = 10_000
    /// `nextForwardToken` or `nextBackwardToken` of an earlier page.
    public var nextToken: String?

    /// Creates a query.
    public init(stream: LogStreamID) {
        self.stream = stream
    }
}

/// A page of one stream's events, oldest first, with the tokens to read on in either direction. At the end of the
/// stream `nextForwardToken` is the token the page was read with, as CloudWatch does.
public struct LogEventsPage: Sendable, Equatable {
    public var events: [LogEvent]
    public var nextForwardToken: String
    public var nextBackwardToken: String
}

/// A `FilterLogEvents` request: the events of a group's streams that match a pattern, by time.
public struct LogFilterQuery: Sendable, Equatable {
    /// The group.
    public var group: String
    /// Only these streams (1-100), or only streams whose name starts with ``streamNamePrefix``; not both.
    public var streamNames: [String]?
    public var streamNamePrefix: String?
    /// Only events at or after `startTime` and at or before `endTime`.
    public var startTime: Timestamp?
    public var endTime: Timestamp?
    /// What a message must contain.
    public var pattern = LogFilterPattern()
    /// Events per page, 1-10,000; a page also stops at 1 MiB.
    public var limit = 10_000
    /// Where the previous page ended.
    public var nextToken: String?

    /// Creates a query.
    public init(group: String) {
        self.group = group
    }
}

/// A page of matching events, by time; `nextToken` only when more follow.
public struct LogFilterPage: Sendable, Equatable {
    public var events: [LogEvent]
    /// The streams searched.
    public var searchedStreams: [String]
    public var nextToken: String?
}

/// Serval's own reading of a resource's logs: the events of a group's streams (all of them, or those with a name
/// prefix) in the order they were written, so that following with ``nextToken`` never misses or repeats a line.
public struct LogTailQuery: Sendable, Equatable {
    /// The group.
    public var group: String
    /// Only streams whose name starts with this.
    public var streamNamePrefix: String?
    /// Only events at or after this time.
    public var since: Timestamp?
    /// Events per page, 1-10,000.
    public var limit = 1000
    /// The previous page's ``LogTailPage/nextToken``: only events written after it.
    public var after: String?

    /// Creates a query.
    public init(group: String) {
        self.group = group
    }
}

/// A page of events in the order they were written; ``nextToken`` reads on from its end, and is there even when
/// the page is empty, so that a follower sees only lines written later.
public struct LogTailPage: Sendable, Equatable {
    public var events: [LogEvent]
    public var nextToken: String
}

/// The tokens of the store's pages. Event tokens are positions (event ids, which only grow); stream tokens are
/// the sort key of the last stream of a page.
enum LogTokens {
    /// `f/<id>`: events after `id`; `b/<id>`: events before `id`.
    enum Direction: Equatable {
        case forward(after: Int64)
        case backward(before: Int64)
    }

    static func forward(_ id: Int64) -> String { "f/\(id)" }
    static func backward(_ id: Int64) -> String { "b/\(id)" }

    static func direction(_ token: String) throws(ServalError) -> Direction {
        guard token.count > 2, token.count <= 21, let id = Int64(token.dropFirst(2)), id >= 0 else {
            throw invalid("nextToken")
        }
        if token.hasPrefix("f/") { return .forward(after: id) }
        if token.hasPrefix("b/") { return .backward(before: id) }
        throw invalid("nextToken")
    }

    /// `t/<timestamp>/<id>`: events after that time and id, in (time, id) order.
    static func timed(_ event: LogEvent) -> String { "t/\(event.timestamp.millisecondsSinceEpoch)/\(event.id)" }

    static func timedPosition(_ token: String) throws(ServalError) -> (timestamp: Int64, id: Int64) {
        let parts = token.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "t", let timestamp = Int64(parts[1]), let id = Int64(parts[2]), id >= 0 else {
            throw invalid("nextToken")
        }
        return (timestamp, id)
    }

    /// A position for ``LogTailQuery``: the id of the last event seen.
    static func tailPosition(_ token: String) throws(ServalError) -> Int64 {
        guard token.utf8.count <= 19, let id = Int64(token), id >= 0 else { throw invalid("nextToken") }
        return id
    }

    /// `n/<hex name>` or `t/<last event ms>/<hex name>`: streams after this one in the page's order.
    static func stream(_ summary: LogStreamSummary, order: LogStreamQuery.Order) -> String {
        let name = summary.id.name.utf8.map { String(format: "%02x", $0) }.joined()
        switch order {
        case .logStreamName: return "n/\(name)"
        case .lastEventTime: return "t/\(summary.lastEventTime.millisecondsSinceEpoch)/\(name)"
        }
    }

    static func streamPosition(_ token: String, order: LogStreamQuery.Order) throws(ServalError) -> (lastEventTime: Int64?, name: String) {
        let parts = token.split(separator: "/", omittingEmptySubsequences: false)
        func name(_ hex: Substring) throws(ServalError) -> String {
            let digits = Array(hex.utf8)
            guard !digits.isEmpty, digits.count % 2 == 0, digits.count <= 2048 else { throw invalid("nextToken") }
            var bytes: [UInt8] = []
            for index in stride(from: 0, to: digits.count, by: 2) {
                guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else {
                    throw invalid("nextToken")
                }
                bytes.append(byte)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        switch (order, parts.count, parts.first) {
        case (.logStreamName, 2, "n"):
            return (nil, try name(parts[1]))
        case (.lastEventTime, 3, "t"):
            guard let time = Int64(parts[1]) else { throw invalid("nextToken") }
            return (time, try name(parts[2]))
        default:
            throw invalid("nextToken")
        }
    }

    static func invalid(_ field: String) -> ServalError {
        .invalid(field, "is not a token Serval gave for this request; start again without it.")
    }
}
