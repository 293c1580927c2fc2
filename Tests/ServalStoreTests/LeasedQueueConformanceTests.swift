import ServalCore
import ServalStore
import Testing

// MARK: Fixtures

/// Where an item stands in its queue, as stored.
struct LeaseState: Equatable, CustomStringConvertible {
    enum Phase: String { case waiting, leased, finished }
    var phase: Phase
    var attempts: Int

    static func waiting(_ attempts: Int) -> LeaseState { LeaseState(phase: .waiting, attempts: attempts) }
    static func leased(_ attempts: Int) -> LeaseState { LeaseState(phase: .leased, attempts: attempts) }
    static func finished(_ attempts: Int) -> LeaseState { LeaseState(phase: .finished, attempts: attempts) }

    var description: String { "\(phase.rawValue)(\(attempts))" }
}

/// One kind of leased work as the queue's conformance suite sees it: how to reach its queue in a store, make
/// waiting items and read where an item stands.
protocol LeasedWorkFixture: Sendable {
    associatedtype Work: LeasedWork

    /// The store's queue of this work.
    func queue(of store: any MetadataStore) -> any LeasedQueue<Work>
    /// Adds `count` waiting items to `partition` (once per partition) and returns their ids in queue order. When the
    /// work has deadlines, item `n`'s is 100,000 − 1,000·n ms, so that deadline order is the reverse of queue order.
    func add(_ count: Int, to partition: String, in store: any MetadataStore) async throws -> [Work.ID]
    /// Where an item stands, or `nil` when the store has no such item.
    func state(of id: Work.ID, in partition: String, store: any MetadataStore) async throws -> LeaseState?
    /// Whether items have start deadlines (overdue-only claims).
    var hasDeadlines: Bool { get }
    /// An id that no item of any partition has.
    var unknownID: Work.ID { get }
    /// A completion to finish items with.
    var completion: Work.Completion { get }
}

/// Async invocations, partitioned by endpoint.
struct AsyncInvocationFixture: LeasedWorkFixture {
    func queue(of store: any MetadataStore) -> any LeasedQueue<AsyncInvocation> { store.asyncInvocationQueue }

    func add(_ count: Int, to partition: String, in store: any MetadataStore) async throws -> [String] {
        // Ids and acceptance times run backwards, so that only the order of acceptance gives the queue's order.
        let invocations = (0..<count).map { n in
            let createdAt = 1_000 - Int64(n)
            return makeInvocation(
                "item-\(999 - n)", endpoint: partition, createdAt: createdAt, ttl: 100_000 - 1_000 * Int64(n) - createdAt)
        }
        try await store.enqueue(invocations)
        return invocations.map(\.id)
    }

    func state(of id: String, in partition: String, store: any MetadataStore) async throws -> LeaseState? {
        guard let invocation = try await store.asyncInvocation(endpoint: partition, id: id) else { return nil }
        let phase: LeaseState.Phase =
            switch invocation.status {
            case .queued: .waiting
            case .inProgress: .leased
            case .completed, .failed, .expired: .finished
            }
        return LeaseState(phase: phase, attempts: invocation.attempts)
    }

    var hasDeadlines: Bool { true }
    var unknownID: String { "nope" }
    var completion: AsyncInvocationEnd { AsyncInvocationEnd(.completed(outputContentType: "text/plain")) }
}

/// Transform units, partitioned by job.
struct TransformUnitFixture: LeasedWorkFixture {
    func queue(of store: any MetadataStore) -> any LeasedQueue<TransformUnit> { store.transformUnitQueue }

    func add(_ count: Int, to partition: String, in store: any MetadataStore) async throws -> [TransformUnit.ID] {
        // Objects of three units, so that the queue's order runs across objects.
        let parts = Array(repeating: 3, count: count / 3) + (count % 3 == 0 ? [] : [count % 3])
        try await store.createTransformJob(makeTransformJob(partition))
        #expect(try await store.plan(partition, parts: parts))
        return makeTransformPlan(parts).units.map(\.id)
    }

    func state(of id: TransformUnit.ID, in partition: String, store: any MetadataStore) async throws -> LeaseState? {
        let units = try await store.transformUnits(job: partition, objectIndex: id.objectIndex)
        guard let unit = units.first(where: { $0.part == id.part }) else { return nil }
        let phase: LeaseState.Phase =
            switch unit.status {
            case .pending: .waiting
            case .inProgress: .leased
            case .done: .finished
            }
        return LeaseState(phase: phase, attempts: unit.attempts)
    }

    var hasDeadlines: Bool { false }
    var unknownID: TransformUnit.ID { unitID(99, 0) }
    var completion: TransformUnitProgress { TransformUnitProgress(recordsDone: 9, recordsFailed: 1, bytes: 100) }
}

/// The kinds of leased work the suite runs against, in every store.
enum QueueKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case asyncInvocations
    case transformUnits

    var testDescription: String { rawValue }

    var fixture: any LeasedWorkFixture {
        switch self {
        case .asyncInvocations: AsyncInvocationFixture()
        case .transformUnits: TransformUnitFixture()
        }
    }
}

extension LeasedQueue {
    /// Claims as `owner` at `now` (2,000 unless told) with a lease until `until` (10,000 unless told); returns the ids.
    func claimIDs(
        in partition: String = "p", owner: String = "A", limit: Int = 100, now: Int64 = 2_000, until: Int64 = 10_000,
        overdueOnly: Bool = false
    ) async throws -> [Work.ID] {
        try await claim(
            in: partition, owner: owner, limit: limit, now: timestamp(now), leaseUntil: timestamp(until),
            overdueOnly: overdueOnly
        ).map(\.id)
    }

    /// Finishes as `owner` at 3,000.
    func finish(_ id: Work.ID, in partition: String = "p", owner: String = "A", with completion: Work.Completion)
        async throws -> Bool
    {
        try await finish(in: partition, id: id, owner: owner, completion: completion, now: timestamp(3_000))
    }

    /// Releases as `owner` at 3,000.
    func release(_ id: Work.ID, in partition: String = "p", owner: String = "A", countAttempt: Bool) async throws -> Bool {
        try await release(in: partition, id: id, owner: owner, now: timestamp(3_000), countAttempt: countAttempt)
    }

    /// Renews as `owner` until `until`; returns the ids lost.
    func renew(_ ids: [Work.ID], in partition: String = "p", owner: String = "A", until: Int64) async throws -> Set<Work.ID> {
        try await renew(in: partition, ids: ids, owner: owner, until: timestamp(until))
    }

    /// Rescues the leases that ended before `now`.
    func rescue(_ now: Int64) async throws -> Int {
        try await rescueExpired(now: timestamp(now))
    }
}

// MARK: The suite

/// The behaviour of the leased work queue that every store must have, for every kind of work it keeps: async
/// invocations and transform units, in SQLite today and in PostgreSQL later. Each test is written once over a
/// ``LeasedWorkFixture``; what a kind records beside the lease (an invocation's outcome, a job's progress) is tested
/// in that kind's suite.
@Suite("LeasedQueue conformance")
struct LeasedQueueConformanceTests {
    @Test(
        "claims lease waiting items in queue order, up to the limit, from one partition",
        arguments: StoreKind.allCases, QueueKind.allCases)
    func claimOrderLimitsAndPartitions(kind: StoreKind, queue: QueueKind) async throws {
        try await withStore(kind) { store, _ in try await Self.claimOrderLimitsAndPartitions(queue.fixture, store) }
    }

    private static func claimOrderLimitsAndPartitions<F: LeasedWorkFixture>(
        _ fixture: F, _ store: any MetadataStore
    ) async throws {
        let queue = fixture.queue(of: store)
        #expect(try await queue.claimIDs().isEmpty)
        let items = try await fixture.add(5, to: "p", in: store)
        let others = try await fixture.add(2, to: "q", in: store)

        #expect(try await queue.claimIDs(limit: 0).isEmpty)
        #expect(try await queue.claimIDs(limit: -1).isEmpty)
        #expect(try await queue.claimIDs(in: "nope").isEmpty)
        let first = try await queue.claim(
            in: "p", owner: "A", limit: 2, now: timestamp(2_000), leaseUntil: timestamp(9_000), overdueOnly: false)
        #expect(first.map(\.id) == Array(items.prefix(2)))
        #expect(first.map(\.attempts) == [1, 1])
        for id in items.prefix(2) { #expect(try await fixture.state(of: id, in: "p", store: store) == .leased(1)) }
        for id in items.dropFirst(2) { #expect(try await fixture.state(of: id, in: "p", store: store) == .waiting(0)) }

        #expect(try await queue.claimIDs(owner: "B", limit: 10) == Array(items.dropFirst(2)))
        #expect(try await queue.claimIDs(limit: 10).isEmpty)
        // The other partition was never touched.
        for id in others { #expect(try await fixture.state(of: id, in: "q", store: store) == .waiting(0)) }
        #expect(try await queue.claimIDs(in: "q", limit: 10) == others)
    }

    @Test("two claimers at once never get the same item", arguments: StoreKind.allCases, QueueKind.allCases)
    func concurrentClaims(kind: StoreKind, queue: QueueKind) async throws {
        try await withStore(kind) { store, backend in try await Self.concurrentClaims(queue.fixture, store, backend) }
    }

    private static func concurrentClaims<F: LeasedWorkFixture>(
        _ fixture: F, _ store: any MetadataStore, _ backend: any StoreBackend
    ) async throws {
        let items = try await fixture.add(200, to: "p", in: store)
        // One claimer on this store, one on another store on the same data (like a second process).
        async let first = claimAll(fixture.queue(of: store), owner: "A")
        async let second = claimAll(fixture.queue(of: try backend.open()), owner: "B")
        let (a, b) = try await (first, second)
        #expect(Set(a).isDisjoint(with: b))
        #expect(Set(a).union(b) == Set(items))
        #expect(a.count + b.count == items.count)
        // Each claimer got its items in queue order.
        let position = Dictionary(uniqueKeysWithValues: items.enumerated().map { ($1, $0) })
        for claimed in [a, b] {
            let positions = claimed.compactMap { position[$0] }
            #expect(positions == positions.sorted())
        }
        for id in items { #expect(try await fixture.state(of: id, in: "p", store: store) == .leased(1)) }
    }

    /// Claims in small batches until nothing waits; returns the ids claimed.
    private static func claimAll<Work: LeasedWork>(_ queue: any LeasedQueue<Work>, owner: String) async throws -> [Work.ID] {
        var claimed: [Work.ID] = []
        while true {
            let batch = try await queue.claimIDs(owner: owner, limit: 7)
            if batch.isEmpty { return claimed }
            claimed += batch
        }
    }

    @Test(
        "only the owner renews its leases, and learns which ones it lost",
        arguments: StoreKind.allCases, QueueKind.allCases)
    func renewal(kind: StoreKind, queue: QueueKind) async throws {
        try await withStore(kind) { store, _ in try await Self.renewal(queue.fixture, store) }
    }

    private static func renewal<F: LeasedWorkFixture>(_ fixture: F, _ store: any MetadataStore) async throws {
        let queue = fixture.queue(of: store)
        let items = try await fixture.add(3, to: "p", in: store)
        _ = try await fixture.add(3, to: "q", in: store)
        let (x, y, z, unknown) = (items[0], items[1], items[2], fixture.unknownID)
        _ = try await queue.claimIDs(limit: 2, until: 1_000)
        #expect(try await queue.renew([], until: 2_000) == [])
        // z waits and `unknown` does not exist; the leases are not B's, and q's items of the same ids wait.
        #expect(try await queue.renew([x, y, z, unknown], until: 2_000) == [z, unknown])
        #expect(try await queue.renew([x, y], owner: "B", until: 9_000) == [x, y])
        #expect(try await queue.renew([x], in: "q", until: 9_000) == [x])

        // Renewed until 2,000 (B's renewal changed nothing): nothing to rescue at 1,500; both at 2,001.
        #expect(try await queue.rescue(1_500) == 0)
        #expect(try await queue.rescue(2_001) == 2)
        #expect(try await queue.renew([x, y], until: 3_000) == [x, y])
        // Claimed again by B, they are B's.
        #expect(try await queue.claimIDs(owner: "B", limit: 3) == [x, y, z])
        #expect(try await queue.renew([x, y, z], owner: "B", until: 4_000) == [])
        #expect(try await queue.renew([x], until: 4_000) == [x])
        // A finished item's lease is gone.
        #expect(try await queue.finish(x, owner: "B", with: fixture.completion))
        #expect(try await queue.renew([x, y], owner: "B", until: 5_000) == [x])
    }

    @Test(
        "release puts an item back first in line, taking its attempt back unless it counts",
        arguments: StoreKind.allCases, QueueKind.allCases)
    func release(kind: StoreKind, queue: QueueKind) async throws {
        try await withStore(kind) { store, _ in try await Self.release(queue.fixture, store) }
    }

    private static func release<F: LeasedWorkFixture>(_ fixture: F, _ store: any MetadataStore) async throws {
        let queue = fixture.queue(of: store)
        let items = try await fixture.add(2, to: "p", in: store)
        let item = items[0]
        _ = try await queue.claimIDs(limit: 1)
        // Only the owner releases, and only what it leases.
        #expect(try await queue.release(item, owner: "B", countAttempt: false) == false)
        #expect(try await queue.release(items[1], countAttempt: false) == false)
        #expect(try await queue.release(fixture.unknownID, countAttempt: false) == false)
        #expect(try await queue.release(item, in: "q", countAttempt: false) == false)
        #expect(try await fixture.state(of: item, in: "p", store: store) == .leased(1))

        #expect(try await queue.release(item, countAttempt: false))
        #expect(try await fixture.state(of: item, in: "p", store: store) == .waiting(0))
        // Released, the lease is gone.
        #expect(try await queue.renew([item], until: 20_000) == [item])
        #expect(try await queue.release(item, countAttempt: false) == false)
        #expect(try await queue.finish(item, with: fixture.completion) == false)

        let again = try await queue.claim(
            in: "p", owner: "B", limit: 1, now: timestamp(4_000), leaseUntil: timestamp(10_000), overdueOnly: false)
        #expect(again.map(\.id) == [item])
        #expect(again.map(\.attempts) == [1])
        #expect(try await queue.release(item, owner: "B", countAttempt: true))
        #expect(try await fixture.state(of: item, in: "p", store: store) == .waiting(1))
        let third = try await queue.claim(
            in: "p", owner: "C", limit: 1, now: timestamp(5_000), leaseUntil: timestamp(10_000), overdueOnly: false)
        #expect(third.map(\.id) == [item])
        #expect(third.map(\.attempts) == [2])
    }

    @Test("only the lease's holder finishes an item, once", arguments: StoreKind.allCases, QueueKind.allCases)
    func finish(kind: StoreKind, queue: QueueKind) async throws {
        try await withStore(kind) { store, _ in try await Self.finish(queue.fixture, store) }
    }

    private static func finish<F: LeasedWorkFixture>(_ fixture: F, _ store: any MetadataStore) async throws {
        let queue = fixture.queue(of: store)
        let items = try await fixture.add(4, to: "p", in: store)
        let others = try await fixture.add(1, to: "q", in: store)
        _ = try await queue.claimIDs(limit: 3)
        let done = fixture.completion

        #expect(try await queue.finish(items[0], owner: "B", with: done) == false)
        // A waiting or unknown item has no lease to end; q's item of the same id waits.
        #expect(try await queue.finish(items[3], with: done) == false)
        #expect(try await queue.finish(fixture.unknownID, with: done) == false)
        #expect(try await queue.finish(items[0], in: "q", with: done) == false)
        #expect(try await fixture.state(of: items[0], in: "p", store: store) == .leased(1))
        #expect(try await fixture.state(of: others[0], in: "q", store: store) == .waiting(0))

        #expect(try await queue.finish(items[0], with: done))
        #expect(try await queue.finish(items[1], with: done))
        #expect(try await fixture.state(of: items[0], in: "p", store: store) == .finished(1))
        // Once: a finished item holds no lease to finish, renew, release or rescue.
        #expect(try await queue.finish(items[0], with: done) == false)
        #expect(try await queue.renew([items[0]], until: 20_000) == [items[0]])
        #expect(try await queue.release(items[0], countAttempt: true) == false)
        #expect(try await queue.rescue(Int64.max) == 1)
        #expect(try await fixture.state(of: items[0], in: "p", store: store) == .finished(1))
        // Nor is it claimed again.
        #expect(try await queue.claimIDs(limit: 10) == [items[2], items[3]])
    }

    @Test(
        "leases that ended are rescued with their attempt counted, and their stalled owner loses them",
        arguments: StoreKind.allCases, QueueKind.allCases)
    func rescue(kind: StoreKind, queue: QueueKind) async throws {
        try await withStore(kind) { store, _ in try await Self.rescue(queue.fixture, store) }
    }

    private static func rescue<F: LeasedWorkFixture>(_ fixture: F, _ store: any MetadataStore) async throws {
        let queue = fixture.queue(of: store)
        let items = try await fixture.add(2, to: "p", in: store)
        let others = try await fixture.add(1, to: "q", in: store)
        #expect(try await queue.rescue(Int64.max) == 0)
        _ = try await queue.claimIDs(limit: 1, until: 5_000)
        _ = try await queue.claimIDs(in: "q", owner: "B", until: 6_000)
        // A lease ending exactly now still holds.
        #expect(try await queue.rescue(5_000) == 0)
        #expect(try await queue.rescue(5_001) == 1)
        #expect(try await fixture.state(of: items[0], in: "p", store: store) == .waiting(1))
        #expect(try await fixture.state(of: others[0], in: "q", store: store) == .leased(1))

        // The stalled owner can no longer finish, renew or release it.
        #expect(try await queue.finish(items[0], with: fixture.completion) == false)
        #expect(try await queue.renew([items[0]], until: 20_000) == [items[0]])
        #expect(try await queue.release(items[0], countAttempt: false) == false)
        // The next claim is its second attempt, still first in line.
        let again = try await queue.claim(
            in: "p", owner: "C", limit: 1, now: timestamp(5_200), leaseUntil: timestamp(7_000), overdueOnly: false)
        #expect(again.map(\.id) == [items[0]])
        #expect(again.map(\.attempts) == [2])
        #expect(try await queue.rescue(7_001) == 2)
        #expect(try await queue.rescue(7_001) == 0)
        #expect(try await fixture.state(of: items[0], in: "p", store: store) == .waiting(2))
        #expect(try await fixture.state(of: items[1], in: "p", store: store) == .waiting(0))
    }

    @Test(
        "an overdue-only claim takes only waiting items whose deadline passed, in queue order",
        arguments: StoreKind.allCases, QueueKind.allCases)
    func overdueOnly(kind: StoreKind, queue: QueueKind) async throws {
        try await withStore(kind) { store, _ in try await Self.overdueOnly(queue.fixture, store) }
    }

    private static func overdueOnly<F: LeasedWorkFixture>(_ fixture: F, _ store: any MetadataStore) async throws {
        let queue = fixture.queue(of: store)
        // Deadlines (when the work has them): 100,000, 99,000, 98,000, 97,000.
        let items = try await fixture.add(4, to: "p", in: store)
        // A deadline of exactly now has not passed.
        #expect(try await queue.claimIDs(now: 97_000, overdueOnly: true).isEmpty)
        #expect(
            try await queue.claimIDs(now: 98_500, overdueOnly: true) == (fixture.hasDeadlines ? [items[2], items[3]] : []))
        #expect(try await queue.claimIDs(limit: 1, now: 200_000, overdueOnly: true) == (fixture.hasDeadlines ? [items[0]] : []))
        // A plain claim takes the rest, deadlines or not.
        #expect(try await queue.claimIDs(limit: 10, now: 2_000) == (fixture.hasDeadlines ? [items[1]] : items))
    }

    @Test("leases survive reopening the store", arguments: StoreKind.allCases, QueueKind.allCases)
    func survivesReopen(kind: StoreKind, queue: QueueKind) async throws {
        try await withStore(kind) { store, backend in try await Self.survivesReopen(queue.fixture, store, backend) }
    }

    private static func survivesReopen<F: LeasedWorkFixture>(
        _ fixture: F, _ store: any MetadataStore, _ backend: any StoreBackend
    ) async throws {
        let items = try await fixture.add(3, to: "p", in: store)
        _ = try await fixture.queue(of: store).claimIDs(limit: 2, until: 10_000)
        // A kill -9 later: the owner still holds its leases, and the rescuer takes them only once they end.
        let reopened = try backend.open()
        let queue = fixture.queue(of: reopened)
        #expect(try await fixture.state(of: items[0], in: "p", store: reopened) == .leased(1))
        #expect(try await queue.renew([items[0], items[1]], until: 10_000) == [])
        #expect(try await queue.rescue(10_000) == 0)
        #expect(try await queue.rescue(10_001) == 2)
        let claimed = try await queue.claim(
            in: "p", owner: "B", limit: 10, now: timestamp(10_100), leaseUntil: timestamp(20_000), overdueOnly: false)
        #expect(claimed.map(\.id) == items)
        #expect(claimed.map(\.attempts) == [2, 2, 1])
    }
}
