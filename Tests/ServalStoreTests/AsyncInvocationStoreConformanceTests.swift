import ServalCore
import ServalStore
import Testing

// MARK: Fixtures

/// A queued invocation accepted at `createdAt` (ms), expiring `ttl` ms later.
func makeInvocation(
    _ id: String, endpoint: String = "ep", createdAt: Int64 = 1_000, ttl: Int64 = 60_000, inline: Bool = false
) -> AsyncInvocation {
    AsyncInvocation(
        id: id, endpointName: endpoint, inputLocation: inline ? nil : "s3://inputs/\(id).json",
        contentType: "application/json", accept: "application/json", customAttributes: "trace=\(id)",
        outputLocation: "s3://outputs/\(endpoint)/\(id).out", failureLocation: "s3://failures/\(endpoint)/\(id).out",
        maxAttempts: 3, invocationTimeoutSeconds: 900, createdAt: timestamp(createdAt), updatedAt: timestamp(createdAt),
        expiresAt: timestamp(createdAt + ttl))
}

/// A webhook notification whose body names `id`.
func makeNotification(_ id: String, url: String = "http://hooks.local/ok", signature: String? = nil) -> NewAsyncNotification {
    NewAsyncNotification(url: url, body: Array("{\"inferenceId\":\"\(id)\"}".utf8), signature: signature)
}

extension AsyncInvocationStore {
    /// Enqueues invocations one after another, so that their order is the queue's.
    func enqueue(_ invocations: [AsyncInvocation]) async throws {
        for invocation in invocations {
            let (_, created) = try await enqueueAsyncInvocation(invocation, inlineBody: nil)
            #expect(created)
        }
    }

    /// Claims from the queue with the owner "A", a lease until 10,000 and `now` 2,000, unless told otherwise.
    func claim(
        _ endpoint: String = "ep", owner: String = "A", limit: Int = 100, now: Int64 = 2_000, leaseUntil: Int64 = 10_000
    ) async throws -> [AsyncInvocation] {
        try await asyncInvocationQueue.claim(
            in: endpoint, owner: owner, limit: limit, now: timestamp(now), leaseUntil: timestamp(leaseUntil),
            overdueOnly: false)
    }

    /// Ends an invocation through the queue, as the owner "A" unless told otherwise.
    func finish(
        _ id: String, endpoint: String = "ep", owner: String = "A", _ outcome: AsyncOutcome, variant: String? = nil,
        now: Int64, notifications: [NewAsyncNotification] = []
    ) async throws -> Bool {
        try await asyncInvocationQueue.finish(
            in: endpoint, id: id, owner: owner,
            completion: AsyncInvocationEnd(outcome, variant: variant, notifications: notifications), now: timestamp(now))
    }

    /// Every page of the endpoint's listing with `filter`, following the tokens.
    func allPages(_ endpoint: String, _ filter: AsyncInvocationFilter) async throws -> [[AsyncInvocation]] {
        var filter = filter
        var pages: [[AsyncInvocation]] = []
        repeat {
            let (page, token) = try await asyncInvocations(endpoint: endpoint, filter: filter)
            pages.append(page)
            filter.nextToken = token
        } while filter.nextToken != nil && pages.count < 100
        return pages
    }
}

// MARK: The suite

/// The behaviour of the asynchronous invocation queue that every ``MetadataStore`` must have.
@Suite("AsyncInvocationStore conformance")
struct AsyncInvocationStoreConformanceTests {
    // MARK: Enqueue

    @Test("an inline body's digest is kept with the invocation; the same id with another body returns the first", arguments: StoreKind.allCases)
    func inlineBodyDigest(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            var first = makeInvocation("d", inline: true)
            first.inlineBodySHA256 = String(repeating: "a", count: 64)
            #expect(try await store.enqueueAsyncInvocation(first, inlineBody: [1]).created)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "d")?.inlineBodySHA256 == first.inlineBodySHA256)

            var other = makeInvocation("d", inline: true)
            other.inlineBodySHA256 = String(repeating: "b", count: 64)
            let (existing, created) = try await store.enqueueAsyncInvocation(other, inlineBody: [2])
            #expect(!created)
            #expect(existing.inlineBodySHA256 == first.inlineBodySHA256)
            #expect(try await store.asyncInvocationInlineBody(endpoint: "ep", id: "d") == [1])

            // The digest survives the invocation's life: claimed and ended, it is still there.
            let claimed = try await store.claim()
            #expect(claimed.map(\.inlineBodySHA256) == [first.inlineBodySHA256])
            #expect(
                try await store.finish("d", .completed(outputContentType: "application/json"), variant: "v", now: 3_000))
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "d")?.inlineBodySHA256 == first.inlineBodySHA256)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "d")?.status == .completed)
        }
    }

    @Test("enqueue commits an invocation; the same id again returns the first one", arguments: StoreKind.allCases)
    func enqueueIsIdempotent(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "a") == nil)
            let first = makeInvocation("a")
            let (stored, created) = try await store.enqueueAsyncInvocation(first, inlineBody: nil)
            #expect(created)
            #expect(stored == first)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "a") == first)

            // A retry of the submission with other details is the same invocation, unchanged.
            var retry = makeInvocation("a", createdAt: 5_000)
            retry.contentType = "text/csv"
            let (existing, createdAgain) = try await store.enqueueAsyncInvocation(retry, inlineBody: [1, 2, 3])
            #expect(createdAgain == false)
            #expect(existing == first)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "a") == first)
            #expect(try await store.asyncInvocationInlineBody(endpoint: "ep", id: "a") == nil)

            // The same id on another endpoint is another invocation.
            let elsewhere = makeInvocation("a", endpoint: "other", createdAt: 7_000)
            let (other, createdElsewhere) = try await store.enqueueAsyncInvocation(elsewhere, inlineBody: nil)
            #expect(createdElsewhere)
            #expect(other == elsewhere)
            #expect(try await store.asyncInvocation(endpoint: "other", id: "a") == elsewhere)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "a") == first)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "A") == nil)
            #expect(try await store.asyncInvocations(endpoint: "ep", filter: .init()).invocations == [first])
        }
    }

    @Test("the inline body round-trips byte for byte", arguments: StoreKind.allCases)
    func inlineBody(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let body = (0..<AsyncLimits.maxInlineBodyBytes).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            _ = try await store.enqueueAsyncInvocation(makeInvocation("big", inline: true), inlineBody: body)
            _ = try await store.enqueueAsyncInvocation(makeInvocation("empty", inline: true), inlineBody: [])
            _ = try await store.enqueueAsyncInvocation(makeInvocation("s3"), inlineBody: nil)
            #expect(try await store.asyncInvocationInlineBody(endpoint: "ep", id: "big") == body)
            #expect(try await store.asyncInvocationInlineBody(endpoint: "ep", id: "empty") == [])
            #expect(try await store.asyncInvocationInlineBody(endpoint: "ep", id: "s3") == nil)
            #expect(try await store.asyncInvocationInlineBody(endpoint: "ep", id: "missing") == nil)
            #expect(try await store.asyncInvocationInlineBody(endpoint: "other", id: "big") == nil)
            // Claiming and ending the invocation keeps the body.
            _ = try await store.claim()
            #expect(try await store.asyncInvocationInlineBody(endpoint: "ep", id: "big") == body)
        }
    }

    // MARK: The queue

    @Test(
        "the queue keeps each invocation's record in step: claims, releases and rescues", arguments: StoreKind.allCases)
    func queueSteps(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            // Queue order is the order of acceptance, whatever the timestamps say.
            let queued = (0..<3).map { makeInvocation("inv-\($0)", createdAt: 1_000 - Int64($0)) }
            try await store.enqueue(queued)
            let claimed = try await store.claim(limit: 2, now: 2_000, leaseUntil: 9_000)
            #expect(claimed.map(\.id) == ["inv-0", "inv-1"])
            for (claimed, original) in zip(claimed, queued) {
                var expected = original
                expected.status = .inProgress
                expected.attempts = 1
                expected.startedAt = timestamp(2_000)
                expected.updatedAt = timestamp(2_000)
                #expect(claimed == expected)
                #expect(try await store.asyncInvocation(endpoint: "ep", id: claimed.id) == expected)
            }

            // Released, it is queued again as of the release.
            #expect(
                try await store.asyncInvocationQueue.release(
                    in: "ep", id: "inv-0", owner: "A", now: timestamp(2_500), countAttempt: false))
            var released = queued[0]
            released.startedAt = timestamp(2_000)
            released.updatedAt = timestamp(2_500)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "inv-0") == released)

            // Rescued, its attempt counts.
            #expect(try await store.asyncInvocationQueue.rescueExpired(now: timestamp(9_001)) == 1)
            var rescued = claimed[1]
            rescued.status = .queued
            rescued.updatedAt = timestamp(9_001)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "inv-1") == rescued)
            #expect(try await store.claim(limit: 10, now: 9_100).map(\.attempts) == [1, 2, 1])
        }
    }

    @Test("finishing records the outcome, and the notifications only when it finishes", arguments: StoreKind.allCases)
    func finishOutcomes(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.enqueue([makeInvocation("ok"), makeInvocation("bad"), makeInvocation("late")])
            _ = try await store.claim(limit: 3, now: 2_000)
            let before = try #require(try await store.asyncInvocation(endpoint: "ep", id: "ok"))

            // Refused (not B's lease): no notification either.
            #expect(
                try await store.finish(
                    "ok", owner: "B", .completed(outputContentType: "text/plain"), variant: "v1", now: 3_000,
                    notifications: [makeNotification("ok")]) == false)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "ok") == before)
            #expect(try await store.nextAsyncNotificationDue() == nil)

            #expect(
                try await store.finish(
                    "ok", .completed(outputContentType: "text/plain"), variant: "v1", now: 3_000,
                    notifications: [makeNotification("ok")]))
            var completed = before
            completed.status = .completed
            completed.outputContentType = "text/plain"
            completed.variant = "v1"
            completed.completedAt = timestamp(3_000)
            completed.updatedAt = timestamp(3_000)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "ok") == completed)
            #expect(try await store.dueAsyncNotifications(now: timestamp(3_000), limit: 10).map(\.inferenceId) == ["ok"])

            #expect(try await store.finish("bad", .failed(reason: "ValueError: bad input"), variant: "v2", now: 3_100))
            let bad = try #require(try await store.asyncInvocation(endpoint: "ep", id: "bad"))
            #expect(bad.status == .failed)
            #expect(bad.failureReason == "ValueError: bad input")
            #expect(bad.outputContentType == nil)
            #expect(bad.variant == "v2")
            #expect(bad.completedAt == timestamp(3_100))

            #expect(try await store.finish("late", .expired(reason: "It waited past its TTL."), now: 3_200))
            let late = try #require(try await store.asyncInvocation(endpoint: "ep", id: "late"))
            #expect(late.status == .expired)
            #expect(late.failureReason == "It waited past its TTL.")
            #expect(late.variant == nil)

            // Once: a second end changes nothing and records no notification.
            #expect(
                try await store.finish(
                    "ok", .failed(reason: "again"), now: 4_000, notifications: [makeNotification("ok")]) == false)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "ok") == completed)
            #expect(try await store.dueAsyncNotifications(now: timestamp(Int64.max), limit: 10).count == 1)
        }
    }

    // MARK: Cancel

    @Test("only a queued invocation can be cancelled", arguments: StoreKind.allCases)
    func cancel(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.enqueue([makeInvocation("running"), makeInvocation("waiting")])
            _ = try await store.claim(limit: 1)
            #expect(
                try await store.cancelAsyncInvocation(
                    endpoint: "ep", id: "nope", reason: "x", now: timestamp(3_000), notifications: []) == nil)

            let error = await expectServalError(.conflict) {
                _ = try await store.cancelAsyncInvocation(
                    endpoint: "ep", id: "running", reason: "x", now: timestamp(3_000), notifications: [makeNotification("running")])
            }
            #expect(error?.message.contains("is InProgress; only a queued invocation can be cancelled.") == true)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "running")?.status == .inProgress)
            #expect(try await store.nextAsyncNotificationDue() == nil)

            let cancelled = try #require(
                try await store.cancelAsyncInvocation(
                    endpoint: "ep", id: "waiting", reason: "Cancelled by the user.", now: timestamp(3_000),
                    notifications: [makeNotification("waiting")]))
            var expected = makeInvocation("waiting")
            expected.status = .failed
            expected.failureReason = "Cancelled by the user."
            expected.completedAt = timestamp(3_000)
            expected.updatedAt = timestamp(3_000)
            #expect(cancelled == expected)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "waiting") == expected)
            #expect(try await store.dueAsyncNotifications(now: timestamp(3_000), limit: 10).map(\.inferenceId) == ["waiting"])
            #expect(try await store.claim().isEmpty)

            let again = await expectServalError(.conflict) {
                _ = try await store.cancelAsyncInvocation(
                    endpoint: "ep", id: "waiting", reason: "x", now: timestamp(4_000), notifications: [])
            }
            #expect(again?.message.contains("is Failed") == true)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "waiting") == expected)
        }
    }

    // MARK: Listing

    @Test("listing: newest first, filters, pages that follow their tokens", arguments: StoreKind.allCases)
    func listing(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.asyncInvocations(endpoint: "ep", filter: .init()) == ([], nil))
            let all = (0..<25).map { makeInvocation("inv-" + ($0 < 10 ? "0" : "") + String($0), createdAt: 1_000 + Int64($0) * 10) }
            try await store.enqueue(all)
            try await store.enqueue([makeInvocation("inv-00", endpoint: "other")])
            // The five oldest run.
            _ = try await store.claim(limit: 5)
            let newestFirst = try await all.reversed().asyncMap { try #require(try await store.asyncInvocation(endpoint: "ep", id: $0.id)) }

            let pages = try await store.allPages("ep", .init(limit: 10))
            #expect(pages.map(\.count) == [10, 10, 5])
            #expect(pages.flatMap { $0 } == newestFirst)
            // A page that ends exactly at the end has no token.
            #expect(try await store.asyncInvocations(endpoint: "ep", filter: .init(limit: 25)).nextToken == nil)
            #expect(try await store.allPages("ep", .init(limit: 5)).count == 5)

            let running = try await store.allPages("ep", .init(status: .inProgress, limit: 2))
            #expect(running.flatMap { $0 }.map(\.id) == ["inv-04", "inv-03", "inv-02", "inv-01", "inv-00"])
            let queued = try await store.allPages("ep", .init(status: .queued, limit: 1000)).flatMap { $0 }
            #expect(queued == Array(newestFirst.prefix(20)))
            #expect(try await store.asyncInvocations(endpoint: "ep", filter: .init(status: .completed)).invocations.isEmpty)

            // createdAfter is inclusive, createdBefore exclusive.
            let window = try await store.allPages(
                "ep", .init(createdAfter: timestamp(1_050), createdBefore: timestamp(1_100), limit: 2))
            #expect(window.flatMap { $0 }.map(\.id) == ["inv-09", "inv-08", "inv-07", "inv-06", "inv-05"])
            let window2 = try await store.allPages(
                "ep", .init(status: .inProgress, createdAfter: timestamp(1_030), limit: 1))
            #expect(window2.flatMap { $0 }.map(\.id) == ["inv-04", "inv-03"])

            // Invocations accepted between pages do not shift the pages that follow.
            let (first, token) = try await store.asyncInvocations(endpoint: "ep", filter: .init(limit: 10))
            try await store.enqueue([makeInvocation("newer", createdAt: 9_999)])
            let (second, _) = try await store.asyncInvocations(endpoint: "ep", filter: .init(limit: 10, nextToken: token))
            #expect(first + second == Array(newestFirst.prefix(20)))
            #expect(try await store.asyncInvocations(endpoint: "ep", filter: .init(limit: 1)).invocations.map(\.id) == ["newer"])
            #expect(try await store.asyncInvocations(endpoint: "other", filter: .init()).invocations.map(\.id) == ["inv-00"])

            for limit in [0, -1, 1001] {
                let error = await expectServalError(.validationError) {
                    _ = try await store.asyncInvocations(endpoint: "ep", filter: .init(limit: limit))
                }
                #expect(error?.message.contains("limit") == true)
            }
            for token in ["", "abc", "-3", "0", "12x", "99999999999999999999"] {
                let error = await expectServalError(.validationError) {
                    _ = try await store.asyncInvocations(endpoint: "ep", filter: .init(nextToken: token))
                }
                #expect(error?.message.contains("nextToken") == true)
            }
        }
    }

    @Test("queue depth per endpoint counts queued and running invocations", arguments: StoreKind.allCases)
    func queueDepth(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.queuedAsyncCounts().isEmpty)
            try await store.enqueue((0..<3).map { makeInvocation("a-\($0)", endpoint: "a") })
            try await store.enqueue([makeInvocation("b-0", endpoint: "b"), makeInvocation("c-0", endpoint: "c")])
            _ = try await store.claim("a", limit: 1)
            _ = try await store.claim("c", limit: 1)
            #expect(
                try await store.queuedAsyncCounts() == [
                    "a": AsyncQueueDepth(queued: 2, inProgress: 1), "b": AsyncQueueDepth(queued: 1, inProgress: 0),
                    "c": AsyncQueueDepth(queued: 0, inProgress: 1),
                ])
            _ = try await store.cancelAsyncInvocation(endpoint: "b", id: "b-0", reason: "x", now: timestamp(3_000), notifications: [])
            #expect(
                try await store.finish("c-0", endpoint: "c", .completed(outputContentType: "x"), now: 3_000))
            #expect(try await store.queuedAsyncCounts() == ["a": AsyncQueueDepth(queued: 2, inProgress: 1)])
        }
    }

    // MARK: Notifications

    @Test("notifications: recorded with the end, due oldest first, retried, delivered", arguments: StoreKind.allCases)
    func notificationsOutbox(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.nextAsyncNotificationDue() == nil)
            #expect(try await store.dueAsyncNotifications(now: timestamp(Int64.max), limit: 10).isEmpty)
            try await store.enqueue([makeInvocation("done"), makeInvocation("gone")])
            _ = try await store.claim(limit: 1)
            #expect(
                try await store.finish(
                    "done", .completed(outputContentType: "x"), variant: "v", now: 5_000,
                    notifications: [
                        makeNotification("done", url: "http://hooks.local/ok", signature: "sha256=abc"),
                        makeNotification("done", url: "http://hooks.local/audit"),
                    ]))
            _ = try await store.cancelAsyncInvocation(
                endpoint: "ep", id: "gone", reason: "x", now: timestamp(6_000),
                notifications: [makeNotification("gone", url: "http://hooks.local/err")])

            #expect(try await store.nextAsyncNotificationDue() == timestamp(5_000))
            #expect(try await store.dueAsyncNotifications(now: timestamp(4_999), limit: 10).isEmpty)
            #expect(try await store.dueAsyncNotifications(now: timestamp(5_000), limit: 10).count == 2)
            let due = try await store.dueAsyncNotifications(now: timestamp(6_000), limit: 10)
            #expect(due.map(\.url) == ["http://hooks.local/ok", "http://hooks.local/audit", "http://hooks.local/err"])
            #expect(due.map(\.inferenceId) == ["done", "done", "gone"])
            #expect(due.allSatisfy { $0.endpointName == "ep" && $0.attempts == 0 })
            #expect(due.map(\.nextAttemptAt) == [timestamp(5_000), timestamp(5_000), timestamp(6_000)])
            #expect(due.map(\.signature) == ["sha256=abc", nil, nil])
            #expect(due.allSatisfy { $0.lastError == nil })
            #expect(due[0].body == makeNotification("done").body)
            #expect(due[0].sequence < due[1].sequence && due[1].sequence < due[2].sequence)
            #expect(try await store.dueAsyncNotifications(now: timestamp(6_000), limit: 1).map(\.sequence) == [due[0].sequence])
            #expect(try await store.dueAsyncNotifications(now: timestamp(6_000), limit: 0).isEmpty)

            // The first answers 500: tried again later; the others are delivered.
            try await store.asyncNotificationFailed(
                sequence: due[0].sequence, nextAttemptAt: timestamp(9_000), reason: "the receiver answered 500")
            #expect(try await store.dueAsyncNotifications(now: timestamp(6_000), limit: 10).map(\.sequence) == [due[1].sequence, due[2].sequence])
            try await store.asyncNotificationDelivered(sequence: due[1].sequence)
            #expect(try await store.nextAsyncNotificationDue() == timestamp(6_000))
            try await store.asyncNotificationDelivered(sequence: due[2].sequence)
            #expect(try await store.nextAsyncNotificationDue() == timestamp(9_000))
            #expect(try await store.dueAsyncNotifications(now: timestamp(8_999), limit: 10).isEmpty)

            #expect(try await store.dueAsyncNotifications(now: timestamp(9_000), limit: 10).map(\.lastError) == ["the receiver answered 500"])

            // Each failure replaces the reason of the one before.
            try await store.asyncNotificationFailed(
                sequence: due[0].sequence, nextAttemptAt: timestamp(12_000), reason: "the receiver answered 302, a redirect to \"http://elsewhere/\"")
            let retried = try await store.dueAsyncNotifications(now: timestamp(12_000), limit: 10)
            var expected = due[0]
            expected.attempts = 2
            expected.nextAttemptAt = timestamp(12_000)
            expected.lastError = "the receiver answered 302, a redirect to \"http://elsewhere/\""
            #expect(retried == [expected])
            try await store.asyncNotificationDelivered(sequence: due[0].sequence)
            // Delivering twice (at least once) is harmless.
            try await store.asyncNotificationDelivered(sequence: due[0].sequence)
            #expect(try await store.nextAsyncNotificationDue() == nil)
            #expect(try await store.dueAsyncNotifications(now: timestamp(Int64.max), limit: 10).isEmpty)
        }
    }

    // MARK: Durability

    @Test("the queue, its leases and the outbox survive reopening the database", arguments: StoreKind.allCases)
    func survivesReopen(kind: StoreKind) async throws {
        try await withStore(kind) { store, backend in
            let body: [UInt8] = Array("{\"rows\":[[1,2,3]]}".utf8)
            _ = try await store.enqueueAsyncInvocation(makeInvocation("inline", inline: true), inlineBody: body)
            try await store.enqueue(["done", "running", "waiting", "cancelled"].map { makeInvocation($0) })
            _ = try await store.claim(limit: 3, leaseUntil: 10_000)
            #expect(
                try await store.finish(
                    "done", .completed(outputContentType: "text/csv"), variant: "v1", now: 3_000,
                    notifications: [makeNotification("done")]))
            _ = try await store.cancelAsyncInvocation(
                endpoint: "ep", id: "cancelled", reason: "Cancelled.", now: timestamp(3_500), notifications: [])
            let before = try await store.asyncInvocations(endpoint: "ep", filter: .init())
            let notifications = try await store.dueAsyncNotifications(now: timestamp(3_000), limit: 10)

            let reopened = try backend.open()
            #expect(try await reopened.asyncInvocations(endpoint: "ep", filter: .init()) == before)
            #expect(try await reopened.asyncInvocationInlineBody(endpoint: "ep", id: "inline") == body)
            #expect(try await reopened.dueAsyncNotifications(now: timestamp(3_000), limit: 10) == notifications)
            #expect(notifications.count == 1)
            #expect(try await reopened.queuedAsyncCounts() == ["ep": AsyncQueueDepth(queued: 1, inProgress: 2)])
            // The leases survive (the leased queue's suite checks renewals); rescued, they go back in their place.
            #expect(try await reopened.asyncInvocationQueue.rescueExpired(now: timestamp(10_001)) == 2)
            // Idempotency and queue order survive too: the re-queued ones come before a new one.
            #expect(try await reopened.enqueueAsyncInvocation(makeInvocation("done"), inlineBody: nil).created == false)
            try await reopened.enqueue([makeInvocation("new")])
            #expect(try await reopened.claim(owner: "B", limit: 10).map(\.id) == ["inline", "running", "waiting", "new"])
            #expect(try await reopened.asyncInvocations(endpoint: "ep", filter: .init(limit: 1)).invocations.map(\.id) == ["new"])
        }
    }
}

extension Sequence {
    /// The results of `transform` on each element, in order.
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { try await results.append(transform(element)) }
        return results
    }
}
