import GRDB
import ServalCore

/// Where one kind of leased work lives in SQLite, and the SQL that ``SQLiteLeasedQueue`` runs on it.
///
/// Every such table has the columns `status` (the waiting value, `InProgress` while leased, and the kind's finished
/// values), `attempts`, `lease_owner` and `lease_until` (milliseconds), beside the kind's own. Status values are
/// written into the SQL as literals, so that SQLite uses partial indexes on them (`WHERE status = 'Pending'`).
struct LeaseTable: Sendable {
    /// The status of a leased item.
    static let leased = "InProgress"

    /// Selects the waiting items of a partition in queue order: arguments partition, limit.
    let claim: String
    /// Selects the overdue waiting items of a partition in queue order: arguments partition, now, limit; `nil` when
    /// the work has no deadline.
    let claimOverdue: String?
    /// Selects an item if an owner leases it: arguments partition, key…, owner.
    let leased: String
    /// Selects the leases that ended, with their partition as `lease_partition`: argument now.
    let expired: String
    /// Writes an item's status, attempts, lease and mirrored columns: arguments status, attempts, owner, until,
    /// mirrored…, partition, key….
    let write: String
    /// Extends an owner's lease: arguments until, partition, key…, owner.
    let renew: String

    /// Describes a table.
    ///
    /// - Parameters:
    ///   - name: the table.
    ///   - partition: the column naming an item's partition (an endpoint, a job).
    ///   - key: the columns naming an item within its partition.
    ///   - order: the `ORDER BY` of claims.
    ///   - waiting: the status of an item waiting to be claimed.
    ///   - deadline: the column that overdue-only claims compare with `now`, if the work has a start deadline.
    ///   - columns: what ``SQLiteLeasedWork/init(row:)`` reads.
    ///   - mirrored: columns rewritten from the item on every change (``SQLiteLeasedWork/mirroredValues()``).
    init(
        name: String, partition: String, key: [String], order: String, waiting: String, deadline: String?,
        columns: String, mirrored: [String] = []
    ) {
        let item = ([partition] + key).map { "\($0) = ?" }.joined(separator: " AND ")
        let isLeased = "status = '\(Self.leased)' AND lease_owner = ?"
        claim = """
            SELECT \(columns) FROM \(name) WHERE \(partition) = ? AND status = '\(waiting)' ORDER BY \(order) LIMIT ?
            """
        claimOverdue = deadline.map { deadline in
            """
            SELECT \(columns) FROM \(name) WHERE \(partition) = ? AND status = '\(waiting)' AND \(deadline) < ?
            ORDER BY \(order) LIMIT ?
            """
        }
        leased = "SELECT \(columns) FROM \(name) WHERE \(item) AND \(isLeased)"
        expired = """
            SELECT \(partition) AS lease_partition, \(columns) FROM \(name)
            WHERE status = '\(Self.leased)' AND lease_until < ?
            """
        let setMirrored = mirrored.map { ", \($0) = ?" }.joined()
        write = """
            UPDATE \(name) SET status = ?, attempts = ?, lease_owner = ?, lease_until = ?\(setMirrored) WHERE \(item)
            """
        renew = "UPDATE \(name) SET lease_until = ? WHERE \(item) AND \(isLeased)"
    }
}

/// One kind of leased work as SQLite keeps it: its ``LeaseTable``, how an item is read from a row, and what each
/// step of its lease does to the item and beside it.
protocol SQLiteLeasedWork: LeasedWork {
    /// The table and its SQL.
    static var leaseTable: LeaseTable { get }
    /// The values of the table's key columns for `id`.
    static func keyValues(_ id: ID) -> StatementArguments
    /// Whether the partition's work may start now, read in the claim's transaction.
    static func mayClaim(partition: String, in db: Database) throws -> Bool

    /// Reads an item from a row of the table's columns.
    init(row: Row) throws
    /// The value of the `status` column.
    var statusValue: String { get }
    /// The values of the table's mirrored columns.
    func mirroredValues() throws -> StatementArguments

    /// The item as a claim at `now` leaves it: leased, one attempt more.
    mutating func claimed(now: Timestamp)
    /// The item back in the queue at `now`, its last attempt taken back or not.
    mutating func requeued(now: Timestamp, takingBackAttempt: Bool)
    /// The item as finishing with `completion` at `now` leaves it.
    mutating func finished(with completion: Completion, now: Timestamp)
    /// Records what finishing says beyond the item's row, in the finish's transaction; throwing rolls it back.
    func recordFinish(_ completion: Completion, partition: String, now: Timestamp, in db: Database) throws
}

extension SQLiteLeasedWork {
    static func mayClaim(partition: String, in db: Database) throws -> Bool { true }
    func mirroredValues() throws -> StatementArguments { [] }
}

/// The leased queue of one kind of work in SQLite: the lease steps written once, the kind's own effects left to
/// ``SQLiteLeasedWork``.
///
/// SQLite serializes writers (GRDB starts write transactions `IMMEDIATE`, across connections and processes), so a
/// claim's select and updates see no other claim in between. The PostgreSQL store selects with
/// `FOR UPDATE SKIP LOCKED` instead, so that concurrent claimers skip each other's rows rather than wait.
struct SQLiteLeasedQueue<Work: SQLiteLeasedWork>: LeasedQueue {
    let database: DatabasePool

    func claim(
        in partition: String, owner: String, limit: Int, now: Timestamp, leaseUntil: Timestamp, overdueOnly: Bool
    ) async throws -> [Work] {
        guard limit > 0 else { return [] }
        let table = Work.leaseTable
        let select: String
        let arguments: StatementArguments
        if overdueOnly {
            guard let claimOverdue = table.claimOverdue else { return [] }
            (select, arguments) = (claimOverdue, [partition, now.millisecondsSinceEpoch, limit])
        } else {
            (select, arguments) = (table.claim, [partition, limit])
        }
        return try await database.write { db in
            guard try Work.mayClaim(partition: partition, in: db) else { return [] }
            return try Row.fetchAll(db.cachedStatement(sql: select), arguments: arguments).map { row in
                var item = try Work(row: row)
                item.claimed(now: now)
                try Self.write(item, partition: partition, owner: owner, until: leaseUntil, in: db)
                return item
            }
        }
    }

    func renew(in partition: String, ids: [Work.ID], owner: String, until: Timestamp) async throws -> Set<Work.ID> {
        guard !ids.isEmpty else { return [] }
        return try await database.write { db in
            let renew = try db.cachedStatement(sql: Work.leaseTable.renew)
            var lost = Set<Work.ID>()
            for id in ids {
                try renew.execute(
                    arguments: [until.millisecondsSinceEpoch, partition] + Work.keyValues(id) + [owner])
                if db.changesCount == 0 { lost.insert(id) }
            }
            return lost
        }
    }

    func release(
        in partition: String, id: Work.ID, owner: String, now: Timestamp, countAttempt: Bool
    ) async throws -> Bool {
        try await database.write { db in
            guard var item = try Self.leased(in: partition, id: id, owner: owner, in: db) else { return false }
            item.requeued(now: now, takingBackAttempt: !countAttempt)
            try Self.write(item, partition: partition, owner: nil, until: nil, in: db)
            return true
        }
    }

    func finish(
        in partition: String, id: Work.ID, owner: String, completion: Work.Completion, now: Timestamp
    ) async throws -> Bool {
        try await database.write { db in
            guard var item = try Self.leased(in: partition, id: id, owner: owner, in: db) else { return false }
            item.finished(with: completion, now: now)
            try Self.write(item, partition: partition, owner: nil, until: nil, in: db)
            try item.recordFinish(completion, partition: partition, now: now, in: db)
            return true
        }
    }

    func rescueExpired(now: Timestamp) async throws -> Int {
        try await database.write { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: Work.leaseTable.expired), arguments: [now.millisecondsSinceEpoch])
            for row in rows {
                var item = try Work(row: row)
                item.requeued(now: now, takingBackAttempt: false)
                try Self.write(item, partition: row["lease_partition"], owner: nil, until: nil, in: db)
            }
            return rows.count
        }
    }

    // MARK: Helpers

    /// The item of `partition` named `id`, if `owner` leases it.
    private static func leased(in partition: String, id: Work.ID, owner: String, in db: Database) throws -> Work? {
        try Row.fetchOne(
            db.cachedStatement(sql: Work.leaseTable.leased), arguments: [partition] + Work.keyValues(id) + [owner]
        ).map(Work.init(row:))
    }

    /// Writes an item's status, attempts and mirrored columns, and its lease (none when `owner` is `nil`).
    static func write(_ item: Work, partition: String, owner: String?, until: Timestamp?, in db: Database) throws {
        try db.cachedStatement(sql: Work.leaseTable.write).execute(
            arguments: [item.statusValue, item.attempts, owner, until?.millisecondsSinceEpoch]
                + item.mirroredValues() + [partition] + Work.keyValues(item.id))
    }
}
