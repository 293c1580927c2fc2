import Foundation
import GRDB
public import ServalCore

/// The queue of asynchronous invocations and its webhook outbox, in SQLite.
///
/// `async_invocation` keeps each invocation as JSON (`body`) beside the columns that the queue's queries need;
/// every update rewrites both from one decoded value, so they never disagree. The lease (`lease_owner`,
/// `lease_until`) lives in columns only; the lease steps are ``SQLiteLeasedQueue``'s, over the table described by
/// ``AsyncInvocation/leaseTable``. `sequence` orders the queue and is the listing's page token;
/// `AUTOINCREMENT` keeps it from ever being reused, so that a token or an outbox sequence never names a newer
/// row. Every method is one transaction; GRDB starts write transactions `IMMEDIATE`, so writers, across
/// connections and processes, are serialized before they read.
extension SQLiteMetadataStore {
    static func createAsyncInvocationTables(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE async_invocation (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    endpoint TEXT NOT NULL,
                    id TEXT NOT NULL,
                    status TEXT NOT NULL,
                    lease_owner TEXT,
                    lease_until INTEGER,
                    expires_at INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    attempts INTEGER NOT NULL,
                    inline_body BLOB,
                    body BLOB NOT NULL,
                    UNIQUE (endpoint, id));
                -- Claiming: an endpoint's queued rows in order; expires_at makes the expired-only claim a scan of
                -- the index alone.
                CREATE INDEX async_invocation_claim ON async_invocation(endpoint, status, sequence, expires_at);
                -- Rescuing: in-progress rows by lease end.
                CREATE INDEX async_invocation_rescue ON async_invocation(status, lease_until);
                -- Listing: an endpoint's rows, newest first.
                CREATE INDEX async_invocation_list ON async_invocation(endpoint, sequence);
                CREATE TABLE async_notification (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    inference_id TEXT NOT NULL,
                    endpoint TEXT NOT NULL,
                    url TEXT NOT NULL,
                    body BLOB NOT NULL,
                    signature TEXT,
                    attempts INTEGER NOT NULL,
                    next_attempt_at INTEGER NOT NULL);
                CREATE INDEX async_notification_due ON async_notification(next_attempt_at);
                """)
    }

    /// Migration `v5-async-notification-last-error`: why a notification's last delivery failed.
    static func addAsyncNotificationLastError(_ db: Database) throws {
        try db.execute(sql: "ALTER TABLE async_notification ADD COLUMN last_error TEXT")
    }

    // MARK: Invocations

    public func enqueueAsyncInvocation(
        _ invocation: AsyncInvocation, inlineBody: [UInt8]?
    ) async throws -> (invocation: AsyncInvocation, created: Bool) {
        let body = try Self.encode(invocation)
        let inline = inlineBody.map { Data($0) }
        let existing: Data? = try await database.write { db in
            try db.cachedStatement(
                sql: """
                    INSERT INTO async_invocation (endpoint, id, status, expires_at, created_at, attempts, inline_body, body)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (endpoint, id) DO NOTHING
                    """
            ).execute(arguments: [
                invocation.endpointName, invocation.id, invocation.status.rawValue,
                invocation.expiresAt.millisecondsSinceEpoch, invocation.createdAt.millisecondsSinceEpoch,
                invocation.attempts, inline, body,
            ])
            guard db.changesCount == 0 else { return nil }
            return try Data.fetchOne(
                db.cachedStatement(sql: "SELECT body FROM async_invocation WHERE endpoint = ? AND id = ?"),
                arguments: [invocation.endpointName, invocation.id])
        }
        guard let existing else { return (invocation, true) }
        return (try Self.decode(existing), false)
    }

    public func asyncInvocation(endpoint: String, id: String) async throws -> AsyncInvocation? {
        let data = try await database.read { db in
            try Data.fetchOne(
                db.cachedStatement(sql: "SELECT body FROM async_invocation WHERE endpoint = ? AND id = ?"),
                arguments: [endpoint, id])
        }
        return try data.map(Self.decode)
    }

    public func asyncInvocationInlineBody(endpoint: String, id: String) async throws -> [UInt8]? {
        let data = try await database.read { db in
            try Data.fetchOne(
                db.cachedStatement(sql: "SELECT inline_body FROM async_invocation WHERE endpoint = ? AND id = ?"),
                arguments: [endpoint, id])
        }
        return data.map { [UInt8]($0) }
    }

    public func asyncInvocations(
        endpoint: String, filter: AsyncInvocationFilter
    ) async throws -> (invocations: [AsyncInvocation], nextToken: String?) {
        guard (1...1000).contains(filter.limit) else {
            throw ServalError.invalid("limit", "is \(filter.limit); it must be between 1 and 1000.")
        }
        var conditions = ["endpoint = ?"]
        var arguments: StatementArguments = [endpoint]
        if let status = filter.status {
            conditions.append("status = ?")
            arguments += [status.rawValue]
        }
        if let createdAfter = filter.createdAfter {
            conditions.append("created_at >= ?")
            arguments += [createdAfter.millisecondsSinceEpoch]
        }
        if let createdBefore = filter.createdBefore {
            conditions.append("created_at < ?")
            arguments += [createdBefore.millisecondsSinceEpoch]
        }
        if let token = filter.nextToken {
            conditions.append("sequence < ?")
            arguments += [try Self.sequence(fromToken: token)]
        }
        // One row more than the page tells whether another page follows.
        arguments += [filter.limit + 1]
        let sql = """
            SELECT sequence, body FROM async_invocation WHERE \(conditions.joined(separator: " AND "))
            ORDER BY sequence DESC LIMIT ?
            """
        let rows = try await database.read { [arguments] db in
            try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments).map {
                (sequence: $0["sequence"] as Int64, body: $0["body"] as Data)
            }
        }
        let page = rows.prefix(filter.limit)
        let invocations: [AsyncInvocation] = try page.map { try Self.decode($0.body) }
        let nextToken = rows.count > filter.limit ? page.last.map { String($0.sequence) } : nil
        return (invocations, nextToken)
    }

    public func cancelAsyncInvocation(
        endpoint: String, id: String, reason: String, now: Timestamp, notifications: [NewAsyncNotification]
    ) async throws -> AsyncInvocation? {
        try await database.write { db in
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(sql: "SELECT body FROM async_invocation WHERE endpoint = ? AND id = ?"),
                    arguments: [endpoint, id])
            else { return nil }
            var invocation = try AsyncInvocation(row: row)
            guard invocation.status == .queued else {
                throw ServalError(
                    .conflict,
                    "Async invocation \"\(id)\" of endpoint \"\(endpoint)\" is \(invocation.status.rawValue); only a queued invocation can be cancelled.")
            }
            invocation.status = .failed
            invocation.failureReason = reason
            invocation.completedAt = now
            invocation.updatedAt = now
            try SQLiteLeasedQueue<AsyncInvocation>.write(invocation, partition: endpoint, owner: nil, until: nil, in: db)
            try Self.insert(notifications, for: invocation, due: now, in: db)
            return invocation
        }
    }

    public func queuedAsyncCounts() async throws -> [String: AsyncQueueDepth] {
        try await database.read { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT endpoint, status, COUNT(*) AS count FROM async_invocation
                        WHERE status IN ('Queued', 'InProgress') GROUP BY endpoint, status
                        """))
            var counts: [String: AsyncQueueDepth] = [:]
            for row in rows {
                let count: Int = row["count"]
                let status: String = row["status"]
                if status == AsyncInvocationStatus.queued.rawValue {
                    counts[row["endpoint"], default: AsyncQueueDepth(queued: 0, inProgress: 0)].queued = count
                } else {
                    counts[row["endpoint"], default: AsyncQueueDepth(queued: 0, inProgress: 0)].inProgress = count
                }
            }
            return counts
        }
    }

    // MARK: Notifications

    public func dueAsyncNotifications(now: Timestamp, limit: Int) async throws -> [AsyncNotification] {
        guard limit > 0 else { return [] }
        return try await database.read { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT sequence, inference_id, endpoint, url, body, signature, attempts, next_attempt_at, last_error
                        FROM async_notification WHERE next_attempt_at <= ? ORDER BY sequence LIMIT ?
                        """),
                arguments: [now.millisecondsSinceEpoch, limit]
            ).map { row in
                AsyncNotification(
                    sequence: row["sequence"], inferenceId: row["inference_id"], endpointName: row["endpoint"],
                    url: row["url"], body: [UInt8](row["body"] as Data), signature: row["signature"],
                    attempts: row["attempts"],
                    nextAttemptAt: Timestamp(millisecondsSinceEpoch: row["next_attempt_at"]), lastError: row["last_error"])
            }
        }
    }

    public func asyncNotificationDelivered(sequence: Int64) async throws {
        try await database.write { db in
            try db.cachedStatement(sql: "DELETE FROM async_notification WHERE sequence = ?").execute(arguments: [sequence])
        }
    }

    public func asyncNotificationFailed(sequence: Int64, nextAttemptAt: Timestamp, reason: String) async throws {
        try await database.write { db in
            try db.cachedStatement(
                sql: "UPDATE async_notification SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE sequence = ?"
            ).execute(arguments: [nextAttemptAt.millisecondsSinceEpoch, reason, sequence])
        }
    }

    public func nextAsyncNotificationDue() async throws -> Timestamp? {
        let milliseconds = try await database.read { db in
            try Int64.fetchOne(db.cachedStatement(sql: "SELECT MIN(next_attempt_at) FROM async_notification"))
        }
        return milliseconds.map(Timestamp.init(millisecondsSinceEpoch:))
    }

    // MARK: Helpers

    /// Records notifications about `invocation`, due at `due`.
    fileprivate static func insert(
        _ notifications: [NewAsyncNotification], for invocation: AsyncInvocation, due: Timestamp, in db: Database
    ) throws {
        guard !notifications.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO async_notification (inference_id, endpoint, url, body, signature, attempts, next_attempt_at)
                VALUES (?, ?, ?, ?, ?, 0, ?)
                """)
        for notification in notifications {
            try statement.execute(arguments: [
                invocation.id, invocation.endpointName, notification.url, Data(notification.body),
                notification.signature, due.millisecondsSinceEpoch,
            ])
        }
    }

    /// The sequence a listing's page token names.
    private static func sequence(fromToken token: String) throws -> Int64 {
        guard let sequence = Int64(token), sequence > 0, String(sequence) == token else {
            throw ServalError.invalid("nextToken", "is not a token that this listing returned; list the first page without it.")
        }
        return sequence
    }
}

/// Async invocations as the leased queue keeps them: partitioned by endpoint, in `sequence` order, overdue after
/// `expires_at`, the JSON body rewritten with every step.
extension AsyncInvocation: SQLiteLeasedWork {
    static let leaseTable = LeaseTable(
        name: "async_invocation", partition: "endpoint", key: ["id"], order: "sequence",
        waiting: AsyncInvocationStatus.queued.rawValue, deadline: "expires_at", columns: "body", mirrored: ["body"])

    static func keyValues(_ id: String) -> StatementArguments { [id] }

    init(row: Row) throws {
        self = try SQLiteMetadataStore.decode(row["body"] as Data)
    }

    var statusValue: String { status.rawValue }

    func mirroredValues() throws -> StatementArguments { [try SQLiteMetadataStore.encode(self)] }

    mutating func claimed(now: Timestamp) {
        status = .inProgress
        attempts += 1
        startedAt = now
        updatedAt = now
    }

    mutating func requeued(now: Timestamp, takingBackAttempt: Bool) {
        status = .queued
        if takingBackAttempt { attempts = max(0, attempts - 1) }
        updatedAt = now
    }

    mutating func finished(with end: AsyncInvocationEnd, now: Timestamp) {
        switch end.outcome {
        case .completed(let outputContentType):
            status = .completed
            self.outputContentType = outputContentType
            failureReason = nil
        case .failed(let reason):
            status = .failed
            failureReason = reason
        case .expired(let reason):
            status = .expired
            failureReason = reason
        }
        if let variant = end.variant { self.variant = variant }
        completedAt = now
        updatedAt = now
    }

    func recordFinish(_ end: AsyncInvocationEnd, partition: String, now: Timestamp, in db: Database) throws {
        try SQLiteMetadataStore.insert(end.notifications, for: self, due: now, in: db)
    }
}
