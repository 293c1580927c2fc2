import ServalScheduling
import Testing

extension BatchScheduler {
    /// Enqueues an item with a timeout of its own that the test expects the queue to take.
    mutating func accept(
        _ item: Item, bytes: Int = 1, batchClass: Int = 0, timeout: Duration, now: Instant,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> Step {
        try #require(
            enqueue(item, bytes: bytes, batchClass: batchClass, timeout: timeout, now: now), "the queue refused \(item)",
            sourceLocation: sourceLocation)
    }
}

@Suite("BatchScheduler: per-item timeouts")
struct BatchSchedulerTimeoutTests {
    @Test("a batch's deadline is the largest timeout of its items")
    func batchDeadlineIsLargestTimeout() throws {
        var scheduler = makeScheduler(maxBatchSize: 3, delayMilliseconds: 10, timeoutMilliseconds: 100)
        _ = try scheduler.accept(1, bytes: 1, timeout: .milliseconds(50), now: at(0))
        _ = try scheduler.accept(2, bytes: 1, timeout: .milliseconds(500), now: at(0))
        _ = try scheduler.accept(3, now: at(0))
        let step = scheduler.addReadyInstance(1, now: at(0))
        #expect(step.batches == [[1, 2, 3]])
        #expect(scheduler.expire(now: at(499)).hungInstances.isEmpty)
        #expect(scheduler.expire(now: at(500)).hungInstances.map(\.items) == [[1, 2, 3]])
    }

    @Test("a batch of items with short timeouts expires before the configured timeout")
    func shortTimeout() throws {
        var scheduler = makeScheduler(timeoutMilliseconds: 100)
        _ = scheduler.addReadyInstance(1, now: at(0))
        let step = try scheduler.accept(1, bytes: 1, timeout: .milliseconds(20), now: at(0))
        #expect(step.batches == [[1]])
        #expect(scheduler.expire(now: at(20)).hungInstances.map(\.items) == [[1]])
    }

    @Test("items without a timeout keep the configured one")
    func defaultTimeout() throws {
        var scheduler = makeScheduler(timeoutMilliseconds: 100)
        _ = scheduler.addReadyInstance(1, now: at(0))
        _ = try scheduler.accept(1, now: at(0))
        #expect(scheduler.expire(now: at(99)).hungInstances.isEmpty)
        #expect(scheduler.expire(now: at(100)).hungInstances.map(\.items) == [[1]])
    }

    @Test("a queued item expires by its own timeout, even behind one that waits longer")
    func staleBehindLongerTimeout() throws {
        var scheduler = makeScheduler(maxBatchSize: 1, maxQueueBytes: 100, timeoutMilliseconds: 100)
        _ = try scheduler.accept(1, bytes: 10, batchClass: -1, timeout: .seconds(3600), now: at(0))
        _ = try scheduler.accept(2, bytes: 10, now: at(10))
        _ = try scheduler.accept(3, bytes: 10, timeout: .milliseconds(500), now: at(20))
        _ = try scheduler.accept(4, bytes: 10, now: at(30))
        #expect(scheduler.expire(now: at(109)).staleItems.isEmpty)
        #expect(scheduler.expire(now: at(130)).staleItems == [2, 4])
        #expect(scheduler.queueDepth == 2)
        #expect(scheduler.expire(now: at(520)).staleItems == [3])
        // The long-lived item is still first in line, and the bytes of the others are released.
        _ = try scheduler.accept(5, bytes: 90, now: at(521))
        #expect(scheduler.addReadyInstance(1, now: at(522)).batches == [[1]])
    }

    @Test("an item that fills a batch class of its own goes out at once, alone")
    func loneItemGoesAtOnce() throws {
        var scheduler = makeScheduler(maxBatchSize: 8, delayMilliseconds: 1_000)
        _ = scheduler.addReadyInstance(1, now: at(0))
        _ = scheduler.addReadyInstance(2, now: at(0))
        _ = try scheduler.accept(1, now: at(0))
        // Its class closes the run of item 1, which leaves without waiting for the delay.
        let step = try scheduler.accept(2, size: 8, batchClass: -7, now: at(1))
        #expect(step.batches == [[1], [2]])
    }
}
