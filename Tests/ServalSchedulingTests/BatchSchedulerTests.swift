import ServalScheduling
import Testing

/// The scheduler under test carries plain integers as items.
typealias Scheduler = BatchScheduler<Int>

/// The start of every test's timeline. The scheduler never reads the clock, so offsets from one instant are
/// as deterministic as a fake clock.
let t0 = ContinuousClock.now

/// The instant `milliseconds` after ``t0``.
func at(_ milliseconds: Int) -> ContinuousClock.Instant {
    t0 + .milliseconds(milliseconds)
}

/// A scheduler with generous limits unless a test narrows them.
func makeScheduler(
    maxBatchSize: Int = 1,
    delayMilliseconds: Int = 0,
    maxQueueSize: Int = 100,
    maxQueueBytes: Int = 1_000_000,
    maxBatchBytes: Int = 1_000_000,
    timeoutMilliseconds: Int = 1_000
) -> Scheduler {
    Scheduler(
        configuration: .init(
            maxBatchSize: maxBatchSize,
            maxQueueDelay: .milliseconds(delayMilliseconds),
            maxQueueSize: maxQueueSize,
            maxQueueBytes: maxQueueBytes,
            maxBatchBytes: maxBatchBytes,
            invocationTimeout: .milliseconds(timeoutMilliseconds)))
}

extension BatchScheduler.Step {
    /// The items of each dispatched batch, in dispatch order.
    var batches: [[Item]] { dispatches.map(\.items) }
    /// The instance of each dispatched batch, in dispatch order.
    var instances: [Int] { dispatches.map(\.instance) }
}

extension BatchScheduler {
    /// Enqueues an item that the test expects the queue to take.
    mutating func accept(
        _ item: Item, bytes: Int = 1, size: Int = 1, batchClass: Int = 0, now: Instant,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> Step {
        try #require(
            enqueue(item, bytes: bytes, size: size, batchClass: batchClass, now: now), "the queue refused \(item)",
            sourceLocation: sourceLocation)
    }

    /// Adds an instance and marks it ready at `now`.
    mutating func addReadyInstance(_ id: InstanceID, now: Instant) -> Step {
        addInstance(id)
        return instanceReady(id, now: now)
    }
}

@Suite("BatchScheduler: batching")
struct BatchSchedulerBatchingTests {
    @Test("batching off dispatches each item at once to an idle instance")
    func batchingOff() throws {
        var scheduler = makeScheduler(maxBatchSize: 1)
        let ready = scheduler.addReadyInstance(1, now: at(0))
        #expect(ready.dispatches.isEmpty)
        #expect(ready.wakeUp == nil)

        let first = try scheduler.accept(10, now: at(1))
        #expect(first.batches == [[10]])
        #expect(first.instances == [1])
        #expect(first.wakeUp == nil)

        // The only instance is busy: the item waits, ready, with no deadline to wake up for.
        let second = try scheduler.accept(11, now: at(2))
        #expect(second.dispatches.isEmpty)
        #expect(second.wakeUp == nil)
        #expect(scheduler.queueDepth == 1)
        #expect(scheduler.inFlightItemCount == 1)

        let done = scheduler.batchCompleted(instance: 1, batchID: first.dispatches[0].batchID, now: at(3))
        #expect(done.items == [10])
        #expect(done.next.batches == [[11]])
        #expect(done.next.instances == [1])
        #expect(scheduler.queueDepth == 0)
    }

    @Test("items wait and go as one batch when maxBatchSize is reached")
    func dispatchWhenFull() throws {
        var scheduler = makeScheduler(maxBatchSize: 3, delayMilliseconds: 10)
        _ = scheduler.addReadyInstance(1, now: at(0))

        let first = try scheduler.accept(1, now: at(0))
        #expect(first.dispatches.isEmpty)
        #expect(first.wakeUp == at(10))

        // The deadline stays the oldest item's.
        let second = try scheduler.accept(2, now: at(4))
        #expect(second.dispatches.isEmpty)
        #expect(second.wakeUp == at(10))

        let third = try scheduler.accept(3, now: at(6))
        #expect(third.batches == [[1, 2, 3]])
        #expect(third.wakeUp == nil)
        #expect(scheduler.queueDepth == 0)
        #expect(scheduler.inFlightItemCount == 3)
    }

    @Test("a partial batch goes at the wake-up after maxQueueDelay, not before")
    func dispatchAtDeadline() throws {
        var scheduler = makeScheduler(maxBatchSize: 4, delayMilliseconds: 10)
        _ = scheduler.addReadyInstance(1, now: at(0))
        _ = try scheduler.accept(1, now: at(0))
        _ = try scheduler.accept(2, now: at(3))

        let early = scheduler.wakeUp(now: at(9))
        #expect(early.dispatches.isEmpty)
        #expect(early.wakeUp == at(10))

        let onTime = scheduler.wakeUp(now: at(10))
        #expect(onTime.batches == [[1, 2]])
        #expect(onTime.wakeUp == nil)
    }

    @Test("the wake-up follows the oldest item left after a dispatch")
    func wakeUpFollowsNextOldest() throws {
        var scheduler = makeScheduler(maxBatchSize: 2, delayMilliseconds: 10)
        _ = scheduler.addReadyInstance(1, now: at(0))
        _ = scheduler.addReadyInstance(2, now: at(0))
        _ = try scheduler.accept(1, now: at(0))
        #expect(try scheduler.accept(2, now: at(1)).batches == [[1, 2]])
        let third = try scheduler.accept(3, now: at(5))
        #expect(third.dispatches.isEmpty)
        #expect(third.wakeUp == at(15))
    }

    @Test("maxQueueDelay 0 dispatches a lone item at once")
    func zeroDelay() throws {
        var scheduler = makeScheduler(maxBatchSize: 8, delayMilliseconds: 0)
        _ = scheduler.addReadyInstance(1, now: at(0))
        let step = try scheduler.accept(1, now: at(0))
        #expect(step.batches == [[1]])
        #expect(step.wakeUp == nil)
    }

    @Test("a ready batch without an idle instance asks for no wake-up, so no timer spins on a past deadline")
    func noWakeUpForReadyBatch() throws {
        var scheduler = makeScheduler(maxBatchSize: 4, delayMilliseconds: 10)
        let first = try scheduler.accept(1, now: at(0))
        #expect(first.wakeUp == at(10))

        // The deadline passes with no instance: the batch is ready, and waits for one without a timer.
        let late = scheduler.wakeUp(now: at(10))
        #expect(late.dispatches.isEmpty)
        #expect(late.wakeUp == nil)
        let more = try scheduler.accept(2, now: at(12))
        #expect(more.dispatches.isEmpty)
        #expect(more.wakeUp == nil)
        let again = scheduler.wakeUp(now: at(20))
        #expect(again.wakeUp == nil)

        let ready = scheduler.addReadyInstance(1, now: at(21))
        #expect(ready.batches == [[1, 2]])
        #expect(ready.wakeUp == nil)
    }

    @Test("a wake-up, when asked for, always lies in the future")
    func wakeUpInFuture() throws {
        var scheduler = makeScheduler(maxBatchSize: 3, delayMilliseconds: 5)
        _ = scheduler.addReadyInstance(1, now: at(0))
        for (index, time) in [0, 1, 2, 4, 7, 8, 9, 13, 20].enumerated() {
            let step = try scheduler.accept(index, now: at(time))
            if let wakeUp = step.wakeUp { #expect(wakeUp > at(time)) }
            for dispatch in step.dispatches {
                _ = scheduler.batchCompleted(instance: dispatch.instance, batchID: dispatch.batchID, now: at(time))
            }
        }
    }

    @Test("no batch goes out without a ready instance")
    func noDispatchWithoutReadyInstance() throws {
        var scheduler = makeScheduler(maxBatchSize: 2, delayMilliseconds: 10)
        scheduler.addInstance(1)  // starting, not ready
        _ = try scheduler.accept(1, now: at(0))
        let full = try scheduler.accept(2, now: at(1))
        #expect(full.dispatches.isEmpty)
        #expect(scheduler.wakeUp(now: at(50)).dispatches.isEmpty)
        #expect(scheduler.readyInstanceCount == 0)

        let ready = scheduler.instanceReady(1, now: at(51))
        #expect(ready.batches == [[1, 2]])
        #expect(ready.instances == [1])
        #expect(scheduler.readyInstanceCount == 1)
    }

    @Test("instanceReady of an unknown instance does nothing")
    func readyUnknownInstance() throws {
        var scheduler = makeScheduler()
        _ = try scheduler.accept(1, now: at(0))
        let step = scheduler.instanceReady(7, now: at(1))
        #expect(step.dispatches.isEmpty)
        #expect(scheduler.readyInstanceCount == 0)
        #expect(scheduler.queueDepth == 1)
    }

    @Test("one event can dispatch several batches to several idle instances")
    func severalDispatchesInOneStep() throws {
        var scheduler = makeScheduler(maxBatchSize: 4, delayMilliseconds: 10, maxBatchBytes: 100)
        _ = scheduler.addReadyInstance(1, now: at(0))
        _ = scheduler.addReadyInstance(2, now: at(0))
        _ = try scheduler.accept(1, bytes: 60, now: at(0))
        _ = try scheduler.accept(2, bytes: 60, now: at(0))
        let step = scheduler.wakeUp(now: at(10))
        #expect(step.batches == [[1], [2]])
        #expect(step.instances == [1, 2])
        #expect(Set(step.dispatches.map(\.batchID)).count == 2)
    }
}

@Suite("BatchScheduler: completion and routing")
struct BatchSchedulerRoutingTests {
    @Test("batchCompleted returns the items in order and dispatches the next batch")
    func completionDispatchesNext() throws {
        var scheduler = makeScheduler(maxBatchSize: 2, delayMilliseconds: 10)
        _ = scheduler.addReadyInstance(1, now: at(0))
        _ = try scheduler.accept(1, now: at(0))
        let firstBatch = try #require(try scheduler.accept(2, now: at(0)).dispatches.first)
        for item in 3...5 { _ = try scheduler.accept(item, now: at(1)) }
        #expect(scheduler.queueDepth == 3)

        let done = scheduler.batchCompleted(instance: 1, batchID: firstBatch.batchID, now: at(2))
        #expect(done.items == [1, 2])
        #expect(done.next.batches == [[3, 4]])
        #expect(done.next.instances == [1])
        #expect(done.next.dispatches[0].batchID != firstBatch.batchID)
        // Item 5 is alone and not due yet.
        #expect(done.next.wakeUp == at(11))
    }

    @Test("unknown or stale batches complete with nil items")
    func staleCompletion() throws {
        var scheduler = makeScheduler(timeoutMilliseconds: 100)
        _ = scheduler.addReadyInstance(1, now: at(0))
        _ = scheduler.addReadyInstance(2, now: at(0))
        let batch = try #require(try scheduler.accept(1, now: at(0)).dispatches.first)
        #expect(batch.instance == 1)

        let wrongID = scheduler.batchCompleted(instance: 1, batchID: batch.batchID + 100, now: at(1))
        #expect(wrongID.items == nil)
        #expect(wrongID.next.dispatches.isEmpty)
        let wrongInstance = scheduler.batchCompleted(instance: 2, batchID: batch.batchID, now: at(1))
        #expect(wrongInstance.items == nil)
        let unknownInstance = scheduler.batchCompleted(instance: 99, batchID: batch.batchID, now: at(1))
        #expect(unknownInstance.items == nil)
        #expect(scheduler.inFlightItemCount == 1)

        #expect(scheduler.batchCompleted(instance: 1, batchID: batch.batchID, now: at(2)).items == [1])
        // Twice is stale.
        #expect(scheduler.batchCompleted(instance: 1, batchID: batch.batchID, now: at(3)).items == nil)

        // A batch whose instance timed out or was removed is stale too.
        let timedOut = try #require(try scheduler.accept(2, now: at(10)).dispatches.first)
        #expect(scheduler.expire(now: at(110)).hungInstances.map(\.instance) == [timedOut.instance])
        #expect(scheduler.batchCompleted(instance: timedOut.instance, batchID: timedOut.batchID, now: at(111)).items == nil)
        let removed = try #require(try scheduler.accept(3, now: at(120)).dispatches.first)
        #expect(scheduler.removeInstance(removed.instance) == [3])
        #expect(scheduler.batchCompleted(instance: removed.instance, batchID: removed.batchID, now: at(121)).items == nil)
    }

    @Test("batches go to the instance idle longest")
    func longestIdleFirst() throws {
        var scheduler = makeScheduler()
        _ = scheduler.addReadyInstance(3, now: at(0))
        _ = scheduler.addReadyInstance(1, now: at(2))
        _ = scheduler.addReadyInstance(2, now: at(1))
        #expect(try scheduler.accept(10, now: at(5)).instances == [3])
        #expect(try scheduler.accept(11, now: at(5)).instances == [2])
        #expect(try scheduler.accept(12, now: at(5)).instances == [1])
        // Every instance is busy: one batch in flight per instance.
        #expect(try scheduler.accept(13, now: at(5)).dispatches.isEmpty)
        #expect(scheduler.inFlightItemCount == 3)
        #expect(scheduler.queueDepth == 1)
    }

    @Test("an instance that finished earlier is preferred over one that finished later")
    func idleSinceCompletion() throws {
        var scheduler = makeScheduler()
        _ = scheduler.addReadyInstance(1, now: at(0))
        _ = scheduler.addReadyInstance(2, now: at(0))
        let one = try #require(try scheduler.accept(1, now: at(1)).dispatches.first)
        let two = try #require(try scheduler.accept(2, now: at(1)).dispatches.first)
        #expect([one.instance, two.instance] == [1, 2])
        _ = scheduler.batchCompleted(instance: 2, batchID: two.batchID, now: at(5))
        _ = scheduler.batchCompleted(instance: 1, batchID: one.batchID, now: at(6))
        #expect(try scheduler.accept(3, now: at(7)).instances == [2])
        #expect(try scheduler.accept(4, now: at(7)).instances == [1])
    }

    @Test("ties in idle time go to the lower instance id")
    func tiesByLowerID() throws {
        var scheduler = makeScheduler()
        for id in [5, 3, 9, 4] { _ = scheduler.addReadyInstance(id, now: at(0)) }
        var order: [Int] = []
        for item in 0..<4 { order += try scheduler.accept(item, now: at(1)).instances }
        #expect(order == [3, 4, 5, 9])
    }

    @Test("a completed batch frees its instance for the waiting batch")
    func completionFeedsSameInstance() throws {
        var scheduler = makeScheduler()
        _ = scheduler.addReadyInstance(1, now: at(0))
        let batch = try #require(try scheduler.accept(1, now: at(0)).dispatches.first)
        _ = try scheduler.accept(2, now: at(0))
        // A second instance that becomes ready takes the waiting item before the busy one finishes.
        let ready = scheduler.addReadyInstance(2, now: at(1))
        #expect(ready.batches == [[2]])
        #expect(ready.instances == [2])
        let done = scheduler.batchCompleted(instance: 1, batchID: batch.batchID, now: at(2))
        #expect(done.items == [1])
        #expect(done.next.dispatches.isEmpty)
    }
}

@Suite("BatchScheduler: limits")
struct BatchSchedulerLimitTests {
    @Test("maxBatchBytes splits batches; an oversized item still goes alone")
    func batchBytesSplit() throws {
        var scheduler = makeScheduler(maxBatchSize: 10, delayMilliseconds: 10, maxBatchBytes: 100)
        for (item, bytes) in [(1, 40), (2, 40), (3, 40), (4, 150), (5, 10), (6, 90), (7, 1)] {
            _ = try scheduler.accept(item, bytes: bytes, now: at(0))
        }
        var batches: [[Int]] = []
        var step = scheduler.addReadyInstance(1, now: at(10))
        while let dispatch = step.dispatches.first {
            #expect(step.dispatches.count == 1)
            batches.append(dispatch.items)
            let done = scheduler.batchCompleted(instance: 1, batchID: dispatch.batchID, now: at(11))
            step = done.next
        }
        #expect(batches == [[1, 2], [3], [4], [5, 6], [7]])
        #expect(scheduler.queueDepth == 0)
    }

    @Test("a batch full by count but cut by bytes leaves the rest to wait for its own deadline")
    func fullByCountCutByBytes() throws {
        var scheduler = makeScheduler(maxBatchSize: 2, delayMilliseconds: 10, maxBatchBytes: 100)
        _ = scheduler.addReadyInstance(1, now: at(0))
        _ = scheduler.addReadyInstance(2, now: at(0))
        _ = try scheduler.accept(1, bytes: 60, now: at(0))
        let step = try scheduler.accept(2, bytes: 60, now: at(3))
        #expect(step.batches == [[1]])
        #expect(step.wakeUp == at(13))
    }

    @Test("enqueue refuses when the queue is full by count")
    func queueFullByCount() throws {
        var scheduler = makeScheduler(maxBatchSize: 8, delayMilliseconds: 10, maxQueueSize: 2)
        _ = try scheduler.accept(1, now: at(0))
        _ = try scheduler.accept(2, now: at(0))
        #expect(scheduler.enqueue(3, bytes: 1, now: at(1)) == nil)
        #expect(scheduler.queueDepth == 2)

        // Room frees up as soon as a batch leaves.
        #expect(scheduler.addReadyInstance(1, now: at(10)).batches == [[1, 2]])
        #expect(scheduler.enqueue(3, bytes: 1, now: at(11)) != nil)
    }

    @Test("enqueue refuses when the queue is full by bytes")
    func queueFullByBytes() throws {
        var scheduler = makeScheduler(maxBatchSize: 8, delayMilliseconds: 10, maxQueueBytes: 100)
        _ = try scheduler.accept(1, bytes: 60, now: at(0))
        _ = try scheduler.accept(2, bytes: 40, now: at(0))
        #expect(scheduler.enqueue(3, bytes: 1, now: at(1)) == nil)
        #expect(scheduler.queueDepth == 2)
        #expect(scheduler.removeAllQueued() == [1, 2])
        // Bytes are released with the items.
        _ = try scheduler.accept(4, bytes: 100, now: at(2))
        #expect(scheduler.enqueue(5, bytes: 1, now: at(2)) == nil)
    }

    @Test("an empty queue takes one item larger than maxQueueBytes, and nothing after it")
    func oversizedItemInEmptyQueue() throws {
        var scheduler = makeScheduler(maxBatchSize: 8, delayMilliseconds: 10, maxQueueBytes: 100)
        _ = try scheduler.accept(1, bytes: 500, now: at(0))
        #expect(scheduler.enqueue(2, bytes: 1, now: at(0)) == nil)
        #expect(scheduler.addReadyInstance(1, now: at(10)).batches == [[1]])
        #expect(scheduler.enqueue(2, bytes: 1, now: at(11)) != nil)
    }
}

@Suite("BatchScheduler: expiry and removal")
struct BatchSchedulerExpiryTests {
    @Test("expire returns instances whose batch ran past invocationTimeout and removes them")
    func hungInstances() throws {
        var scheduler = makeScheduler(maxBatchSize: 2, delayMilliseconds: 0, timeoutMilliseconds: 100)
        _ = scheduler.addReadyInstance(1, now: at(0))
        _ = scheduler.addReadyInstance(2, now: at(0))
        _ = scheduler.addReadyInstance(3, now: at(0))
        let first = try #require(try scheduler.accept(1, now: at(0)).dispatches.first)
        let second = try #require(try scheduler.accept(2, now: at(50)).dispatches.first)

        let early = scheduler.expire(now: at(99))
        #expect(early.hungInstances.isEmpty)
        #expect(early.staleItems.isEmpty)

        let expired = scheduler.expire(now: at(100))
        #expect(expired.hungInstances.count == 1)
        #expect(expired.hungInstances.first?.instance == first.instance)
        #expect(expired.hungInstances.first?.items == [1])
        #expect(scheduler.readyInstanceCount == 2)
        #expect(scheduler.inFlightItemCount == 1)

        let later = scheduler.expire(now: at(1_000))
        #expect(later.hungInstances.map(\.instance) == [second.instance])
        #expect(later.hungInstances.first?.items == [2])
        #expect(scheduler.readyInstanceCount == 1)
        #expect(scheduler.inFlightItemCount == 0)
        #expect(scheduler.expire(now: at(2_000)).hungInstances.isEmpty)
    }

    @Test("several hung instances expire together")
    func severalHung() throws {
        var scheduler = makeScheduler(timeoutMilliseconds: 100)
        for id in 1...3 { _ = scheduler.addReadyInstance(id, now: at(0)) }
        for item in 1...3 { _ = try scheduler.accept(item, now: at(0)) }
        let expired = scheduler.expire(now: at(100))
        let byInstance = expired.hungInstances.sorted { $0.instance < $1.instance }
        #expect(byInstance.map(\.instance) == [1, 2, 3])
        #expect(byInstance.map(\.items) == [[1], [2], [3]])
        #expect(scheduler.readyInstanceCount == 0)
    }

    @Test("expire returns items that waited in the queue past invocationTimeout, oldest first")
    func staleQueuedItems() throws {
        var scheduler = makeScheduler(maxBatchSize: 4, delayMilliseconds: 10, maxQueueBytes: 100, timeoutMilliseconds: 100)
        _ = try scheduler.accept(1, bytes: 30, now: at(0))
        _ = try scheduler.accept(2, bytes: 30, now: at(20))
        _ = try scheduler.accept(3, bytes: 30, now: at(50))
        #expect(scheduler.expire(now: at(99)).staleItems.isEmpty)
        #expect(scheduler.expire(now: at(120)).staleItems == [1, 2])
        #expect(scheduler.queueDepth == 1)
        // Their bytes are released.
        _ = try scheduler.accept(4, bytes: 70, now: at(121))
        #expect(scheduler.expire(now: at(150)).staleItems == [3])
        #expect(scheduler.addReadyInstance(1, now: at(151)).batches == [[4]])
    }

    @Test("removeInstance returns the items of the batch it was running")
    func removeInstance() throws {
        var scheduler = makeScheduler(maxBatchSize: 2, delayMilliseconds: 0)
        _ = scheduler.addReadyInstance(1, now: at(0))
        _ = scheduler.addReadyInstance(2, now: at(1))
        _ = try scheduler.accept(1, now: at(2))
        _ = try scheduler.accept(2, now: at(3))
        #expect(scheduler.removeInstance(1) == [1])
        #expect(scheduler.removeInstance(1) == [])
        #expect(scheduler.removeInstance(42) == [])
        #expect(scheduler.readyInstanceCount == 1)
        #expect(scheduler.inFlightItemCount == 1)
        // An idle instance has nothing in flight.
        _ = scheduler.addReadyInstance(3, now: at(4))
        #expect(scheduler.removeInstance(3) == [])
        // A removed instance gets nothing.
        _ = try scheduler.accept(3, now: at(5))
        #expect(scheduler.queueDepth == 1)
    }

    @Test("removeAllQueued empties the queue in order")
    func removeAllQueued() throws {
        var scheduler = makeScheduler(maxBatchSize: 10, delayMilliseconds: 10, maxQueueSize: 3)
        for item in 1...3 { _ = try scheduler.accept(item, now: at(item)) }
        #expect(scheduler.removeAllQueued() == [1, 2, 3])
        #expect(scheduler.queueDepth == 0)
        #expect(scheduler.removeAllQueued() == [])
        #expect(scheduler.wakeUp(now: at(100)).wakeUp == nil)
        for item in 4...6 { _ = try scheduler.accept(item, now: at(101)) }
        #expect(scheduler.queueDepth == 3)
    }
}

@Suite("BatchScheduler: tensor batches")
struct BatchSchedulerTensorTests {
    @Test("items of different batch classes never share a batch, and the queue order holds")
    func classesStayApart() throws {
        var scheduler = makeScheduler(maxBatchSize: 8, delayMilliseconds: 5)
        _ = scheduler.addReadyInstance(1, now: at(0))
        _ = try scheduler.accept(1, batchClass: 7, now: at(0))
        _ = try scheduler.accept(2, batchClass: 7, now: at(0))
        // An item of another class closes the front run: it cannot grow, so it goes without waiting.
        let step = try scheduler.accept(3, batchClass: 9, now: at(1))
        #expect(step.batches == [[1, 2]])
        _ = scheduler.addReadyInstance(2, now: at(1))
        let next = scheduler.wakeUp(now: at(6))
        #expect(next.batches == [[3]])
    }

    @Test("sizes count towards maxBatchSize; a batch is ready when they reach it")
    func sizesFillBatches() throws {
        var scheduler = makeScheduler(maxBatchSize: 8, delayMilliseconds: 50)
        _ = scheduler.addReadyInstance(1, now: at(0))
        #expect(try scheduler.accept(1, size: 3, batchClass: 1, now: at(0)).batches.isEmpty)
        #expect(try scheduler.accept(2, size: 3, batchClass: 1, now: at(0)).batches.isEmpty)
        // 3 + 3 + 4 > 8: the third does not fit, but the batch is full enough to go (6 of 8 plus one waiting).
        let step = try scheduler.accept(3, size: 4, batchClass: 1, now: at(1))
        #expect(step.batches == [[1, 2]])
        #expect(scheduler.queueDepth == 1)
    }

    @Test("an item larger than maxBatchSize runs alone")
    func oversizedItemRunsAlone() throws {
        var scheduler = makeScheduler(maxBatchSize: 4, delayMilliseconds: 50)
        _ = scheduler.addReadyInstance(1, now: at(0))
        let step = try scheduler.accept(1, size: 10, batchClass: 1, now: at(0))
        #expect(step.batches == [[1]])
    }

    @Test("after stale items expire, the next front run is measured afresh")
    func expiryRemeasuresFront() throws {
        var scheduler = makeScheduler(maxBatchSize: 4, delayMilliseconds: 100, timeoutMilliseconds: 10)
        _ = try scheduler.accept(1, batchClass: 1, now: at(0))
        _ = try scheduler.accept(2, size: 2, batchClass: 2, now: at(8))
        let expired = scheduler.expire(now: at(10))
        #expect(expired.staleItems == [1])
        _ = scheduler.addReadyInstance(1, now: at(10))
        // Item 2 now leads an open run of size 2; item 3 brings it to 4, which fills the batch.
        let step = try scheduler.accept(3, size: 2, batchClass: 2, now: at(11))
        #expect(step.batches == [[2, 3]])
    }
}
