public import ServalCore

/// Filters for listing an endpoint's asynchronous invocations, newest first.
public struct AsyncInvocationFilter: Sendable, Equatable {
    /// Only invocations with this status.
    public var status: AsyncInvocationStatus?
    /// Only invocations accepted at or after this time.
    public var createdAfter: Timestamp?
    /// Only invocations accepted before this time.
    public var createdBefore: Timestamp?
    /// At most this many (1...1000).
    public var limit: Int
    /// The `nextToken` of the previous page.
    public var nextToken: String?

    /// Creates a filter.
    public init(
        status: AsyncInvocationStatus? = nil, createdAfter: Timestamp? = nil, createdBefore: Timestamp? = nil,
        limit: Int = 100, nextToken: String? = nil
    ) {
        self.status = status
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
        self.limit = limit
        self.nextToken = nextToken
    }
}

/// How a claimed invocation ended.
public enum AsyncOutcome: Sendable, Equatable {
    /// The output is written; it has this content type.
    case completed(outputContentType: String)
    /// It failed; the reason is for the user.
    case failed(reason: String)
    /// It waited past its TTL.
    case expired(reason: String)
}

/// How a claimed invocation ends: what the queue's ``LeasedQueue/finish(in:id:owner:completion:now:)`` records.
public struct AsyncInvocationEnd: Sendable, Equatable {
    /// The outcome.
    public var outcome: AsyncOutcome
    /// The variant that ran it, if one did (`nil` keeps the one recorded).
    public var variant: String?
    /// The webhook notifications to record with the end.
    public var notifications: [NewAsyncNotification]

    /// Creates an end.
    public init(_ outcome: AsyncOutcome, variant: String? = nil, notifications: [NewAsyncNotification] = []) {
        self.outcome = outcome
        self.variant = variant
        self.notifications = notifications
    }
}

extension AsyncInvocation: LeasedWork {
    /// How a claimed invocation ends.
    public typealias Completion = AsyncInvocationEnd
}

/// A webhook notification to record in the same transaction as an invocation's end.
public struct NewAsyncNotification: Sendable, Equatable {
    /// Where to POST it.
    public var url: String
    /// The JSON body.
    public var body: [UInt8]
    /// The `X-Serval-Signature` header, when the endpoint's config has a webhook secret.
    public var signature: String?

    /// Creates one.
    public init(url: String, body: [UInt8], signature: String? = nil) {
        self.url = url
        self.body = body
        self.signature = signature
    }
}

/// How many of an endpoint's asynchronous invocations wait and run.
public struct AsyncQueueDepth: Sendable, Equatable {
    /// How many are `Queued`.
    public var queued: Int
    /// How many are `InProgress`.
    public var inProgress: Int

    /// Creates a count.
    public init(queued: Int, inProgress: Int) {
        self.queued = queued
        self.inProgress = inProgress
    }
}

/// The durable queue of asynchronous invocations and their webhook outbox.
///
/// An invocation is committed by ``enqueueAsyncInvocation(_:inlineBody:)`` before Serval answers 202. A
/// dispatcher claims queued ones from ``asyncInvocationQueue`` under a lease (owner + expiry) and renews it while the
/// model runs; only the lease's owner can end the invocation, so a dispatcher that lost its lease (it stalled, or its
/// process died and the rescuer re-queued the work) cannot overwrite a newer attempt's outcome. Every method is one
/// transaction. Implementations pass the shared conformance suites in `ServalStoreTests` (the leased queue's and this
/// protocol's).
public protocol AsyncInvocationStore: Sendable {
    /// Commits a new invocation, with its inline body when it has one. When the endpoint already has an
    /// invocation with this id, nothing is written and that one is returned with `created == false`.
    func enqueueAsyncInvocation(
        _ invocation: AsyncInvocation, inlineBody: [UInt8]?
    ) async throws -> (invocation: AsyncInvocation, created: Bool)

    /// The invocation, if any.
    func asyncInvocation(endpoint: String, id: String) async throws -> AsyncInvocation?

    /// The inline body stored with the invocation, if it had one.
    func asyncInvocationInlineBody(endpoint: String, id: String) async throws -> [UInt8]?

    /// A page of the endpoint's invocations, newest first, and the token of the next page (`nil` at the end).
    /// Throws ``ServalError/Code/validationError`` when the limit is outside 1...1000 or the token is not one
    /// this method returned.
    func asyncInvocations(
        endpoint: String, filter: AsyncInvocationFilter
    ) async throws -> (invocations: [AsyncInvocation], nextToken: String?)

    /// The queue of invocations, partitioned by endpoint name, in the order they were accepted; their deadline is
    /// `expiresAt`.
    ///
    /// A claim makes an invocation `InProgress` with `attempts + 1`, `startedAt` and `updatedAt` set to `now`.
    /// Releasing or rescuing it makes it `Queued` again with `updatedAt = now` (rescued, its attempt stays counted, so
    /// an input that kills every worker ends `Failed` after `maxAttempts`). Finishing it with an
    /// ``AsyncInvocationEnd`` sets its status (`Completed`, `Failed` or `Expired`), its output content type or
    /// failure reason, its variant when one is given, `completedAt` and `updatedAt`, and records the end's
    /// notifications, due at `now`, in the same transaction.
    var asyncInvocationQueue: any LeasedQueue<AsyncInvocation> { get }

    /// Ends a `Queued` invocation as `Failed` with `reason` and records `notifications`. Returns the updated
    /// invocation, or `nil` when it does not exist. Throws ``ServalError/Code/conflict`` when it is no longer
    /// queued.
    func cancelAsyncInvocation(
        endpoint: String, id: String, reason: String, now: Timestamp, notifications: [NewAsyncNotification]
    ) async throws -> AsyncInvocation?

    /// The endpoints that have `Queued` or `InProgress` invocations, each with how many of both (for dispatchers
    /// and the queue-depth metric). Endpoints with neither are absent.
    func queuedAsyncCounts() async throws -> [String: AsyncQueueDepth]

    /// Up to `limit` notifications due at `now`, oldest first.
    func dueAsyncNotifications(now: Timestamp, limit: Int) async throws -> [AsyncNotification]

    /// Removes a delivered notification.
    func asyncNotificationDelivered(sequence: Int64) async throws

    /// Records a failed delivery: `attempts + 1`, the next try at `nextAttemptAt`, and why it failed (kept as
    /// the notification's `lastError`).
    func asyncNotificationFailed(sequence: Int64, nextAttemptAt: Timestamp, reason: String) async throws

    /// The next time a notification is due, if any is pending.
    func nextAsyncNotificationDue() async throws -> Timestamp?
}
