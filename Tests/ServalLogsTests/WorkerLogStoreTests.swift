import Foundation
import Logging
import ServalCore
import Synchronization
import Testing

@testable import ServalLogs

/// A clock the tests move.
final class TestClock: WallClock {
    private let time: Mutex<Int64>
    init(_ milliseconds: Int64 = 1_800_000_000_000) { time = Mutex(milliseconds) }
    func now() -> Timestamp { Timestamp(millisecondsSinceEpoch: time.withLock { $0 }) }
    func advance(milliseconds: Int64) { time.withLock { $0 += milliseconds } }
}

/// A store in a temporary folder, removed with the value.
final class Sandbox: Sendable {
    let folder: String
    let clock = TestClock()

    init() throws {
        folder = NSTemporaryDirectory() + "serval-logs-" + UUID().uuidString.lowercased().prefix(12)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    func store(_ settings: WorkerLogSettings = WorkerLogSettings()) throws -> WorkerLogStore {
        try WorkerLogStore(
            path: folder + "/logs.sqlite", settings: settings, clock: clock,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }
}

let group = WorkerLogDestination.endpointGroup("churn")

func stream(_ name: String, group: String = group) -> LogStreamID { LogStreamID(group: group, name: name) }

/// A time `milliseconds` after the test clock's start (times long past would be swept by retention).
func at(_ milliseconds: Int64) -> Timestamp { Timestamp(millisecondsSinceEpoch: 1_800_000_000_000 + milliseconds) }

/// Appends `count` lines "<prefix> <i>" one millisecond apart from `start`.
func write(_ store: WorkerLogStore, _ count: Int, to id: LogStreamID, prefix: String = "line", start: Int64 = 1000) {
    for index in 0..<count {
        store.append("\(prefix) \(index)", at: at(start + Int64(index)), to: id)
    }
}

@Suite("Worker log store")
struct WorkerLogStoreTests {
    @Test("GetLogEvents pages forward from the head and backward from the end; at the end the forward token stays the same")
    func getLogEventsPaging() async throws {
        let sandbox = try Sandbox()
        let store = try sandbox.store()
        let id = stream("AllTraffic/i-1")
        write(store, 25, to: id)
        try await store.flush()

        var query = LogEventsQuery(stream: id)
        query.startFromHead = true
        query.limit = 10
        var seen: [String] = []
        var pages = 0
        while true {
            let page = try await store.events(query)
            pages += 1
            seen += page.events.map(\.message)
            if page.events.isEmpty {
                #expect(page.nextForwardToken == query.nextToken, "at the end the token stays, so the SDK's loop ends")
                break
            }
            query.nextToken = page.nextForwardToken
            #expect(pages < 10)
        }
        #expect(seen == (0..<25).map { "line \($0)" })
        #expect(pages == 4)

        // Without a token and not from the head: the newest events, oldest first; the backward token reads older.
        var tail = LogEventsQuery(stream: id)
        tail.limit = 10
        let newest = try await store.events(tail)
        #expect(newest.events.map(\.message) == (15..<25).map { "line \($0)" })
        tail.nextToken = newest.nextBackwardToken
        let older = try await store.events(tail)
        #expect(older.events.map(\.message) == (5..<15).map { "line \($0)" })
        // The forward token of the newest page sees nothing until more is written, then exactly that.
        tail.nextToken = newest.nextForwardToken
        #expect(try await store.events(tail).events.isEmpty)
        store.append("later", at: at(5000), to: id)
        try await store.flush()
        #expect(try await store.events(tail).events.map(\.message) == ["later"])

        // Time bounds: startTime inclusive, endTime exclusive.
        var range = LogEventsQuery(stream: id)
        range.startFromHead = true
        range.startTime = at(1003)
        range.endTime = at(1006)
        #expect(try await store.events(range).events.map(\.message) == ["line 3", "line 4", "line 5"])
    }

    @Test("GetLogEvents refuses unknown groups, streams, bad tokens and limits")
    func getLogEventsErrors() async throws {
        let sandbox = try Sandbox()
        let store = try sandbox.store()
        write(store, 1, to: stream("AllTraffic/i-1"))
        try await store.flush()
        func code(_ query: LogEventsQuery) async -> (ServalError.Code?, String) {
            do {
                _ = try await store.events(query)
                return (nil, "")
            } catch let error as ServalError {
                return (error.code, error.message)
            } catch {
                return (.internalFailure, "\(error)")
            }
        }
        let missingGroup = await code(LogEventsQuery(stream: stream("x", group: "/aws/sagemaker/Endpoints/other")))
        #expect(missingGroup.0 == .notFound && missingGroup.1.contains("Log group"))
        let missingStream = await code(LogEventsQuery(stream: stream("AllTraffic/i-2")))
        #expect(missingStream.0 == .notFound && missingStream.1.contains("Log stream"))
        for token in ["x", "f/", "f/-1", "q/3", "f/99999999999999999999999"] {
            var query = LogEventsQuery(stream: stream("AllTraffic/i-1"))
            query.nextToken = token
            #expect(await code(query).0 == .validationError, "\(token)")
        }
        for limit in [0, 10_001] {
            var query = LogEventsQuery(stream: stream("AllTraffic/i-1"))
            query.limit = limit
            #expect(await code(query).0 == .validationError)
        }
    }

    @Test("DescribeLogStreams orders by name or last event, pages with a token that is absent on the last page")
    func describeLogStreams() async throws {
        let sandbox = try Sandbox()
        let store = try sandbox.store()
        // Last events: b at 3000, a at 2000, c at 1000.
        store.append("c", at: at(1000), to: stream("AllTraffic/c"))
        store.append("a", at: at(2000), to: stream("AllTraffic/a"))
        store.append("b", at: at(3000), to: stream("AllTraffic/b"))
        store.append("other", at: at(3000), to: stream("Shadow/z"))
        try await store.flush()

        func names(_ configure: (inout LogStreamQuery) -> Void) async throws -> (pages: [[String]], tokens: [String?]) {
            var query = LogStreamQuery(group: group)
            configure(&query)
            var pages: [[String]] = []
            var tokens: [String?] = []
            while true {
                let page = try await store.streams(query)
                pages.append(page.streams.map(\.id.name))
                tokens.append(page.nextToken)
                guard let token = page.nextToken, pages.count < 10 else { break }
                query.nextToken = token
            }
            return (pages, tokens)
        }
        // A full page with nothing after it carries no token (the SDK would otherwise loop forever).
        let exact = try await names { $0.namePrefix = "AllTraffic/"; $0.limit = 3 }
        #expect(exact.pages == [["AllTraffic/a", "AllTraffic/b", "AllTraffic/c"]])
        #expect(exact.tokens == [nil])
        let paged = try await names { $0.namePrefix = "AllTraffic/"; $0.limit = 2 }
        #expect(paged.pages == [["AllTraffic/a", "AllTraffic/b"], ["AllTraffic/c"]])
        let descending = try await names { $0.descending = true; $0.limit = 1 }
        #expect(descending.pages.flatMap { $0 } == ["Shadow/z", "AllTraffic/c", "AllTraffic/b", "AllTraffic/a"])
        let byTime = try await names { $0.orderBy = .lastEventTime; $0.limit = 2 }
        #expect(byTime.pages.flatMap { $0 } == ["AllTraffic/c", "AllTraffic/a", "AllTraffic/b", "Shadow/z"])
        let newestFirst = try await names { $0.orderBy = .lastEventTime; $0.descending = true; $0.limit = 3 }
        #expect(newestFirst.pages.flatMap { $0 } == ["Shadow/z", "AllTraffic/b", "AllTraffic/a", "AllTraffic/c"])

        let summary = try await store.streams(LogStreamQuery(group: group)).streams[0]
        #expect(summary.creationTime == at(2000) && summary.lastEventTime == at(2000))
        #expect(summary.storedBytes == Int64(1 + WorkerLogLimits.eventOverheadBytes))
        #expect(summary.lastIngestionTime == sandbox.clock.now())

        func error(_ configure: (inout LogStreamQuery) -> Void, group: String = group) async -> ServalError.Code? {
            var query = LogStreamQuery(group: group)
            configure(&query)
            do {
                _ = try await store.streams(query)
                return nil
            } catch {
                return (error as? ServalError)?.code
            }
        }
        #expect(await error({ _ in }, group: "/aws/sagemaker/Endpoints/none") == .notFound)
        #expect(await error { $0.orderBy = .lastEventTime; $0.namePrefix = "AllTraffic/" } == .validationError)
        #expect(await error { $0.limit = 51 } == .validationError)
        #expect(await error { $0.nextToken = "n/zz" } == .validationError)
        #expect(await error { $0.orderBy = .lastEventTime; $0.nextToken = "n/61" } == .validationError)
    }

    @Test("a stream over its cap loses its oldest events down to three quarters of the cap")
    func streamCap() async throws {
        let sandbox = try Sandbox()
        let store = try sandbox.store(WorkerLogSettings(maxStreamBytes: 64 * 1024))
        let id = stream("AllTraffic/i-1")
        let filler = String(repeating: "x", count: 998)
        for index in 0..<200 {
            store.append("\(String(format: "%03d", index)) \(filler)", at: at(1000 + Int64(index)), to: id)
            if index % 50 == 49 { try await store.flush() }
        }
        try await store.flush()
        let summary = try await store.streams(LogStreamQuery(group: group)).streams[0]
        #expect(summary.storedBytes <= 64 * 1024)
        var query = LogEventsQuery(stream: id)
        query.startFromHead = true
        let kept = try await store.events(query).events
        #expect(Int64(kept.count * (1002 + WorkerLogLimits.eventOverheadBytes)) == summary.storedBytes)
        #expect(kept.last?.message.hasPrefix("199 ") == true, "the newest line stays")
        #expect(kept.first!.message > "100", "the oldest went: \(kept.first!.message.prefix(3))")
        #expect(summary.firstEventTime == kept.first!.timestamp)
        let numbers = kept.map { Int($0.message.prefix(3))! }
        #expect(numbers == Array(numbers.first!...199), "what is kept is the newest run, in order")
    }

    @Test("past the total cap whole streams go, the one whose last event is oldest first")
    func totalCap() async throws {
        let sandbox = try Sandbox()
        let store = try sandbox.store(WorkerLogSettings(maxStreamBytes: 64 * 1024, maxTotalBytes: 100 * 1024))
        let line = String(repeating: "y", count: 1000)
        for (index, name) in ["old", "middle", "new"].enumerated() {
            for row in 0..<40 { store.append(line, at: at(1000 * Int64(index + 1) + Int64(row)), to: stream("AllTraffic/\(name)")) }
            try await store.flush()
        }
        let names = try await store.streams(LogStreamQuery(group: group)).streams.map(\.id.name)
        #expect(names == ["AllTraffic/middle", "AllTraffic/new"])
        // The stream that was deleted starts again with its next line.
        store.append("again", at: at(9000), to: stream("AllTraffic/old"))
        try await store.flush()
        let streams = try await store.streams(LogStreamQuery(group: group)).streams
        #expect(streams.reduce(0) { $0 + $1.storedBytes } <= 100 * 1024)
        #expect(streams.map(\.id.name).contains("AllTraffic/old"))
    }

    @Test("streams whose last event is older than the retention are deleted at the first write and hourly")
    func retention() async throws {
        let sandbox = try Sandbox()
        let now = sandbox.clock.now().millisecondsSinceEpoch
        let store = try sandbox.store(WorkerLogSettings(retentionDays: 2))
        store.append("ancient", at: Timestamp(millisecondsSinceEpoch: now - 3 * 86_400_000), to: stream("AllTraffic/old"))
        store.append("recent", at: Timestamp(millisecondsSinceEpoch: now - 86_400_000), to: stream("AllTraffic/new"))
        try await store.flush()
        // The first write swept before writing, so both are there; the next sweep is an hour later.
        #expect(try await store.streams(LogStreamQuery(group: group)).streams.count == 2)
        sandbox.clock.advance(milliseconds: 3_600_000)
        try await store.flush()
        #expect(try await store.streams(LogStreamQuery(group: group)).streams.map(\.id.name) == ["AllTraffic/new"])
        // A new store (Serval's restart) sweeps at its first write.
        sandbox.clock.advance(milliseconds: 2 * 86_400_000)
        let reopened = try sandbox.store(WorkerLogSettings(retentionDays: 2))
        try await reopened.flush()
        #expect(try await reopened.hasStreams(group: group) == false)
    }

    @Test("when the writer falls behind, lines are dropped and counted, never blocking, and the stream says how many")
    func dropping() async throws {
        let sandbox = try Sandbox()
        let store = try sandbox.store(WorkerLogSettings(maxPendingBytes: 64 * 1024))
        let id = stream("AllTraffic/i-1")
        let line = String(repeating: "z", count: 1000 - WorkerLogLimits.eventOverheadBytes)
        let started = ContinuousClock.now
        for _ in 0..<100 { store.append(line, at: at(1000), to: id) }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(store.droppedLines == 100 - 65)
        try await store.flush()
        var query = LogEventsQuery(stream: id)
        query.startFromHead = true
        let events = try await store.events(query).events
        #expect(events.count == 66)
        #expect(events.last?.message == "[serval] 35 lines of this worker's output were not kept: the log writer fell behind.")
        // After a write there is room again.
        store.append("fits", at: at(2000), to: id)
        #expect(store.droppedLines == 35)
    }

    @Test("FilterLogEvents: term patterns, inclusive time bounds, stream selection and paging by time")
    func filter() async throws {
        let sandbox = try Sandbox()
        let store = try sandbox.store()
        store.append("INFO ready", at: at(1000), to: stream("AllTraffic/i-1"))
        store.append("ERROR disk full", at: at(1001), to: stream("AllTraffic/i-2"))
        store.append("WARN slow request", at: at(1002), to: stream("AllTraffic/i-1"))
        store.append("ERROR timeout: retry", at: at(1003), to: stream("AllTraffic/i-1"))
        store.append("error lower case", at: at(1004), to: stream("Shadow/i-3"))
        store.append("DEBUG ERROR noise", at: at(1005), to: stream("AllTraffic/i-2"))
        // Written later but printed earlier: filter orders by time.
        store.append("INFO early", at: at(999), to: stream("AllTraffic/i-2"))
        try await store.flush()

        func messages(_ pattern: String, _ configure: (inout LogFilterQuery) -> Void = { _ in }) async throws -> [String] {
            var query = LogFilterQuery(group: group)
            query.pattern = try LogFilterPattern(parsing: pattern)
            configure(&query)
            return try await store.filter(query).events.map(\.message)
        }
        #expect(try await messages("").first == "INFO early")
        #expect(try await messages("ERROR") == ["ERROR disk full", "ERROR timeout: retry", "DEBUG ERROR noise"])
        #expect(try await messages("ERROR -DEBUG") == ["ERROR disk full", "ERROR timeout: retry"])
        #expect(try await messages("?WARN ?lower") == ["WARN slow request", "error lower case"])
        #expect(try await messages("\"timeout: retry\"") == ["ERROR timeout: retry"])
        #expect(try await messages("ERROR ?disk ?noise") == ["ERROR disk full", "DEBUG ERROR noise"])
        #expect(try await messages("ERROR") { $0.startTime = at(1001); $0.endTime = at(1003) } == ["ERROR disk full", "ERROR timeout: retry"])
        #expect(try await messages("") { $0.streamNamePrefix = "Shadow/" } == ["error lower case"])
        #expect(try await messages("INFO") { $0.streamNames = ["AllTraffic/i-1", "missing"] } == ["INFO ready"])

        var query = LogFilterQuery(group: group)
        query.limit = 3
        var seen: [String] = []
        var pages = 0
        while true {
            let page = try await store.filter(query)
            pages += 1
            seen += page.events.map(\.message)
            #expect(page.searchedStreams == ["AllTraffic/i-1", "AllTraffic/i-2", "Shadow/i-3"])
            guard let token = page.nextToken, pages < 10 else { break }
            query.nextToken = token
        }
        #expect(pages == 3)
        #expect(seen.count == 7 && seen.first == "INFO early" && seen.last == "DEBUG ERROR noise")

        var both = LogFilterQuery(group: group)
        both.streamNames = ["a"]
        both.streamNamePrefix = "b"
        await #expect(throws: ServalError.self) { try await store.filter(both) }
        await #expect(throws: ServalError.self) { try await store.filter(LogFilterQuery(group: "/aws/sagemaker/TransformJobs")) }
    }

    @Test("the tail reads a group's streams in the order written; an empty page's token skips to what comes later")
    func tail() async throws {
        let sandbox = try Sandbox()
        let store = try sandbox.store()
        let jobs = WorkerLogDestination.transformJobsGroup
        store.append("job a 1", at: at(2000), to: stream("a/i-1-1", group: jobs))
        store.append("job ab 1", at: at(1000), to: stream("ab/i-2-1", group: jobs))
        store.append("job a 2", at: at(500), to: stream("a/i-3-1", group: jobs))
        try await store.flush()

        var query = LogTailQuery(group: jobs)
        query.streamNamePrefix = "a/"
        let first = try await store.tail(query)
        #expect(first.events.map(\.message) == ["job a 1", "job a 2"], "in the order written, only job a's streams")
        query.after = first.nextToken
        let empty = try await store.tail(query)
        #expect(empty.events.isEmpty)
        store.append("job ab 2", at: at(3000), to: stream("ab/i-2-1", group: jobs))
        store.append("job a 3", at: at(3000), to: stream("a/i-1-1", group: jobs))
        try await store.flush()
        query.after = empty.nextToken
        #expect(try await store.tail(query).events.map(\.message) == ["job a 3"])

        var since = LogTailQuery(group: jobs)
        since.since = at(1000)
        #expect(try await store.tail(since).events.map(\.message) == ["job a 1", "job ab 1", "job ab 2", "job a 3"])
        var bad = LogTailQuery(group: jobs)
        bad.after = "f/1"
        await #expect(throws: ServalError.self) { try await store.tail(bad) }
        #expect(try await store.hasStreams(group: jobs, prefix: "ab/"))
        #expect(try await store.hasStreams(group: jobs, prefix: "b/") == false)
    }

    @Test("events survive a new store on the same file; long messages are cut on a character boundary")
    func persistenceAndBounds() async throws {
        let sandbox = try Sandbox()
        let id = stream("AllTraffic/i-1")
        do {
            let store = try sandbox.store()
            store.append("before restart", at: at(1000), to: id)
            store.append(String(repeating: "é", count: WorkerLogLimits.maxMessageBytes), at: at(1001), to: id)
            try await store.flush()
        }
        let store = try sandbox.store()
        store.append("after restart", at: at(2000), to: id)
        try await store.flush()
        var query = LogEventsQuery(stream: id)
        query.startFromHead = true
        let events = try await store.events(query).events
        #expect(events.map { String($0.message.prefix(14)) } == ["before restart", String(repeating: "é", count: 14), "after restart"])
        try #require(events.count == 3)
        #expect(events[1].message.utf8.count == WorkerLogLimits.maxMessageBytes)
        #expect(events[1].message.allSatisfy { $0 == "é" })
    }

    @Test("filter patterns: what parses, and what is refused")
    func patterns() throws {
        let pattern = try LogFilterPattern(parsing: #"  ERROR ?"two words" -DEBUG "a \"quoted\" one" ?x  "#)
        #expect(pattern.required == ["ERROR", #"a "quoted" one"#])
        #expect(pattern.anyOf == ["two words", "x"])
        #expect(pattern.excluded == ["DEBUG"])
        #expect(try LogFilterPattern(parsing: "   ").matchesEverything)
        for refused in [#"{ $.level = "error" }"#, "[ip, user]", "%ERR.*%", #""unclosed"#, String(repeating: "a", count: 1025)] {
            #expect(throws: ServalError.self, "\(refused.prefix(20))") { try LogFilterPattern(parsing: refused) }
        }
    }

    @Test("settings that do not fit together are refused")
    func settings() {
        #expect(throws: ServalError.self) { try WorkerLogSettings(maxStreamBytes: 1000).validate() }
        #expect(throws: ServalError.self) { try WorkerLogSettings(maxStreamBytes: 1 << 20, maxTotalBytes: 1 << 19).validate() }
        #expect(throws: ServalError.self) { try WorkerLogSettings(retentionDays: 0).validate() }
        #expect(throws: Never.self) { try WorkerLogSettings().validate() }
    }
}
