public import ServalCore

/// Work that a ``LeasedQueue`` hands out under leases: asynchronous invocations (partitioned by endpoint) and
/// transform units (partitioned by job).
public protocol LeasedWork: Sendable {
    /// Names an item within its partition.
    associatedtype ID: Hashable, Sendable
    /// What finishing an item records besides ending its lease (its outcome, its counts).
    associatedtype Completion: Sendable

    /// The item's name within its partition.
    var id: ID { get }
    /// How many times it has been claimed, less the claims released without counting.
    var attempts: Int { get }
}

/// A durable queue of work that processes take under leases: an owner (unique per process start) and an expiry.
///
/// Each item is *waiting*, *leased* or *finished*. ``claim(in:owner:limit:now:leaseUntil:overdueOnly:)`` leases
/// waiting items, counting an attempt; the owner renews its leases while it works; only the lease's owner can
/// ``finish(in:id:owner:completion:now:)`` an item or ``release(in:id:owner:now:countAttempt:)`` it back to the
/// queue. A process that dies or stalls loses its items when their leases end: ``rescueExpired(now:)`` puts them
/// back, their attempt counted, and the stalled owner can no longer finish them, so whatever finishing records is
/// recorded once. What an item's attempts allow (async invocations fail after `maxAttempts`) is for the queue's user
/// to decide when it claims the item again.
///
/// Every method is one transaction and reads no clock. A lease ending exactly at `now` still holds. The PostgreSQL
/// store implements it once, as the SQLite store does, and passes the same conformance suite in `ServalStoreTests`.
public protocol LeasedQueue<Work>: Sendable {
    /// The kind of work.
    associatedtype Work: LeasedWork

    /// Leases up to `limit` waiting items of `partition` to `owner` until `leaseUntil`, in queue order, each with one
    /// attempt more; returns them as they are now. A `limit` below 1 claims nothing; so does a partition whose work
    /// may not start (a transform job that is not `InProgress`).
    ///
    /// With `overdueOnly`, only items whose start deadline is before `now` are claimed (an async invocation's
    /// `expiresAt`, so that it can be ended as expired while its endpoint has no room); work without a deadline
    /// (transform units) is never overdue.
    func claim(
        in partition: String, owner: String, limit: Int, now: Timestamp, leaseUntil: Timestamp, overdueOnly: Bool
    ) async throws -> [Work]

    /// Extends the leases `owner` holds on these items of `partition` to `until`; returns the ids whose lease
    /// `owner` no longer holds (rescued, released, finished, claimed by another owner, or unknown).
    func renew(in partition: String, ids: [Work.ID], owner: String, until: Timestamp) async throws -> Set<Work.ID>

    /// Puts a leased item back in the queue, if `owner` still holds its lease. Returns whether it did.
    ///
    /// With `countAttempt` false the attempt is taken back (the item was not tried: its workers were full, or the
    /// process is stopping); with `true` it stays counted (a worker crashed under it).
    func release(in partition: String, id: Work.ID, owner: String, now: Timestamp, countAttempt: Bool) async throws -> Bool

    /// Finishes a leased item with `completion`, if `owner` still holds its lease, recording what the completion
    /// says in the same transaction. Returns whether it did; when it did not, nothing changed.
    func finish(
        in partition: String, id: Work.ID, owner: String, completion: Work.Completion, now: Timestamp
    ) async throws -> Bool

    /// Puts every leased item, of any partition, whose lease ended before `now` back in the queue (its owner died or
    /// stalled), its attempt counted. Returns how many it put back.
    func rescueExpired(now: Timestamp) async throws -> Int
}
