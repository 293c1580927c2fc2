import GRDB
import ServalCore

/// Reading the store: CloudWatch Logs' DescribeLogStreams, GetLogEvents and FilterLogEvents, and Serval's own
/// tail of a resource's logs. Reads run beside the writer (SQLite's WAL) and see whole transactions only.
extension WorkerLogStore {
    /// A page of a group's streams (`DescribeLogStreams`).
    ///
    /// - Throws: ``ServalError/Code/notFound`` when the group has no streams (SageMaker's groups appear with their
    ///   first line); ``ServalError/Code/validationError`` for a limit outside 1-50, a name prefix with
    ///   ``LogStreamQuery/Order/lastEventTime``, or a token the store did not give.
    public func streams(_ query: LogStreamQuery) async throws -> LogStreamPage {
        guard (1...50).contains(query.limit) else { throw ServalError.invalid("limit", "is \(query.limit); use 1-50.") }
        let prefix = query.namePrefix.flatMap { $0.isEmpty ? nil : $0 }
        if query.orderBy == .lastEventTime, prefix != nil {
            throw ServalError.invalid("logStreamNamePrefix", "cannot be used with orderBy LastEventTime; order by LogStreamName.")
        }
        let position = try query.nextToken.map { token throws(ServalError) in try LogTokens.streamPosition(token, order: query.orderBy) }
        return try await database.read { db in
            guard try Self.groupExists(db, query.group) else { throw ServalError.notFound("Log group", query.group) }
            var sql = """
                SELECT name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms, stored_bytes
                FROM log_stream WHERE log_group = ?
                """
            var arguments: StatementArguments = [query.group]
            if let prefix {
                sql += " AND substr(name, 1, ?) = ?"
                arguments += [prefix.unicodeScalars.count, prefix]
            }
            let after = query.descending ? "<" : ">"
            let order = query.descending ? "DESC" : "ASC"
            switch query.orderBy {
            case .logStreamName:
                if let position {
                    sql += " AND name \(after) ?"
                    arguments += [position.name]
                }
                sql += " ORDER BY name \(order)"
            case .lastEventTime:
                if let position {
                    sql += " AND (last_event_ms, name) \(after) (?, ?)"
                    arguments += [position.lastEventTime, position.name]
                }
                sql += " ORDER BY last_event_ms \(order), name \(order)"
            }
            sql += " LIMIT ?"
            arguments += [query.limit + 1]
            let rows = try Row.fetchAll(db, sql: sql, arguments: arguments)
            let streams = rows.prefix(query.limit).map { row in
                LogStreamSummary(
                    id: LogStreamID(group: query.group, name: row[0]), creationTime: Timestamp(millisecondsSinceEpoch: row[1]),
                    firstEventTime: Timestamp(millisecondsSinceEpoch: row[2]), lastEventTime: Timestamp(millisecondsSinceEpoch: row[3]),
                    lastIngestionTime: Timestamp(millisecondsSinceEpoch: row[4]), storedBytes: row[5])
            }
            let next = rows.count > query.limit ? LogTokens.stream(streams.last!, order: query.orderBy) : nil
            return LogStreamPage(streams: Array(streams), nextToken: next)
        }
    }

    /// A page of one stream's events in the order they were written (`GetLogEvents`).
    ///
    /// - Throws: ``ServalError/Code/notFound`` for an unknown group or stream; ``ServalError/Code/validationError`` for
    ///   a limit outside 1-10,000 or a token the store did not give.
    public func events(_ query: LogEventsQuery) async throws -> LogEventsPage {
        guard (1...10_000).contains(query.limit) else { throw ServalError.invalid("limit", "is \(query.limit); use 1-10000.") }
        let token = try query.nextToken.map { token throws(ServalError) in try LogTokens.direction(token) }
        return try await database.read { db in
            guard
                let stream = try Int64.fetchOne(
                    db, sql: "SELECT id FROM log_stream WHERE log_group = ? AND name = ?",
                    arguments: [query.stream.group, query.stream.name])
            else {
                guard try Self.groupExists(db, query.stream.group) else { throw ServalError.notFound("Log group", query.stream.group) }
                throw ServalError.notFound("Log stream", query.stream.name)
            }
            var conditions = "e.stream_id = ?"
            var arguments: StatementArguments = [stream]
            if let start = query.startTime {
                conditions += " AND e.timestamp_ms >= ?"
                arguments += [start.millisecondsSinceEpoch]
            }
            if let end = query.endTime {
                conditions += " AND e.timestamp_ms < ?"
                arguments += [end.millisecondsSinceEpoch]
            }
            let direction: LogTokens.Direction
            if let token {
                direction = token
            } else if query.startFromHead {
                direction = .forward(after: 0)
            } else {
                let last = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM log_event WHERE stream_id = ?", arguments: [stream]) ?? 0
                direction = .backward(before: last + 1)
            }
            switch direction {
            case .forward(let after):
                let events = try Self.fetchEvents(
                    db, where: conditions + " AND e.id > ?", arguments + [after], order: "e.id", limit: query.limit
                ).events
                guard let first = events.first, let last = events.last else {
                    return LogEventsPage(
                        events: [], nextForwardToken: LogTokens.forward(after), nextBackwardToken: LogTokens.backward(after + 1))
                }
                return LogEventsPage(
                    events: events, nextForwardToken: LogTokens.forward(last.id), nextBackwardToken: LogTokens.backward(first.id))
            case .backward(let before):
                let events = Array(
                    try Self.fetchEvents(
                        db, where: conditions + " AND e.id < ?", arguments + [before], order: "e.id DESC", limit: query.limit
                    ).events.reversed())
                guard let first = events.first, let last = events.last else {
                    return LogEventsPage(
                        events: [], nextForwardToken: LogTokens.forward(max(before - 1, 0)),
                        nextBackwardToken: LogTokens.backward(before))
                }
                return LogEventsPage(
                    events: events, nextForwardToken: LogTokens.forward(last.id), nextBackwardToken: LogTokens.backward(first.id))
            }
        }
    }

    /// A page of the events of a group's streams that match a pattern, by time, then in the order written
    /// (`FilterLogEvents`).
    ///
    /// - Throws: ``ServalError/Code/notFound`` when the group has no streams; ``ServalError/Code/validationError`` for
    ///   a limit outside 1-10,000, both stream names and a prefix, more than 100 names, or a token the store did
    ///   not give.
    public func filter(_ query: LogFilterQuery) async throws -> LogFilterPage {
        guard (1...10_000).contains(query.limit) else { throw ServalError.invalid("limit", "is \(query.limit); use 1-10000.") }
        let prefix = query.streamNamePrefix.flatMap { $0.isEmpty ? nil : $0 }
        if let names = query.streamNames {
            guard prefix == nil else {
                throw ServalError.invalid("logStreamNames", "cannot be given with logStreamNamePrefix; give one or the other.")
            }
            guard (1...100).contains(names.count) else {
                throw ServalError.invalid("logStreamNames", "names \(names.count) streams; give 1-100.")
            }
        }
        let position = try query.nextToken.map { token throws(ServalError) in try LogTokens.timedPosition(token) }
        return try await database.read { db in
            guard try Self.groupExists(db, query.group) else { throw ServalError.notFound("Log group", query.group) }
            var streams = "s.log_group = ?"
            var streamArguments: StatementArguments = [query.group]
            if let names = query.streamNames {
                streams += " AND s.name IN (" + names.map { _ in "?" }.joined(separator: ", ") + ")"
                streamArguments += StatementArguments(names)
            }
            if let prefix {
                streams += " AND substr(s.name, 1, ?) = ?"
                streamArguments += [prefix.unicodeScalars.count, prefix]
            }
            let searched = try String.fetchAll(
                db, sql: "SELECT s.name FROM log_stream s WHERE \(streams) ORDER BY s.name", arguments: streamArguments)
            var conditions = streams
            var arguments = streamArguments
            if let start = query.startTime {
                conditions += " AND e.timestamp_ms >= ?"
                arguments += [start.millisecondsSinceEpoch]
            }
            if let end = query.endTime {
                conditions += " AND e.timestamp_ms <= ?"
                arguments += [end.millisecondsSinceEpoch]
            }
            if let position {
                conditions += " AND (e.timestamp_ms, e.id) > (?, ?)"
                arguments += [position.timestamp, position.id]
            }
            let pattern = query.pattern.sql
            conditions += " AND " + pattern.condition
            arguments += StatementArguments(pattern.arguments)
            let page = try Self.fetchEvents(db, where: conditions, arguments, order: "e.timestamp_ms, e.id", limit: query.limit)
            return LogFilterPage(
                events: page.events, searchedStreams: searched,
                nextToken: page.more ? LogTokens.timed(page.events.last!) : nil)
        }
    }

    /// The events of a group's streams (or those with a name prefix) in the order they were written, from a
    /// position, for Serval's own log routes and `serval logs --follow`.
    ///
    /// - Throws: ``ServalError/Code/validationError`` for a limit outside 1-10,000 or a token the store did not give.
    public func tail(_ query: LogTailQuery) async throws -> LogTailPage {
        guard (1...10_000).contains(query.limit) else { throw ServalError.invalid("limit", "is \(query.limit); use 1-10000.") }
        let after = try query.after.map { token throws(ServalError) in try LogTokens.tailPosition(token) } ?? 0
        return try await database.read { db in
            var conditions = "s.log_group = ? AND e.id > ?"
            var arguments: StatementArguments = [query.group, after]
            if let prefix = query.streamNamePrefix, !prefix.isEmpty {
                conditions += " AND substr(s.name, 1, ?) = ?"
                arguments += [prefix.unicodeScalars.count, prefix]
            }
            if let since = query.since {
                conditions += " AND e.timestamp_ms >= ?"
                arguments += [since.millisecondsSinceEpoch]
            }
            let events = try Self.fetchEvents(db, where: conditions, arguments, order: "e.id", limit: query.limit).events
            if let last = events.last { return LogTailPage(events: events, nextToken: String(last.id)) }
            // Nothing new: a follower reads on from the newest event anywhere, which later events come after.
            let newest = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM log_event") ?? 0
            return LogTailPage(events: [], nextToken: String(max(after, newest)))
        }
    }

    /// Whether `group` has a stream (whose name starts with `prefix`, when given).
    public func hasStreams(group: String, prefix: String? = nil) async throws -> Bool {
        try await database.read { db in
            guard let prefix, !prefix.isEmpty else { return try Self.groupExists(db, group) }
            return try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM log_stream WHERE log_group = ? AND substr(name, 1, ?) = ?)",
                arguments: [group, prefix.unicodeScalars.count, prefix]) ?? false
        }
    }

    private static func groupExists(_ db: Database, _ group: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM log_stream WHERE log_group = ?)", arguments: [group]) ?? false
    }

    /// Up to `limit` events, read one at a time so that a page stops at ``maxPageBytes`` (at least one event);
    /// `more` tells whether events were left.
    private static func fetchEvents(
        _ db: Database, where conditions: String, _ arguments: StatementArguments, order: String, limit: Int
    ) throws -> (events: [LogEvent], more: Bool) {
        let rows = try Row.fetchCursor(
            db,
            sql: """
                SELECT e.id, s.name, e.timestamp_ms, e.ingestion_ms, e.message
                FROM log_event e JOIN log_stream s ON s.id = e.stream_id
                WHERE \(conditions) ORDER BY \(order) LIMIT ?
                """,
            arguments: arguments + [limit + 1])
        var events: [LogEvent] = []
        var bytes = 0
        while let row = try rows.next() {
            let message: String = row[4]
            bytes += message.utf8.count + WorkerLogLimits.eventOverheadBytes
            if events.count == limit || (bytes > maxPageBytes && !events.isEmpty) { return (events, true) }
            events.append(
                LogEvent(
                    id: row[0], stream: row[1], timestamp: Timestamp(millisecondsSinceEpoch: row[2]),
                    ingestionTime: Timestamp(millisecondsSinceEpoch: row[3]), message: message))
        }
        return (events, false)
    }
}
