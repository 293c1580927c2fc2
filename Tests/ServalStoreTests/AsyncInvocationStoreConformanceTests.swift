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

    /// Claims with the owner "A", a lease until 10,000 and `now` 2,000, unless told otherwise.
    func claim(
        _ endpoint: String = "ep", owner: String = "A", limit: Int = 100, now: Int64 = 2_000, leaseUntil: Int64 = 10_000,
        expiredOnly: Bool = false
    ) async throws -> [AsyncInvocation] {
        try await claimAsyncInvocations(
            endpoint: endpoint, owner: owner, limit: limit, now: timestamp(now), leaseUntil: timestamp(leaseUntil),
            expiredOnly: expiredOnly)
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
                try await store.finishAsyncInvocation(
                    endpoint: "ep", id: "d", owner: "A", outcome: .completed(outputContentType: "application/json"), variant: "v",
                    now: timestamp(3_000), notifications: []))
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

    // MARK: Claims

    @Test("claims take the endpoint's oldest queued invocations, up to the limit", arguments: StoreKind.allCases)
    func claimOrderAndLimit(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            // Queue order is the order of acceptance, whatever the timestamps say.
            let queued = (0..<5).map { makeInvocation("inv-\($0)", createdAt: 1_000 - Int64($0)) }
            try await store.enqueue(queued)
            try await store.enqueue([makeInvocation("x", endpoint: "other")])

            #expect(try await store.claim(limit: 0).isEmpty)
            let first = try await store.claim(limit: 2, now: 2_000, leaseUntil: 9_000)
            #expect(first.map(\.id) == ["inv-0", "inv-1"])
            for (claimed, original) in zip(first, queued) {
                var expected = original
                expected.status = .inProgress
                expected.attempts = 1
                expected.startedAt = timestamp(2_000)
                expected.updatedAt = timestamp(2_000)
                #expect(claimed == expected)
                #expect(try await store.asyncInvocation(endpoint: "ep", id: claimed.id) == expected)
            }

            let rest = try await store.claim(owner: "B", limit: 10)
            #expect(rest.map(\.id) == ["inv-2", "inv-3", "inv-4"])
            #expect(try await store.claim(limit: 10).isEmpty)
            // The other endpoint's invocation was never touched.
            #expect(try await store.asyncInvocation(endpoint: "other", id: "x")?.status == .queued)
            #expect(try await store.claim("other").map(\.id) == ["x"])
        }
    }

    @Test("an expired-only claim takes only invocations past their TTL, oldest first", arguments: StoreKind.allCases)
    func claimExpiredOnly(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.enqueue([
                makeInvocation("a", createdAt: 0, ttl: 100),
                makeInvocation("b", createdAt: 0, ttl: 300),
                makeInvocation("c", createdAt: 0, ttl: 200),
                makeInvocation("d", createdAt: 0, ttl: 250),
            ])
            #expect(try await store.claim(now: 100, expiredOnly: true).isEmpty)
            // d expires exactly at 250: not before now.
            let expired = try await store.claim(now: 250, expiredOnly: true)
            #expect(expired.map(\.id) == ["a", "c"])
            #expect(expired.allSatisfy { $0.status == .inProgress && $0.attempts == 1 })
            #expect(try await store.claim(limit: 10, now: 250).map(\.id) == ["b", "d"])
        }
    }

    @Test("two dispatchers claiming at once never get the same invocation", arguments: StoreKind.allCases)
    func concurrentClaims(kind: StoreKind) async throws {
        try await withStore(kind) { store, backend in
            let ids = (0..<200).map { "inv-\($0)" }
            try await store.enqueue(ids.map { makeInvocation($0) })
            // One claimer on this store, one on another store on the same data (like a second process).
            let other = try backend.open()
            async let first = Self.claimAll(store, owner: "A")
            async let second = Self.claimAll(other, owner: "B")
            let (a, b) = try await (first, second)
            #expect(Set(a).isDisjoint(with: b))
            #expect(Set(a).union(b) == Set(ids))
            #expect(a.count + b.count == ids.count)
            let listed = try await store.asyncInvocations(endpoint: "ep", filter: .init(limit: 1000)).invocations
            #expect(listed.allSatisfy { $0.status == .inProgress && $0.attempts == 1 })
        }
    }

    /// Claims in small batches until the queue is empty; returns the ids claimed.
    private static func claimAll(_ store: any MetadataStore, owner: String) async throws -> [String] {
        var claimed: [String] = []
        while true {
            let batch = try await store.claim(owner: owner, limit: 7)
            if batch.isEmpty { return claimed }
            claimed += batch.map(\.id)
        }
    }

    // MARK: Leases

    @Test("the owner renews its leases and learns which ones it lost", arguments: StoreKind.allCases)
    func leaseRenewal(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.enqueue([makeInvocation("x"), makeInvocation("y"), makeInvocation("z")])
            _ = try await store.claim(limit: 2, leaseUntil: 1_000)
            #expect(try await store.renewAsyncLeases(endpoint: "ep", ids: [], owner: "A", until: timestamp(2_000)) == [])
            // z is queued, nope does not exist, and the leases are not B's.
            #expect(
                try await store.renewAsyncLeases(
                    endpoint: "ep", ids: ["x", "y", "z", "nope"], owner: "A", until: timestamp(2_000)) == ["z", "nope"])
            #expect(
                try await store.renewAsyncLeases(endpoint: "ep", ids: ["x", "y"], owner: "B", until: timestamp(9_000))
                    == ["x", "y"])
            #expect(
                try await store.renewAsyncLeases(endpoint: "other", ids: ["x"], owner: "A", until: timestamp(9_000))
                    == ["x"])

            // Renewed until 2,000: nothing to rescue at 1,500; both at 2,001.
            #expect(try await store.requeueExpiredAsyncLeases(now: timestamp(1_500)) == 0)
            #expect(try await store.requeueExpiredAsyncLeases(now: timestamp(2_001)) == 2)
            #expect(
                try await store.renewAsyncLeases(endpoint: "ep", ids: ["x", "y"], owner: "A", until: timestamp(3_000))
                    == ["x", "y"])
            // Claimed again by B, they are B's.
            _ = try await store.claim(owner: "B", limit: 3)
            #expect(
                try await store.renewAsyncLeases(endpoint: "ep", ids: ["x", "y", "z"], owner: "B", until: timestamp(4_000))
                    == [])
            #expect(try await store.renewAsyncLeases(endpoint: "ep", ids: ["x"], owner: "A", until: timestamp(4_000)) == ["x"])
        }
    }

    @Test("only the lease's owner ends an invocation", arguments: StoreKind.allCases)
    func finishByOwnerOnly(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.enqueue([makeInvocation("ok"), makeInvocation("bad"), makeInvocation("late"), makeInvocation("q")])
            let claimed = try await store.claim(limit: 3, now: 2_000)
            #expect(claimed.count == 3)
            let before = try #require(try await store.asyncInvocation(endpoint: "ep", id: "ok"))

            #expect(
                try await store.finishAsyncInvocation(
                    endpoint: "ep", id: "ok", owner: "B", outcome: .completed(outputContentType: "text/plain"),
                    variant: "v1", now: timestamp(3_000), notifications: [makeNotification("ok")]) == false)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "ok") == before)
            #expect(try await store.nextAsyncNotificationDue() == nil)
            // A queued or unknown invocation has no lease to end.
            for id in ["q", "nope"] {
                #expect(
                    try await store.finishAsyncInvocation(
                        endpoint: "ep", id: id, owner: "A", outcome: .failed(reason: "no"), variant: nil,
                        now: timestamp(3_000), notifications: []) == false)
            }

            #expect(
                try await store.finishAsyncInvocation(
                    endpoint: "ep", id: "ok", owner: "A", outcome: .completed(outputContentType: "text/plain"),
                    variant: "v1", now: timestamp(3_000), notifications: [makeNotification("ok")]))
            var completed = before
            completed.status = .completed
            completed.outputContentType = "text/plain"
            completed.variant = "v1"
            completed.completedAt = timestamp(3_000)
            completed.updatedAt = timestamp(3_000)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "ok") == completed)

            #expect(
                try await store.finishAsyncInvocation(
                    endpoint: "ep", id: "bad", owner: "A", outcome: .failed(reason: "ValueError: bad input"),
                    variant: "v2", now: timestamp(3_100), notifications: []))
            let bad = try #require(try await store.asyncInvocation(endpoint: "ep", id: "bad"))
            #expect(bad.status == .failed)
            #expect(bad.failureReason == "ValueError: bad input")
            #expect(bad.outputContentType == nil)
            #expect(bad.variant == "v2")
            #expect(bad.completedAt == timestamp(3_100))

            #expect(
                try await store.finishAsyncInvocation(
                    endpoint: "ep", id: "late", owner: "A", outcome: .expired(reason: "It waited past its TTL."),
                    variant: nil, now: timestamp(3_200), notifications: []))
            let late = try #require(try await store.asyncInvocation(endpoint: "ep", id: "late"))
            #expect(late.status == .expired)
            #expect(late.failureReason == "It waited past its TTL.")
            #expect(late.variant == nil)

            // Ended invocations hold no lease: not again, no renewal, no rescue.
            #expect(
                try await store.finishAsyncInvocation(
                    endpoint: "ep", id: "ok", owner: "A", outcome: .failed(reason: "again"), variant: nil,
                    now: timestamp(4_000), notifications: [makeNotification("ok")]) == false)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "ok") == completed)
            #expect(
                try await store.renewAsyncLeases(endpoint: "ep", ids: ["ok", "bad", "late"], owner: "A", until: timestamp(1))
                    == ["ok", "bad", "late"])
            #expect(try await store.requeueExpiredAsyncLeases(now: timestamp(Int64.max)) == 0)
            #expect(try await store.dueAsyncNotifications(now: timestamp(Int64.max), limit: 10).count == 1)
        }
    }

    @Test("release puts an invocation back, taking the attempt back unless it counts", arguments: StoreKind.allCases)
    func release(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.enqueue([makeInvocation("a")])
            _ = try await store.claim(now: 2_000)
            #expect(
                try await store.releaseAsyncInvocation(
                    endpoint: "ep", id: "a", owner: "B", now: timestamp(2_500), countAttempt: false) == false)
            #expect(try await store.asyncInvocation(endpoint: "ep", id: "a")?.status == .inProgress)

            #expect(
                try await store.releaseAsyncInvocation(
                    endpoint: "ep", id: "a", owner: "A", now: timestamp(2_500), countAttempt: false))
            var released = try #require(try await store.asyncInvocation(endpoint: "ep", id: "a"))
            #expect(released.status == .queued)
            #expect(released.attempts == 0)
            #expect(released.updatedAt == timestamp(2_500))
            #expect(try await store.renewAsyncLeases(endpoint: "ep", ids: ["a"], owner: "A", until: timestamp(1)) == ["a"])
            #expect(
                try await store.releaseAsyncInvocation(
                    endpoint: "ep", id: "a", owner: "A", now: timestamp(2_600), countAttempt: false) == false)

            #expect(try await store.claim(owner: "B", now: 3_000).map(\.attempts) == [1])
            #expect(
                try await store.releaseAsyncInvocation(
                    endpoint: "ep", id: "a", owner: "B", now: timestamp(3_500), countAttempt: true))
            released = try #require(try await store.asyncInvocation(endpoint: "ep", id: "a"))
            #expect(released.status == .queued)
            #expect(released.attempts == 1)
            #expect(try await store.claim(owner: "C", now: 4_000).map(\.attempts) == [2])
        }
    }

    @Test("expired leases are re-queued with their attempt counted", arguments: StoreKind.allCases)
    func requeueExpiredLeases(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.enqueue([makeInvocation("a"), makeInvocation("b"), makeInvocation("c", endpoint: "other")])
            _ = try await store.claim(limit: 1, now: 2_000, leaseUntil: 5_000)
            _ = try await store.claim("other", owner: "B", now: 2_000, leaseUntil: 6_000)
            // A lease ending exactly now still holds.
            #expect(try await store.requeueExpiredAsyncLeases(now: timestamp(5_000)) == 0)
            #expect(try await store.requeueExpiredAsyncLeases(now: timestamp(5_001)) == 1)
            let rescued = try #require(try await store.asyncInvocation(endpoint: "ep", id: "a"))
            #expect(rescued.status == .queued)
            #expect(rescued.attempts == 1)
            #expect(rescued.updatedAt == timestamp(5_001))
            #expect(try await store.asyncInvocation(endpoint: "other", id: "c")?.status == .inProgress)

            // The stalled owner cannot end it any more; the next claim is its second attempt, still first in line.
            #expect(
                try await store.finishAsyncInvocation(
                    endpoint: "ep", id: "a", owner: "A", outcome: .completed(outputContentType: "x"), variant: nil,
                    now: timestamp(5_100), notifications: []) == false)
            let again = try await store.claim(owner: "C", limit: 1, now: 5_200)
            #expect(again.map(\.id) == ["a"])
            #expect(again.map(\.attempts) == [2])
            #expect(try await store.requeueExpiredAsyncLeases(now: timestamp(6_001)) == 1)
            #expect(try await store.requeueExpiredAsyncLeases(now: timestamp(6_001)) == 0)
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
                try await store.finishAsyncInvocation(
                    endpoint: "c", id: "c-0", owner: "A", outcome: .completed(outputContentType: "x"), variant: nil,
                    now: timestamp(3_000), notifications: []))
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
                try await store.finishAsyncInvocation(
                    endpoint: "ep", id: "done", owner: "A", outcome: .completed(outputContentType: "x"), variant: "v",
                    now: timestamp(5_000),
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
                try await store.finishAsyncInvocation(
                    endpoint: "ep", id: "done", owner: "A", outcome: .completed(outputContentType: "text/csv"),
                    variant: "v1", now: timestamp(3_000), notifications: [makeNotification("done")]))
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
            // The leases survive: the owner still holds them, the rescuer takes them only once they end.
            #expect(
                try await reopened.renewAsyncLeases(
                    endpoint: "ep", ids: ["inline", "running"], owner: "A", until: timestamp(10_000)) == [])
            #expect(try await reopened.requeueExpiredAsyncLeases(now: timestamp(10_000)) == 0)
            #expect(try await reopened.requeueExpiredAsyncLeases(now: timestamp(10_001)) == 2)
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
