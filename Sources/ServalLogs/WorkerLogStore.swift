import Foundation
import GRDB
public import Logging
public import ServalCore
public import ServiceLifecycle
import Synchronization

/// Model workers' output as CloudWatch-style log events, kept in their own SQLite database in the data folder
/// (`logs.sqlite`), so that it outlives the worker and Serval's restarts.
///
/// Writing never blocks a worker: ``append(_:at:to:)`` puts the line in a bounded queue in memory and the
/// store's ``run()`` writes what is queued in one transaction at a time. When the queue is full (the disk is slower
/// than the workers print), lines are dropped and counted, and the stream gets an event saying how many.
///
/// What is kept is bounded (``WorkerLogSettings``): each stream to a size, its oldest events deleted first; all
/// streams together to a size, the streams whose last event is oldest deleted whole first; and every stream to a
/// retention time. Deleting an endpoint or a transform job does not delete its logs, as in SageMaker: they age out.
public final class WorkerLogStore: WorkerLogSink, Service, Sendable {
    let database: DatabasePool
    private let settings: WorkerLogSettings
    private let clock: any WallClock
    private let logger: Logger
    private let queue = Mutex(Queue())
    private let writer = Mutex(WriterState())
    private let signals: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation

    /// Lines waiting to be written.
    private struct Queue {
        var events: [QueuedEvent] = []
        var bytes = 0
        /// Lines dropped per stream since the last write.
        var dropped: [LogStreamID: Int] = [:]
        /// Lines dropped since the store opened.
        var droppedTotal = 0
    }

    private struct QueuedEvent {
        var stream: LogStreamID
        var timestamp: Timestamp
        var message: String
    }

    /// What the writer knows between transactions; only touched inside write transactions.
    private struct WriterState {
        /// Row ids of streams, by id.
        var streams: [LogStreamID: Int64] = [:]
        /// What every stream holds together; `nil` until read from the database.
        var totalBytes: Int64?
        /// When retention last ran.
        var lastSweep: Timestamp?
    }

    /// How often retention runs.
    static let sweepInterval: Int64 = 3_600_000
    /// The most one page of events holds, in bytes counted as the caps count.
    static let maxPageBytes = 1 << 20

    /// Opens (creating if needed) the store's database at `path`.
    public init(path: String, settings: WorkerLogSettings = WorkerLogSettings(), clock: any WallClock, logger: Logger) throws {
        try settings.validate()
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        // Durable against a crash of Serval; a power loss may lose the last lines, which is fine for logs and
        // saves a sync per transaction. The WAL is cut back after checkpoints rather than kept at its largest.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = 4194304")
        }
        database = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(database)
        self.settings = settings
        self.clock = clock
        self.logger = logger
        (signals, signal) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE log_stream (
                        id INTEGER PRIMARY KEY,
                        log_group TEXT NOT NULL,
                        name TEXT NOT NULL,
                        created_ms INTEGER NOT NULL,
                        first_event_ms INTEGER NOT NULL,
                        last_event_ms INTEGER NOT NULL,
                        last_ingestion_ms INTEGER NOT NULL,
                        stored_bytes INTEGER NOT NULL,
                        UNIQUE (log_group, name));
                    CREATE INDEX log_stream_by_last_event ON log_stream(last_event_ms);
                    CREATE TABLE log_event (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        stream_id INTEGER NOT NULL REFERENCES log_stream(id) ON DELETE CASCADE,
                        timestamp_ms INTEGER NOT NULL,
                        ingestion_ms INTEGER NOT NULL,
                        message TEXT NOT NULL);
                    CREATE INDEX log_event_by_stream ON log_event(stream_id, id);
                    CREATE INDEX log_event_by_time ON log_event(stream_id, timestamp_ms, id);
                    """)
        }
        return migrator
    }

    // MARK: Writing

    public func append(_ message: String, at timestamp: Timestamp, to stream: LogStreamID) {
        let message = Self.bounded(message)
        let size = message.utf8.count + WorkerLogLimits.eventOverheadBytes
        let queued = queue.withLock { queue -> Bool in
            guard queue.bytes + size <= settings.maxPendingBytes else {
                queue.dropped[stream, default: 0] += 1
                queue.droppedTotal += 1
                return false
            }
            queue.events.append(QueuedEvent(stream: stream, timestamp: timestamp, message: message))
            queue.bytes += size
            return true
        }
        if queued { signal.yield() }
    }

    /// Lines dropped because the writer fell behind, since the store opened.
    public var droppedLines: Int { queue.withLock(\.droppedTotal) }

    /// Writes every queued line now, and applies retention when it is due. ``run()`` calls it as lines arrive.
    public func flush() async throws {
        do {
            try await database.write { db in try self.write(db) }
        } catch {
            // The transaction rolled back: what the writer remembers may name rows that are not there.
            writer.withLock { $0 = WriterState() }
            throw error
        }
    }

    /// Writes queued lines as they arrive until graceful shutdown, then writes what is left.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { [signal] in
                // Retention runs even while nothing is written.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(Self.sweepInterval))
                    signal.yield()
                }
            }
            await withGracefulShutdownHandler {
                for await _ in signals {
                    do {
                        try await flush()
                    } catch {
                        logger.error("Cannot write worker logs", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
            } onGracefulShutdown: {
                self.signal.finish()
            }
            group.cancelAll()
        }
        do {
            try await flush()
        } catch {
            logger.error("Cannot write the last worker logs", metadata: ["error": "\(error)"])
        }
    }

    /// One write transaction: the queued lines, markers for dropped ones, the caps, and retention when due.
    private func write(_ db: Database) throws {
        let (events, dropped) = queue.withLock { queue in
            defer {
                queue.events = []
                queue.bytes = 0
                queue.dropped = [:]
            }
            return (queue.events, queue.dropped)
        }
        let now = clock.now()
        var state = writer.withLock { $0 }
        if state.totalBytes == nil {
            state.totalBytes = try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(stored_bytes), 0) FROM log_stream") ?? 0
        }
        if state.lastSweep.map({ now.millisecondsSinceEpoch - $0.millisecondsSinceEpoch >= Self.sweepInterval }) ?? true {
            try sweep(db, now: now, state: &state)
        }
        var added: [Int64: (bytes: Int64, last: Int64)] = [:]
        let insert = try db.cachedStatement(
            sql: "INSERT INTO log_event (stream_id, timestamp_ms, ingestion_ms, message) VALUES (?, ?, ?, ?)")
        func add(_ message: String, at timestamp: Timestamp, to stream: LogStreamID) throws {
            let row = try streamRow(db, stream, createdAt: timestamp, now: now, state: &state)
            try insert.execute(arguments: [row, timestamp.millisecondsSinceEpoch, now.millisecondsSinceEpoch, message])
            let size = Int64(message.utf8.count + WorkerLogLimits.eventOverheadBytes)
            let previous = added[row] ?? (0, .min)
            added[row] = (previous.bytes + size, max(previous.last, timestamp.millisecondsSinceEpoch))
        }
        for event in events {
            try add(event.message, at: event.timestamp, to: event.stream)
        }
        for (stream, count) in dropped.sorted(by: { $0.key.description < $1.key.description }) {
            logger.warning("Dropped worker output: the log writer fell behind", metadata: ["stream": "\(stream)", "lines": "\(count)"])
            try add(
                "[serval] \(count) line\(count == 1 ? "" : "s") of this worker's output were not kept: the log writer fell behind.",
                at: now, to: stream)
        }
        for (row, change) in added {
            try db.execute(
                sql: """
                    UPDATE log_stream SET stored_bytes = stored_bytes + ?, last_event_ms = MAX(last_event_ms, ?),
                        last_ingestion_ms = ? WHERE id = ?
                    """,
                arguments: [change.bytes, change.last, now.millisecondsSinceEpoch, row])
            state.totalBytes! += change.bytes
            try truncate(db, stream: row, state: &state)
        }
        if state.totalBytes! > settings.maxTotalBytes { try evict(db, state: &state) }
        writer.withLock { $0 = state }
    }

    /// The row id of `stream`, creating its row with its first event.
    private func streamRow(
        _ db: Database, _ stream: LogStreamID, createdAt: Timestamp, now: Timestamp, state: inout WriterState
    ) throws -> Int64 {
        if let row = state.streams[stream] { return row }
        try db.execute(
            sql: """
                INSERT INTO log_stream (log_group, name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms, stored_bytes)
                VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (log_group, name) DO NOTHING
                """,
            arguments: [
                stream.group, stream.name, createdAt.millisecondsSinceEpoch, createdAt.millisecondsSinceEpoch,
                createdAt.millisecondsSinceEpoch, now.millisecondsSinceEpoch,
            ])
        let row = try Int64.fetchOne(
            db, sql: "SELECT id FROM log_stream WHERE log_group = ? AND name = ?", arguments: [stream.group, stream.name])!
        state.streams[stream] = row
        return row
    }

    /// Deletes a stream's oldest events when it holds more than its cap, down to three quarters of it.
    private func truncate(_ db: Database, stream row: Int64, state: inout WriterState) throws {
        let stored = try Int64.fetchOne(db, sql: "SELECT stored_bytes FROM log_stream WHERE id = ?", arguments: [row]) ?? 0
        guard stored > settings.maxStreamBytes else { return }
        let excess = stored - settings.maxStreamBytes * 3 / 4
        var freed: Int64 = 0
        var last: Int64 = 0
        do {
            let oldest = try Row.fetchCursor(
                db, sql: "SELECT id, length(CAST(message AS BLOB)) FROM log_event WHERE stream_id = ? ORDER BY id",
                arguments: [row])
            while freed < excess, let event = try oldest.next() {
                last = event[0]
                freed += (event[1] as Int64) + Int64(WorkerLogLimits.eventOverheadBytes)
            }
        }
        try db.execute(sql: "DELETE FROM log_event WHERE stream_id = ? AND id <= ?", arguments: [row, last])
        try db.execute(
            sql: """
                UPDATE log_stream SET stored_bytes = stored_bytes - ?,
                    first_event_ms = COALESCE((SELECT timestamp_ms FROM log_event WHERE stream_id = ? ORDER BY id LIMIT 1), first_event_ms)
                WHERE id = ?
                """,
            arguments: [freed, row, row])
        state.totalBytes! -= freed
    }

    /// Deletes whole streams, those whose last event is oldest first, until all hold nine tenths of the total cap.
    private func evict(_ db: Database, state: inout WriterState) throws {
        let target = settings.maxTotalBytes / 10 * 9
        var doomed: [(row: Int64, bytes: Int64)] = []
        var total = state.totalBytes!
        do {
            let oldest = try Row.fetchCursor(db, sql: "SELECT id, stored_bytes FROM log_stream ORDER BY last_event_ms, id")
            while total > target, let stream = try oldest.next() {
                doomed.append((stream[0], stream[1]))
                total -= stream[1]
            }
        }
        for stream in doomed {
            try db.execute(sql: "DELETE FROM log_stream WHERE id = ?", arguments: [stream.row])
        }
        logger.notice(
            "Deleted the oldest worker log streams: the logs reached their total cap",
            metadata: ["streams": "\(doomed.count)", "cap": "\(settings.maxTotalBytes)"])
        state.streams = state.streams.filter { entry in !doomed.contains { $0.row == entry.value } }
        state.totalBytes = total
    }

    /// Deletes streams whose last event is older than the retention time.
    private func sweep(_ db: Database, now: Timestamp, state: inout WriterState) throws {
        let cutoff = now.millisecondsSinceEpoch - Int64(settings.retentionDays) * 86_400_000
        try db.execute(sql: "DELETE FROM log_stream WHERE last_event_ms < ?", arguments: [cutoff])
        if db.changesCount > 0 {
            logger.info("Deleted worker log streams past their retention", metadata: ["streams": "\(db.changesCount)"])
            state.streams = [:]
            state.totalBytes = try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(stored_bytes), 0) FROM log_stream") ?? 0
        }
        state.lastSweep = now
    }

    /// `message` cut to ``WorkerLogLimits/maxMessageBytes`` on a character boundary.
    static func bounded(_ message: String) -> String {
        let bytes = message.utf8
        guard bytes.count > WorkerLogLimits.maxMessageBytes else { return message }
        var end = bytes.index(bytes.startIndex, offsetBy: WorkerLogLimits.maxMessageBytes)
        while end > bytes.startIndex, UTF8.isContinuation(bytes[end]) { end = bytes.index(before: end) }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}
