import DequeModule

/// The dynamic batcher and router of one production variant, as a pure state machine.
///
/// It owns the variant's queue and knows each worker instance's state; it never reads a clock or touches I/O.
/// The caller feeds it events with the current instant and carries out what it returns: dispatch a batch to an
/// instance, fail items, kill a hung instance, or wake it up at a given instant.
///
/// Policy (Triton's dynamic batcher, one batch in flight per instance):
/// - Each item has a *size* (1 for a SageMaker request; the first dimension of a tensor request) and a *batch
///   class*: only items of the same class may share a batch, and a batch is a run of consecutive same-class
///   items from the front of the queue, so order is kept.
/// - A batch is *ready* when the front run's sizes add up to `maxBatchSize`, when an item of another class
///   closes the run (it cannot grow), or when the oldest queued item has waited `maxQueueDelay`. A ready batch
///   goes to an idle ready instance — the one that has been idle longest — and carries at most `maxBatchSize`
///   in size and `maxBatchBytes` in bytes (always at least one item, so a larger item runs alone).
/// - The queue holds at most `maxQueueSize` items and `maxQueueBytes` bytes; beyond that `enqueue` refuses
///   (an empty queue takes one item of any size, so that a single large request is never refused forever).
/// - Each item has a *timeout*: `invocationTimeout` unless it brings its own (asynchronous invocations do). A batch
///   running longer than the largest timeout of its items times out: its instance must be killed. An item queued
///   for longer than its timeout (no instance took it) fails too, so no request waits forever.
public struct BatchScheduler<Item> {
    /// Identifies a worker instance of the variant.
    public typealias InstanceID = Int
    /// The clock's instants.
    public typealias Instant = ContinuousClock.Instant

    /// Limits of the scheduler.
    public struct Configuration: Sendable, Equatable {
        /// The largest total size of one batch; 1 turns batching off.
        public var maxBatchSize: Int
        /// How long the oldest item may wait for a fuller batch.
        public var maxQueueDelay: Duration
        /// The most items waiting in the queue.
        public var maxQueueSize: Int
        /// The most bytes waiting in the queue.
        public var maxQueueBytes: Int
        /// The most bytes in one batch (a single larger item still goes alone).
        public var maxBatchBytes: Int
        /// How long a batch may run in an instance, and how long an item may wait in the queue, for items
        /// enqueued without a timeout of their own.
        public var invocationTimeout: Duration

        /// Creates a configuration.
        public init(
            maxBatchSize: Int,
            maxQueueDelay: Duration,
            maxQueueSize: Int,
            maxQueueBytes: Int = 512 * 1024 * 1024,
            maxBatchBytes: Int = 64 * 1024 * 1024,
            invocationTimeout: Duration
        ) {
            precondition(maxBatchSize >= 1 && maxQueueSize >= 1 && maxBatchBytes >= 1)
            self.maxBatchSize = maxBatchSize
            self.maxQueueDelay = maxQueueDelay
            self.maxQueueSize = maxQueueSize
            self.maxQueueBytes = maxQueueBytes
            self.maxBatchBytes = maxBatchBytes
            self.invocationTimeout = invocationTimeout
        }
    }

    /// A batch handed to an instance.
    public struct Dispatch {
        /// The batch's identifier, unique within this scheduler.
        public var batchID: UInt64
        /// The instance that runs it.
        public var instance: InstanceID
        /// Its items, in queue order.
        public var items: [Item]
    }

    /// What the caller must do after an event: dispatch these batches, and make sure a wake-up is armed at
    /// `wakeUp` (when the oldest queued item's delay runs out while an instance is idle).
    public struct Step {
        /// Batches to send, each to its instance.
        public var dispatches: [Dispatch] = []
        /// When to call ``BatchScheduler/wakeUp(now:)``; `nil` when nothing waits on a deadline.
        public var wakeUp: Instant?
    }

    /// What an expiry check found.
    public struct Expired {
        /// Instances whose batch ran past the timeout, with that batch's items. Kill each instance and fail its items.
        public var hungInstances: [(instance: InstanceID, items: [Item])] = []
        /// Items that waited in the queue past the timeout without any instance taking them.
        public var staleItems: [Item] = []
    }

    private struct Queued {
        var item: Item
        var bytes: Int
        var size: Int
        var batchClass: Int
        var timeout: Duration
        var enqueuedAt: Instant
    }

    /// The run of same-class items at the front of the queue: the next batch's candidates.
    private struct FrontRun {
        var size = 0
        /// An item of another class follows the run, so it cannot grow.
        var isClosed = false
    }

    private struct InFlight {
        var batchID: UInt64
        var items: [Item]
        var deadline: Instant
    }

    private struct Instance {
        var isReady = false
        var inFlight: InFlight?
        var idleSince: Instant?
    }

    /// The scheduler's limits.
    public let configuration: Configuration
    private var queue = Deque<Queued>()
    private var queuedBytes = 0
    private var front = FrontRun()
    private var instances: [InstanceID: Instance] = [:]
    private var nextBatchID: UInt64 = 1

    /// Creates an empty scheduler with no instances.
    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The number of items waiting in the queue.
    public var queueDepth: Int { queue.count }

    /// The number of instances that are ready to take batches.
    public var readyInstanceCount: Int { instances.values.count(where: \.isReady) }

    /// The number of items in batches that instances are running.
    public var inFlightItemCount: Int { instances.values.reduce(0) { $0 + ($1.inFlight?.items.count ?? 0) } }

    // MARK: Events

    /// Offers an item of `bytes` bytes to the queue.
    ///
    /// - Parameters:
    ///   - size: what the item counts towards `maxBatchSize` (at least 1 is counted).
    ///   - batchClass: items batch only with items of the same class.
    ///   - timeout: how long the item may wait in the queue, and how long the batch it joins may run at least;
    ///     `nil` for the configuration's `invocationTimeout`.
    /// - Returns: `nil` when the queue is full and the item was not taken.
    public mutating func enqueue(
        _ item: Item, bytes: Int, size: Int = 1, batchClass: Int = 0, timeout: Duration? = nil, now: Instant
    ) -> Step? {
        guard queue.count < configuration.maxQueueSize,
            queuedBytes + bytes <= configuration.maxQueueBytes || queue.isEmpty
        else {
            return nil
        }
        let size = max(size, 1)
        if queue.isEmpty {
            front = FrontRun(size: size)
        } else if !front.isClosed && batchClass == queue.first!.batchClass {
            front.size += size
        } else {
            front.isClosed = true
        }
        queue.append(
            Queued(
                item: item, bytes: bytes, size: size, batchClass: batchClass,
                timeout: timeout ?? configuration.invocationTimeout, enqueuedAt: now))
        queuedBytes += bytes
        return step(now: now)
    }

    /// Registers a new instance that is starting and cannot take batches yet.
    public mutating func addInstance(_ id: InstanceID) {
        instances[id] = Instance()
    }

    /// Marks an instance ready; it may receive a batch at once.
    public mutating func instanceReady(_ id: InstanceID, now: Instant) -> Step {
        guard instances[id] != nil else { return Step() }
        instances[id]!.isReady = true
        instances[id]!.idleSince = now
        return step(now: now)
    }

    /// Records that `instance` answered batch `batchID`.
    ///
    /// - Returns: the batch's items (to resolve with the answers), or `nil` when the batch is unknown — it timed
    ///   out or its instance was removed, and its items were already failed; and what to do next.
    public mutating func batchCompleted(
        instance id: InstanceID, batchID: UInt64, now: Instant
    ) -> (items: [Item]?, next: Step) {
        guard let inFlight = instances[id]?.inFlight, inFlight.batchID == batchID else {
            return (nil, Step())
        }
        instances[id]!.inFlight = nil
        instances[id]!.idleSince = now
        return (inFlight.items, step(now: now))
    }

    /// Removes an instance (it exited, was killed, or is being stopped).
    ///
    /// - Returns: the items of the batch it was running, which the caller must fail.
    public mutating func removeInstance(_ id: InstanceID) -> [Item] {
        instances.removeValue(forKey: id)?.inFlight?.items ?? []
    }

    /// Called when a wake-up armed for a batch deadline fires.
    public mutating func wakeUp(now: Instant) -> Step {
        step(now: now)
    }

    /// Finds batches that ran past their deadline and items that waited in the queue past their timeout.
    ///
    /// Hung instances are removed from the scheduler; the caller kills their processes.
    public mutating func expire(now: Instant) -> Expired {
        var expired = Expired()
        for (id, instance) in instances {
            if let inFlight = instance.inFlight, inFlight.deadline <= now {
                expired.hungInstances.append((id, inFlight.items))
                instances.removeValue(forKey: id)
            }
        }
        // Timeouts differ between items, so a stale item may wait behind one that is not.
        if queue.contains(where: { $0.enqueuedAt + $0.timeout <= now }) {
            var kept = Deque<Queued>()
            kept.reserveCapacity(queue.count)
            for queued in queue {
                if queued.enqueuedAt + queued.timeout <= now {
                    queuedBytes -= queued.bytes
                    expired.staleItems.append(queued.item)
                } else {
                    kept.append(queued)
                }
            }
            queue = kept
            measureFront()
        }
        return expired
    }

    /// Empties the queue, returning the items so that the caller can fail them (the variant is stopping or failed).
    public mutating func removeAllQueued() -> [Item] {
        let items = queue.map(\.item)
        queue.removeAll()
        queuedBytes = 0
        front = FrontRun()
        return items
    }

    // MARK: Policy

    /// Dispatches every ready batch to idle instances, then says when to wake up: only when a queued batch is
    /// not ready yet, since a ready batch without an idle instance goes out when an instance frees up.
    private mutating func step(now: Instant) -> Step {
        var step = Step()
        while let dispatch = nextDispatch(now: now) {
            step.dispatches.append(dispatch)
        }
        if let first = queue.first, !isBatchReady(now: now) {
            step.wakeUp = first.enqueuedAt + configuration.maxQueueDelay
        }
        return step
    }

    private func isBatchReady(now: Instant) -> Bool {
        guard let first = queue.first else { return false }
        return front.size >= configuration.maxBatchSize || front.isClosed
            || first.enqueuedAt + configuration.maxQueueDelay <= now
    }

    /// Measures the front run again after items left the front of the queue.
    private mutating func measureFront() {
        front = FrontRun()
        guard let batchClass = queue.first?.batchClass else { return }
        for queued in queue {
            guard queued.batchClass == batchClass else {
                front.isClosed = true
                return
            }
            front.size += queued.size
            if front.size >= configuration.maxBatchSize { return }
        }
    }

    /// The idle ready instance that has waited longest, if any.
    private func idleInstance() -> InstanceID? {
        var best: (id: InstanceID, since: Instant)?
        for (id, instance) in instances where instance.isReady && instance.inFlight == nil {
            let since = instance.idleSince!
            if best == nil || since < best!.since || (since == best!.since && id < best!.id) {
                best = (id, since)
            }
        }
        return best?.id
    }

    private mutating func nextDispatch(now: Instant) -> Dispatch? {
        guard isBatchReady(now: now), let instance = idleInstance() else { return nil }
        var items: [Item] = []
        items.reserveCapacity(min(queue.count, configuration.maxBatchSize))
        var bytes = 0
        var size = 0
        var timeout = Duration.zero
        let batchClass = queue.first!.batchClass
        while let first = queue.first, first.batchClass == batchClass,
            items.isEmpty
                || (size + first.size <= configuration.maxBatchSize && bytes + first.bytes <= configuration.maxBatchBytes)
        {
            queue.removeFirst()
            queuedBytes -= first.bytes
            bytes += first.bytes
            size += first.size
            timeout = max(timeout, first.timeout)
            items.append(first.item)
        }
        measureFront()
        let batchID = nextBatchID
        nextBatchID &+= 1
        instances[instance]!.inFlight = InFlight(
            batchID: batchID, items: items, deadline: now + timeout)
        instances[instance]!.idleSince = nil
        return Dispatch(batchID: batchID, instance: instance, items: items)
    }
}
