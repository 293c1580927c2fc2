import Foundation
import GRDB
public import ServalCore

/// Transform jobs, their objects and their work units, in SQLite.
///
/// `transform_job` keeps each job as JSON (`body`) beside the columns that listings filter and sort on; every update
/// rewrites both from one decoded value, so they never disagree. A job's status, plan flag and progress live in
/// its JSON, so that finishing a unit and adding to the progress is one read-modify-write of one row in the
/// unit's transaction (the PostgreSQL store reads the job row `FOR UPDATE`). Objects and units are plain columns:
/// a job may have 10^5 units, and claims, renewals and rescues touch them by the thousand. A unit's lease
/// (`lease_owner`, `lease_until`) lives in columns only; the lease steps are ``SQLiteLeasedQueue``'s, over the table
/// described by ``TransformUnit/leaseTable``. Every method is one transaction; GRDB starts write
/// transactions `IMMEDIATE`, so writers, across connections and processes, are serialized before they read.
extension SQLiteMetadataStore {
    static func createTransformJobTables(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE transform_job (
                    name TEXT PRIMARY KEY NOT NULL,
                    status TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    body BLOB NOT NULL);
                -- Listing by creation time (name breaks ties); the active jobs by status.
                CREATE INDEX transform_job_by_creation ON transform_job(created_at, name);
                CREATE INDEX transform_job_by_status ON transform_job(status, created_at, name);
                CREATE TABLE transform_object (
                    job TEXT NOT NULL,
                    object_index INTEGER NOT NULL,
                    object_key TEXT NOT NULL,
                    output_key TEXT NOT NULL,
                    size_bytes INTEGER NOT NULL,
                    unit_count INTEGER NOT NULL,
                    assembled INTEGER NOT NULL,
                    PRIMARY KEY (job, object_index)) WITHOUT ROWID;
                CREATE TABLE transform_unit (
                    job TEXT NOT NULL,
                    object_index INTEGER NOT NULL,
                    part INTEGER NOT NULL,
                    start_offset INTEGER NOT NULL,
                    end_offset INTEGER NOT NULL,
                    records INTEGER NOT NULL,
                    first_record INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    attempts INTEGER NOT NULL,
                    lease_owner TEXT,
                    lease_until INTEGER,
                    PRIMARY KEY (job, object_index, part)) WITHOUT ROWID;
                -- Claiming: a job's pending units in order. Partial, so that done units leave the index.
                CREATE INDEX transform_unit_claim ON transform_unit(job, object_index, part) WHERE status = 'Pending';
                -- Rescuing: in-progress units by lease end.
                CREATE INDEX transform_unit_rescue ON transform_unit(lease_until) WHERE status = 'InProgress';
                """)
    }

    // MARK: Jobs

    public func createTransformJob(_ job: TransformJob) async throws {
        let body = try Self.encode(job)
        do {
            try await database.write { db in
                try db.cachedStatement(
                    sql: "INSERT INTO transform_job (name, status, created_at, body) VALUES (?, ?, ?, ?)"
                ).execute(arguments: [job.name, job.status.rawValue, job.createdAt.millisecondsSinceEpoch, body])
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw ServalError(
                .conflict,
                "Transform job \"\(job.name)\" already exists; transform jobs are never deleted, so choose another name.")
        }
    }

    public func transformJob(named name: String) async throws -> TransformJob? {
        try await database.read { db in try Self.transformJob(named: name, in: db) }
    }

    public func transformJobs(filter: TransformJobFilter) async throws -> (jobs: [TransformJob], nextToken: String?) {
        guard TransformJobFilter.limits.contains(filter.limit) else {
            throw ServalError.invalid("maxResults", "is \(filter.limit); it must be between 1 and 100.")
        }
        let descending = filter.sortOrder == .descending
        let byName = filter.sortBy == .name
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let nameContains = filter.nameContains, !nameContains.isEmpty {
            conditions.append("instr(lower(name), lower(?)) > 0")
            arguments += [nameContains]
        }
        if let status = filter.status {
            conditions.append("status = ?")
            arguments += [status.rawValue]
        }
        if let after = filter.creationTimeAfter {
            conditions.append("created_at > ?")
            arguments += [after.millisecondsSinceEpoch]
        }
        if let before = filter.creationTimeBefore {
            conditions.append("created_at < ?")
            arguments += [before.millisecondsSinceEpoch]
        }
        if let token = filter.nextToken {
            let position = try TransformJobPageToken(token, for: filter)
            let comparison = descending ? "<" : ">"
            if let createdAt = position.createdAt {
                conditions.append("(created_at, name) \(comparison) (?, ?)")
                arguments += [createdAt, position.name]
            } else {
                conditions.append("name \(comparison) ?")
                arguments += [position.name]
            }
        }
        // One row more than the page tells whether another page follows.
        arguments += [filter.limit + 1]
        let direction = descending ? "DESC" : "ASC"
        let sql = """
            SELECT body FROM transform_job \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
            ORDER BY \(byName ? "name \(direction)" : "created_at \(direction), name \(direction)") LIMIT ?
            """
        let rows = try await database.read { [arguments] db in
            try Data.fetchAll(db.cachedStatement(sql: sql), arguments: arguments)
        }
        let jobs: [TransformJob] = try rows.prefix(filter.limit).map(Self.decode)
        let nextToken =
            rows.count > filter.limit ? jobs.last.map { TransformJobPageToken(after: $0, for: filter).token } : nil
        return (jobs, nextToken)
    }

    public func activeTransformJobs() async throws -> [TransformJob] {
        let rows = try await database.read { db in
            try Data.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT body FROM transform_job WHERE status IN ('InProgress', 'Stopping')
                        ORDER BY created_at, name
                        """))
        }
        return try rows.map(Self.decode)
    }

    public func requestTransformJobStop(named name: String, now: Timestamp) async throws -> TransformJob? {
        try await database.write { db in
            guard var job = try Self.transformJob(named: name, in: db) else { return nil }
            guard job.status == .inProgress else { return job }
            job.status = .stopping
            job.updatedAt = now
            try Self.update(job, in: db)
            return job
        }
    }

    public func finishTransformJob(
        named name: String, status: TransformJobStatus, failureReason: String?, now: Timestamp
    ) async throws -> Bool {
        guard status.isFinal else {
            throw ServalError.invalid("status", "is \(status.rawValue); a job ends Completed, Failed or Stopped.")
        }
        return try await database.write { db in
            guard var job = try Self.transformJob(named: name, in: db), !job.status.isFinal else { return false }
            job.status = status
            job.failureReason = failureReason
            job.endedAt = now
            job.updatedAt = now
            try Self.update(job, in: db)
            try db.cachedStatement(sql: "DELETE FROM transform_unit WHERE job = ?").execute(arguments: [name])
            return true
        }
    }

    // MARK: Plan

    public func recordTransformPlan(
        job name: String, objects: [TransformObject], units: [TransformUnit], progress: TransformProgress,
        now: Timestamp
    ) async throws -> Bool {
        try await database.write { db in
            guard var job = try Self.transformJob(named: name, in: db), job.status == .inProgress, !job.planned else {
                return false
            }
            let insertObject = try db.cachedStatement(
                sql: """
                    INSERT INTO transform_object (job, object_index, object_key, output_key, size_bytes, unit_count, assembled)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """)
            for object in objects {
                try insertObject.execute(arguments: [
                    name, object.index, object.key, object.outputKey, object.sizeBytes, object.unitCount,
                    object.assembled,
                ])
            }
            let insertUnit = try db.cachedStatement(
                sql: """
                    INSERT INTO transform_unit (job, object_index, part, start_offset, end_offset, records, first_record, status, attempts)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for unit in units {
                try insertUnit.execute(arguments: [
                    name, unit.objectIndex, unit.part, unit.start, unit.end, unit.records, unit.firstRecord,
                    unit.status.rawValue, unit.attempts,
                ])
            }
            job.planned = true
            job.progress = progress
            job.startedAt = now
            job.updatedAt = now
            try Self.update(job, in: db)
            return true
        }
    }

    public func transformObjects(job: String) async throws -> [TransformObject] {
        try await database.read { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT object_index, object_key, output_key, size_bytes, unit_count, assembled
                        FROM transform_object WHERE job = ? ORDER BY object_index
                        """),
                arguments: [job]
            ).map { row in
                TransformObject(
                    index: row["object_index"], key: row["object_key"], outputKey: row["output_key"],
                    sizeBytes: row["size_bytes"], unitCount: row["unit_count"], assembled: row["assembled"])
            }
        }
    }

    public func transformUnits(job: String, objectIndex: Int) async throws -> [TransformUnit] {
        try await database.read { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT \(TransformUnit.columns) FROM transform_unit WHERE job = ? AND object_index = ? ORDER BY part
                        """),
                arguments: [job, objectIndex]
            ).map(TransformUnit.init(row:))
        }
    }

    public func markTransformObjectAssembled(job name: String, objectIndex: Int, now: Timestamp) async throws -> Bool {
        try await database.write { db in
            try db.cachedStatement(
                sql: "UPDATE transform_object SET assembled = 1 WHERE job = ? AND object_index = ? AND assembled = 0"
            ).execute(arguments: [name, objectIndex])
            guard db.changesCount > 0, var job = try Self.transformJob(named: name, in: db) else { return false }
            job.progress.objectsDone += 1
            job.updatedAt = now
            try Self.update(job, in: db)
            return true
        }
    }

    // MARK: Helpers

    /// The job named `name`, read in `db`'s transaction.
    fileprivate static func transformJob(named name: String, in db: Database) throws -> TransformJob? {
        try Data.fetchOne(db.cachedStatement(sql: "SELECT body FROM transform_job WHERE name = ?"), arguments: [name])
            .map(decode)
    }

    /// Writes a job's JSON and the columns derived from it.
    fileprivate static func update(_ job: TransformJob, in db: Database) throws {
        try db.cachedStatement(sql: "UPDATE transform_job SET status = ?, body = ? WHERE name = ?")
            .execute(arguments: [job.status.rawValue, try encode(job), job.name])
    }
}

/// Transform units as the leased queue keeps them: partitioned by job, in (object index, part) order, without a
/// deadline; claimed only while their job is `InProgress`, and finished together with their job's progress.
extension TransformUnit: SQLiteLeasedWork {
    /// The columns ``init(row:)`` reads.
    static let columns = "object_index, part, start_offset, end_offset, records, first_record, status, attempts"

    static let leaseTable = LeaseTable(
        name: "transform_unit", partition: "job", key: ["object_index", "part"], order: "object_index, part",
        waiting: TransformUnitStatus.pending.rawValue, deadline: nil, columns: columns)

    static func keyValues(_ id: ID) -> StatementArguments { [id.objectIndex, id.part] }

    static func mayClaim(partition job: String, in db: Database) throws -> Bool {
        let status = try String.fetchOne(
            db.cachedStatement(sql: "SELECT status FROM transform_job WHERE name = ?"), arguments: [job])
        return status == TransformJobStatus.inProgress.rawValue
    }

    init(row: Row) throws {
        let status: String = row["status"]
        guard let unitStatus = TransformUnitStatus(rawValue: status) else {
            throw ServalError(.internalFailure, "A transform unit has the unknown status \"\(status)\".")
        }
        self.init(
            objectIndex: row["object_index"], part: row["part"], start: row["start_offset"], end: row["end_offset"],
            records: row["records"], firstRecord: row["first_record"], status: unitStatus, attempts: row["attempts"])
    }

    var statusValue: String { status.rawValue }

    mutating func claimed(now: Timestamp) {
        status = .inProgress
        attempts += 1
    }

    mutating func requeued(now: Timestamp, takingBackAttempt: Bool) {
        status = .pending
        if takingBackAttempt { attempts = max(0, attempts - 1) }
    }

    mutating func finished(with progress: TransformUnitProgress, now: Timestamp) {
        status = .done
    }

    func recordFinish(_ progress: TransformUnitProgress, partition name: String, now: Timestamp, in db: Database) throws {
        guard var job = try SQLiteMetadataStore.transformJob(named: name, in: db) else {
            // Units without their job cannot exist; if one did, this rolls its update back.
            throw ServalError(.internalFailure, "Transform job \"\(name)\" has units but no job row.")
        }
        job.progress.recordsDone += progress.recordsDone
        job.progress.recordsFailed += progress.recordsFailed
        job.progress.bytesDone += progress.bytes
        job.progress.unitsDone += 1
        job.updatedAt = now
        try SQLiteMetadataStore.update(job, in: db)
    }
}

/// Where a page of a transform job listing ended, for the next page to start after it.
///
/// Written `<sort>:<creation ms>:<name>` when sorted by creation time and `<sort>:<name>` when sorted by name, where
/// `<sort>` names the sort key and order (`cd`, `ca`, `nd`, `na`), so that a token is only taken by a listing in the
/// same order. Names never contain `:`.
private struct TransformJobPageToken {
    /// The last job's creation time in milliseconds, when sorted by creation time.
    var createdAt: Int64?
    /// The last job's name.
    var name: String
    /// Its text.
    var token: String

    /// The token after `job` in a listing with `filter`'s order.
    init(after job: TransformJob, for filter: TransformJobFilter) {
        name = job.name
        let sort = Self.sort(filter)
        if filter.sortBy == .creationTime {
            createdAt = job.createdAt.millisecondsSinceEpoch
            token = "\(sort):\(job.createdAt.millisecondsSinceEpoch):\(job.name)"
        } else {
            createdAt = nil
            token = "\(sort):\(job.name)"
        }
    }

    /// Parses a token for a listing with `filter`'s order.
    init(_ token: String, for filter: TransformJobFilter) throws {
        let invalid = ServalError.invalid(
            "nextToken",
            "is not a token that this listing returned with this sort order; list the first page without it.")
        let fields = token.split(
            separator: ":", maxSplits: filter.sortBy == .creationTime ? 2 : 1, omittingEmptySubsequences: false)
        guard fields.first.map(String.init) == Self.sort(filter), let last = fields.last, !last.isEmpty else {
            throw invalid
        }
        if filter.sortBy == .creationTime {
            guard fields.count == 3, let milliseconds = Int64(fields[1]), String(milliseconds) == fields[1] else {
                throw invalid
            }
            createdAt = milliseconds
        } else {
            guard fields.count == 2 else { throw invalid }
            createdAt = nil
        }
        name = String(last)
        self.token = token
    }

    /// The token's prefix for `filter`'s sort key and order.
    private static func sort(_ filter: TransformJobFilter) -> String {
        (filter.sortBy == .name ? "n" : "c") + (filter.sortOrder == .descending ? "d" : "a")
    }
}
