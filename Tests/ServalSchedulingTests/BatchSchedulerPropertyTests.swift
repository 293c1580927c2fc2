import ServalScheduling
import ServalFuzzSupport
import Testing

/// Drives a ``BatchScheduler`` with thousands of random events next to a plain model of its policy, checking
/// after each event that they agree and that the scheduler's invariants hold.
struct BatchSchedulerModelCheck {
    typealias Instant = ContinuousClock.Instant

    struct QueuedItem {
        var item: Int
        var bytes: Int
        var size: Int
        var batchClass: Int
        var enqueuedAt: Instant
    }

    struct Batch {
        var id: UInt64
        var items: [Int]
        var deadline: Instant
    }

    struct Instance {
        var isReady = false
        var idleSince: Instant?
        var batch: Batch?
    }

    let configuration: Scheduler.Configuration
    var scheduler: Scheduler
    var random: SeededGenerator
    var now = t0

    var queue: [QueuedItem] = []
    var instances: [Int: Instance] = [:]
    var nextItem = 0
    var nextInstance = 1
    var batchIDs = Set<UInt64>()
    /// How many times each accepted item came back (completed, timed out, removed or failed in the queue).
    var outcomes: [Int: Int] = [:]
    /// The last item that left the queue, to check that items leave in FIFO order.
    var lastDequeued = -1

    init(seed: UInt64) {
        random = SeededGenerator(seed: seed)
        configuration = Scheduler.Configuration(
            maxBatchSize: Int.random(in: 1...5, using: &random),
            maxQueueDelay: .milliseconds(Int.random(in: 0...8, using: &random)),
            maxQueueSize: Int.random(in: 1...12, using: &random),
            maxQueueBytes: Int.random(in: 60...300, using: &random),
            maxBatchBytes: Int.random(in: 20...150, using: &random),
            invocationTimeout: .milliseconds(Int.random(in: 15...60, using: &random)))
        scheduler = Scheduler(configuration: configuration)
    }

    // MARK: Running

    mutating func run(steps: Int) {
        for _ in 0..<steps {
            now = now + .milliseconds(Int.random(in: 0...3, using: &random))
            let roll = Int.random(in: 0..<100, using: &random)
            switch roll {
            case 0..<35: enqueue()
            case 35..<42: addInstance()
            case 42..<52: instanceReady()
            case 52..<72: completeBatch()
            case 72..<75: completeStaleBatch()
            case 75..<79: removeInstance()
            case 79..<90: wakeUp()
            case 90..<98: expire()
            default: removeAllQueued()
            }
            checkCounters()
        }
        drain()
    }

    /// Completes every batch and fails what is left in the queue; every accepted item must then be back once.
    mutating func drain() {
        while let id = instances.keys.sorted().first(where: { instances[$0]!.batch != nil }) {
            complete(instance: id, batch: instances[id]!.batch!)
        }
        dequeue(scheduler.removeAllQueued(), expected: queue.count)
        #expect(queue.isEmpty)
        #expect(scheduler.queueDepth == 0)
        #expect(scheduler.inFlightItemCount == 0)
        let unresolved = outcomes.filter { $0.value != 1 }
        #expect(unresolved.isEmpty, "items not back exactly once (item: times): \(unresolved)")
    }

    // MARK: Events

    mutating func enqueue() {
        let item = nextItem
        nextItem += 1
        let bytes = Int.random(in: 1...80, using: &random)
        // Mostly SageMaker-like items (size 1, class 0); some tensor requests of several rows in other classes.
        let isTensor = Int.random(in: 0..<4, using: &random) == 0
        let size = isTensor ? Int.random(in: 1...4, using: &random) : 1
        let batchClass = isTensor ? Int.random(in: 1...2, using: &random) : 0
        let queuedBytes = queue.reduce(0) { $0 + $1.bytes }
        let fits =
            queue.count < configuration.maxQueueSize
            && (queuedBytes + bytes <= configuration.maxQueueBytes || queue.isEmpty)
        let step = scheduler.enqueue(item, bytes: bytes, size: size, batchClass: batchClass, now: now)
        #expect((step != nil) == fits, "enqueue of \(bytes) bytes with \(queue.count) items / \(queuedBytes) bytes queued")
        guard let step else { return }
        queue.append(QueuedItem(item: item, bytes: bytes, size: size, batchClass: batchClass, enqueuedAt: now))
        outcomes[item] = 0
        check(step)
    }

    mutating func addInstance() {
        guard instances.count < 5 else { return }
        scheduler.addInstance(nextInstance)
        instances[nextInstance] = Instance()
        nextInstance += 1
    }

    mutating func instanceReady() {
        let known = instances.keys.sorted()
        let id = known.isEmpty || Int.random(in: 0..<10, using: &random) == 0 ? 1_000 : known.randomElement(using: &random)!
        let step = scheduler.instanceReady(id, now: now)
        guard instances[id] != nil else {
            #expect(step.dispatches.isEmpty)
            return
        }
        instances[id]!.isReady = true
        instances[id]!.idleSince = now
        check(step)
    }

    mutating func completeBatch() {
        let busy = instances.filter { $0.value.batch != nil }.keys.sorted()
        guard let id = busy.randomElement(using: &random) else { return }
        complete(instance: id, batch: instances[id]!.batch!)
    }

    mutating func complete(instance id: Int, batch: Batch) {
        let (items, next) = scheduler.batchCompleted(instance: id, batchID: batch.id, now: now)
        #expect(items == batch.items)
        for item in batch.items { outcomes[item, default: 0] += 1 }
        instances[id]!.batch = nil
        instances[id]!.idleSince = now
        check(next)
    }

    mutating func completeStaleBatch() {
        let id = instances.keys.sorted().randomElement(using: &random) ?? 1
        let current = instances[id]?.batch?.id
        let staleID = UInt64.random(in: 0...(batchIDs.max() ?? 0) + 1, using: &random)
        guard staleID != current else { return }
        let (items, next) = scheduler.batchCompleted(instance: id, batchID: staleID, now: now)
        #expect(items == nil)
        #expect(next.dispatches.isEmpty)
    }

    mutating func removeInstance() {
        guard let id = instances.keys.sorted().randomElement(using: &random) else { return }
        let items = scheduler.removeInstance(id)
        #expect(items == (instances[id]!.batch?.items ?? []))
        for item in items { outcomes[item, default: 0] += 1 }
        instances[id] = nil
    }

    mutating func wakeUp() {
        // Half the time, jump to the exact deadline of the oldest item, as an armed timer would.
        if let first = queue.first, Bool.random(using: &random) {
            now = max(now, first.enqueuedAt + configuration.maxQueueDelay)
        }
        check(scheduler.wakeUp(now: now))
    }

    mutating func expire() {
        let expired = scheduler.expire(now: now)
        let hung = instances.filter { $0.value.batch.map { $0.deadline <= now } ?? false }
        #expect(Set(expired.hungInstances.map(\.instance)) == Set(hung.keys))
        #expect(expired.hungInstances.count == hung.count)
        for (id, items) in expired.hungInstances {
            #expect(items == hung[id]?.batch?.items)
            for item in items { outcomes[item, default: 0] += 1 }
            instances[id] = nil
        }
        let stale = queue.prefix { $0.enqueuedAt + configuration.invocationTimeout <= now }.count
        dequeue(expired.staleItems, expected: stale)
    }

    mutating func removeAllQueued() {
        dequeue(scheduler.removeAllQueued(), expected: queue.count)
    }

    /// Records items that left the queue without a batch: they must be the oldest `expected` ones, in order.
    mutating func dequeue(_ items: [Int], expected: Int) {
        #expect(items == queue.prefix(expected).map(\.item))
        for item in items {
            #expect(item > lastDequeued, "items left the queue out of order")
            lastDequeued = item
            outcomes[item, default: 0] += 1
        }
        queue.removeFirst(min(expected, queue.count))
    }

    // MARK: Checks

    var isBatchReady: Bool {
        guard let first = queue.first else { return false }
        let run = frontRun
        return run.reduce(0) { $0 + $1.size } >= configuration.maxBatchSize || run.count < queue.count
            || first.enqueuedAt + configuration.maxQueueDelay <= now
    }

    /// The items at the front of the queue that share the first item's batch class.
    var frontRun: ArraySlice<QueuedItem> {
        guard let first = queue.first else { return [] }
        return queue.prefix { $0.batchClass == first.batchClass }
    }

    /// The idle ready instance idle longest, ties to the lower id.
    var expectedInstance: Int? {
        instances.filter { $0.value.isReady && $0.value.batch == nil }
            .min { ($0.value.idleSince!, $0.key) < ($1.value.idleSince!, $1.key) }?.key
    }

    /// Checks a step against the model and applies its dispatches to the model.
    mutating func check(_ step: Scheduler.Step) {
        for dispatch in step.dispatches {
            #expect(isBatchReady, "a batch went out before it was ready")
            #expect(dispatch.instance == expectedInstance, "batch routed to \(dispatch.instance)")
            #expect(batchIDs.insert(dispatch.batchID).inserted, "batch id \(dispatch.batchID) reused")
            #expect(!dispatch.items.isEmpty)
            let taken = Array(queue.prefix(dispatch.items.count))
            #expect(dispatch.items == taken.map(\.item), "a batch is not the head of the queue")
            #expect(Set(taken.map(\.batchClass)).count == 1, "a batch mixes batch classes")
            let bytes = taken.reduce(0) { $0 + $1.bytes }
            let size = taken.reduce(0) { $0 + $1.size }
            #expect(size <= configuration.maxBatchSize || taken.count == 1)
            #expect(bytes <= configuration.maxBatchBytes || taken.count == 1)
            // The batch is as large as the limits allow.
            if taken.count < queue.count, queue[taken.count].batchClass == taken[0].batchClass {
                let next = queue[taken.count]
                #expect(
                    size + next.size > configuration.maxBatchSize || bytes + next.bytes > configuration.maxBatchBytes,
                    "a batch left room")
            }
            for item in dispatch.items {
                #expect(item > lastDequeued, "items left the queue out of order")
                lastDequeued = item
            }
            queue.removeFirst(taken.count)
            guard instances[dispatch.instance] != nil else { continue }
            instances[dispatch.instance]!.batch = Batch(
                id: dispatch.batchID, items: dispatch.items, deadline: now + configuration.invocationTimeout)
            instances[dispatch.instance]!.idleSince = nil
        }
        if isBatchReady {
            #expect(expectedInstance == nil, "a ready batch was left waiting beside an idle instance")
            #expect(step.wakeUp == nil, "a wake-up was asked for a batch that is already ready")
        } else if let first = queue.first {
            #expect(step.wakeUp == first.enqueuedAt + configuration.maxQueueDelay)
        } else {
            #expect(step.wakeUp == nil)
        }
        if let wakeUp = step.wakeUp { #expect(wakeUp > now, "a wake-up in the past would spin") }
    }

    func checkCounters() {
        #expect(scheduler.queueDepth == queue.count)
        #expect(scheduler.readyInstanceCount == instances.values.count(where: \.isReady))
        #expect(scheduler.inFlightItemCount == instances.values.reduce(0) { $0 + ($1.batch?.items.count ?? 0) })
    }
}

@Suite("BatchScheduler: random events")
struct BatchSchedulerPropertyTests {
    @Test("every item comes back exactly once, batches respect the limits, FIFO order holds", arguments: 1...8)
    func randomEvents(seed: Int) {
        var check = BatchSchedulerModelCheck(seed: UInt64(seed))
        check.run(steps: 4_000)
        #expect(check.nextItem > 500, "the run enqueued too little to mean anything")
        #expect(check.batchIDs.count > 100, "the run dispatched too little to mean anything")
    }
}
