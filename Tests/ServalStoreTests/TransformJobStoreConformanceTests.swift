import ServalCore
import ServalStore
import Testing

// MARK: Fixtures

/// An `InProgress`, unplanned job created at `createdAt` (ms).
func makeTransformJob(_ name: String, createdAt: Int64 = 1_000) -> TransformJob {
    TransformJob(
        spec: TransformJobSpec(
            name: name, modelName: "model-a", inputUri: "s3://inputs/\(name)/", contentType: "text/csv",
            splitType: .line, maxPayloadMB: 2, maxConcurrentTransforms: 4, outputPath: "s3://outputs/\(name)",
            accept: "text/csv", assembleWith: .line, inputFilter: "$[1:]", joinSource: .input, instanceCount: 2,
            instanceType: "ml.m5.large", environment: ["MODE": "batch"]),
        createdAt: timestamp(createdAt), updatedAt: timestamp(createdAt))
}

/// A plan with `parts[i]` units for object `i`; every unit is 100 bytes of 10 records.
func makeTransformPlan(_ parts: [Int]) -> (
    objects: [TransformObject], units: [TransformUnit], progress: TransformProgress
) {
    let objects = parts.enumerated().map { index, count in
        TransformObject(
            index: index, key: "in/file-\(index).csv", outputKey: "out/file-\(index).csv.out",
            sizeBytes: Int64(count) * 100, unitCount: count)
    }
    let units = parts.enumerated().flatMap { index, count in
        (0..<count).map { part in
            TransformUnit(
                objectIndex: index, part: part, start: Int64(part) * 100, end: Int64(part + 1) * 100, records: 10,
                firstRecord: part * 10)
        }
    }
    let progress = TransformProgress(
        objectsTotal: objects.count, recordsTotal: units.count * 10, bytesTotal: Int64(units.count) * 100,
        unitsTotal: units.count)
    return (objects, units, progress)
}

/// The id of part `part` of object `objectIndex`.
func unitID(_ objectIndex: Int, _ part: Int) -> TransformUnit.ID {
    TransformUnit.ID(objectIndex: objectIndex, part: part)
}

extension TransformJobStore {
    /// Creates jobs one after another.
    func create(_ jobs: [TransformJob]) async throws {
        for job in jobs { try await createTransformJob(job) }
    }

    /// Plans `job` with ``makeTransformPlan(_:)`` at `now`.
    func plan(_ job: String = "job", parts: [Int], now: Int64 = 1_500) async throws -> Bool {
        let plan = makeTransformPlan(parts)
        return try await recordTransformPlan(
            job: job, objects: plan.objects, units: plan.units, progress: plan.progress, now: timestamp(now))
    }

    /// Claims from the queue with the owner "A" and a lease until 10,000, unless told otherwise.
    func claimTransformUnits(
        _ job: String = "job", owner: String = "A", limit: Int = 100, leaseUntil: Int64 = 10_000
    ) async throws -> [TransformUnit] {
        try await transformUnitQueue.claim(
            in: job, owner: owner, limit: limit, now: timestamp(2_000), leaseUntil: timestamp(leaseUntil),
            overdueOnly: false)
    }

    /// Claims like ``claimTransformUnits(_:owner:limit:leaseUntil:)``; returns the claimed ids.
    func claimUnits(
        _ job: String = "job", owner: String = "A", limit: Int = 100, leaseUntil: Int64 = 10_000
    ) async throws -> [TransformUnit.ID] {
        try await claimTransformUnits(job, owner: owner, limit: limit, leaseUntil: leaseUntil).map(\.id)
    }

    /// Finishes a unit through the queue at `now`; by default one of 10 records, one of them failed, and 100 bytes,
    /// at 3,000.
    func finishUnit(
        _ unit: TransformUnit.ID, job: String = "job", owner: String = "A",
        progress: TransformUnitProgress = TransformUnitProgress(recordsDone: 9, recordsFailed: 1, bytes: 100),
        now: Int64 = 3_000
    ) async throws -> Bool {
        try await transformUnitQueue.finish(in: job, id: unit, owner: owner, completion: progress, now: timestamp(now))
    }

    /// Marks an object of the job assembled at `now`.
    func assemble(_ objectIndex: Int, job: String = "job", now: Int64) async throws -> Bool {
        try await markTransformObjectAssembled(job: job, objectIndex: objectIndex, now: timestamp(now))
    }

    /// The units of every object of the job, in claim order.
    func allUnits(_ job: String = "job") async throws -> [TransformUnit] {
        var units: [TransformUnit] = []
        for object in try await transformObjects(job: job) {
            units += try await transformUnits(job: job, objectIndex: object.index)
        }
        return units
    }

    /// Every page of the listing with `filter`, following the tokens.
    func allPages(_ filter: TransformJobFilter) async throws -> [[TransformJob]] {
        var filter = filter
        var pages: [[TransformJob]] = []
        repeat {
            let (page, token) = try await transformJobs(filter: filter)
            pages.append(page)
            filter.nextToken = token
        } while filter.nextToken != nil && pages.count < 100
        return pages
    }
}

// MARK: The suite

/// The behaviour of transform jobs and their work units that every ``MetadataStore`` must have.
@Suite("TransformJobStore conformance")
struct TransformJobStoreConformanceTests {
    // MARK: Jobs

    @Test("create stores a job; its name again is a conflict", arguments: StoreKind.allCases)
    func createAndConflict(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.transformJob(named: "job") == nil)
            let job = makeTransformJob("job")
            try await store.createTransformJob(job)
            #expect(try await store.transformJob(named: "job") == job)

            var other = makeTransformJob("job", createdAt: 5_000)
            other.spec.modelName = "model-b"
            let error = await expectServalError(.conflict) { try await store.createTransformJob(other) }
            #expect(error?.message.contains("Transform job \"job\" already exists") == true)
            #expect(error?.message.contains("choose another name") == true)
            #expect(try await store.transformJob(named: "job") == job)
            // Even once it has ended.
            #expect(
                try await store.finishTransformJob(
                    named: "job", status: .failed, failureReason: "x", now: timestamp(2_000)))
            await expectServalError(.conflict) { try await store.createTransformJob(makeTransformJob("job")) }

            // Every field round-trips.
            var full = makeTransformJob("full", createdAt: 7_000)
            full.status = .stopping
            full.failureReason = "Stopped by the user."
            full.planned = true
            full.progress = TransformProgress(
                objectsTotal: 1, objectsDone: 2, recordsTotal: 3, recordsDone: 4, recordsFailed: 5, bytesTotal: 6,
                bytesDone: 7, unitsTotal: 8, unitsDone: 9)
            full.updatedAt = timestamp(8_000)
            full.startedAt = timestamp(7_500)
            full.spec.outputFilter = "$.SageMakerOutput"
            full.spec.compression = .gzip
            full.spec.dataType = .manifestFile
            try await store.createTransformJob(full)
            #expect(try await store.transformJob(named: "full") == full)
            #expect(try await store.transformJob(named: "Full") == nil)
        }
    }

    @Test("active jobs are the InProgress and Stopping ones, oldest first", arguments: StoreKind.allCases)
    func activeJobs(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.activeTransformJobs().isEmpty)
            try await store.create([
                makeTransformJob("d", createdAt: 4_000), makeTransformJob("a", createdAt: 1_000),
                makeTransformJob("c", createdAt: 3_000), makeTransformJob("b", createdAt: 3_000),
                makeTransformJob("e", createdAt: 5_000),
            ])
            _ = try await store.requestTransformJobStop(named: "c", now: timestamp(6_000))
            #expect(
                try await store.finishTransformJob(
                    named: "a", status: .completed, failureReason: nil, now: timestamp(6_000)))
            _ = try await store.requestTransformJobStop(named: "e", now: timestamp(6_000))
            #expect(
                try await store.finishTransformJob(
                    named: "e", status: .stopped, failureReason: nil, now: timestamp(7_000)))
            let active = try await store.activeTransformJobs()
            #expect(active.map(\.name) == ["b", "c", "d"])
            #expect(active.map(\.status) == [.inProgress, .stopping, .inProgress])
        }
    }

    // MARK: Listing

    @Test(
        "listing: newest first by default, both sort keys and orders, pages that follow their tokens",
        arguments: StoreKind.allCases)
    func listingOrderAndPages(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.transformJobs(filter: .init()) == ([], nil))
            // Pairs of jobs share a creation time; they are created out of name order.
            let jobs = (0..<25).map {
                makeTransformJob("job-" + ($0 < 10 ? "0" : "") + String($0), createdAt: 1_000 + Int64($0 / 2) * 10)
            }
            try await store.create(
                jobs.reversed().filter { $0.name.hasSuffix("1") } + jobs.filter { !$0.name.hasSuffix("1") })
            let oldestFirst = jobs
            let newestFirst = Array(jobs.reversed())

            // The default: by creation time, descending, ten a page.
            let pages = try await store.allPages(.init())
            #expect(pages.map(\.count) == [10, 10, 5])
            #expect(pages.flatMap { $0 } == newestFirst)
            #expect(try await store.allPages(.init(sortOrder: .ascending, limit: 7)).flatMap { $0 } == oldestFirst)
            #expect(
                try await store.allPages(.init(sortBy: .name, sortOrder: .ascending, limit: 3)).flatMap { $0 }
                    == oldestFirst)
            #expect(try await store.allPages(.init(sortBy: .name, limit: 100)) == [newestFirst])
            // A page that ends exactly at the end has no token.
            #expect(try await store.transformJobs(filter: .init(limit: 25)).nextToken == nil)
            #expect(try await store.transformJobs(filter: .init(limit: 24)).nextToken != nil)
            #expect(try await store.allPages(.init(limit: 1)).count == 25)

            // Names compare byte by byte: upper case before lower case.
            try await store.create([makeTransformJob("Zed", createdAt: 1), makeTransformJob("Alpha", createdAt: 2)])
            let byName = try await store.transformJobs(filter: .init(sortBy: .name, sortOrder: .ascending, limit: 3))
                .jobs
            #expect(byName.map(\.name) == ["Alpha", "Zed", "job-00"])

            // Jobs created between pages do not shift the pages that follow.
            let (first, token) = try await store.transformJobs(filter: .init())
            try await store.createTransformJob(makeTransformJob("newer", createdAt: 9_999))
            let (second, _) = try await store.transformJobs(filter: .init(nextToken: token))
            #expect(first + second == Array(newestFirst.prefix(20)))
            #expect(try await store.transformJobs(filter: .init(limit: 1)).jobs.map(\.name) == ["newer"])
        }
    }

    @Test("listing filters: name contains, status, creation time", arguments: StoreKind.allCases)
    func listingFilters(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.create([
                makeTransformJob("daily-scores-1", createdAt: 1_000),
                makeTransformJob("daily-scores-2", createdAt: 2_000),
                makeTransformJob("Weekly-Scores", createdAt: 3_000), makeTransformJob("embeddings", createdAt: 4_000),
                makeTransformJob("daily-embeddings", createdAt: 5_000),
            ])
            _ = try await store.requestTransformJobStop(named: "daily-scores-2", now: timestamp(6_000))
            _ = try await store.finishTransformJob(
                named: "embeddings", status: .completed, failureReason: nil, now: timestamp(6_000))
            _ = try await store.finishTransformJob(
                named: "daily-scores-1", status: .failed, failureReason: "x", now: timestamp(6_000))

            func names(_ filter: TransformJobFilter) async throws -> [String] {
                try await store.allPages(filter).flatMap { $0 }.map(\.name)
            }
            // Name matching ignores case; an empty string matches every name.
            #expect(
                try await names(.init(nameContains: "scores", limit: 2)) == [
                    "Weekly-Scores", "daily-scores-2", "daily-scores-1",
                ])
            #expect(
                try await names(.init(nameContains: "SCORES-", sortBy: .name, sortOrder: .ascending)) == [
                    "daily-scores-1", "daily-scores-2",
                ])
            #expect(try await names(.init(nameContains: "%")).isEmpty)
            #expect(try await names(.init(nameContains: "_")).isEmpty)
            #expect(try await names(.init(nameContains: "")).count == 5)
            #expect(try await names(.init(status: .inProgress)) == ["daily-embeddings", "Weekly-Scores"])
            #expect(try await names(.init(status: .stopping)) == ["daily-scores-2"])
            #expect(try await names(.init(status: .stopped)).isEmpty)
            #expect(try await names(.init(nameContains: "daily", status: .failed)) == ["daily-scores-1"])
            // Both time bounds are exclusive.
            #expect(
                try await names(
                    .init(creationTimeAfter: timestamp(1_000), creationTimeBefore: timestamp(4_000), limit: 1))
                    == ["Weekly-Scores", "daily-scores-2"])
            #expect(
                try await names(.init(creationTimeAfter: timestamp(999), sortOrder: .ascending)).first
                    == "daily-scores-1")
            #expect(try await names(.init(creationTimeBefore: timestamp(1_001))) == ["daily-scores-1"])
            #expect(
                try await names(.init(nameContains: "e", creationTimeAfter: timestamp(2_500), sortBy: .name, limit: 1))
                    == ["embeddings", "daily-embeddings", "Weekly-Scores"])
        }
    }

    @Test(
        "listing refuses limits outside 1...100 and tokens it did not return for that order",
        arguments: StoreKind.allCases)
    func listingValidation(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.create((0..<3).map { makeTransformJob("job-\($0)", createdAt: Int64($0)) })
            #expect(try await store.transformJobs(filter: .init(limit: 100)).jobs.count == 3)
            for limit in [0, -1, 101] {
                let error = await expectServalError(.validationError) {
                    _ = try await store.transformJobs(filter: .init(limit: limit))
                }
                #expect(error?.message.hasPrefix("maxResults: ") == true)
            }
            let byTime = try #require(try await store.transformJobs(filter: .init(limit: 1)).nextToken)
            let byName = try #require(try await store.transformJobs(filter: .init(sortBy: .name, limit: 1)).nextToken)
            for token in [
                "", "abc", ":", "cd", "cd:", "cd:12", "cd:12:", "cd:x:job-1", "cd:012:job-1", "nd:", "xx:job-1",
            ] {
                let error = await expectServalError(.validationError) {
                    _ = try await store.transformJobs(filter: .init(nextToken: token))
                }
                #expect(error?.message.hasPrefix("nextToken: ") == true, "token \(token)")
            }
            // A token is taken only by a listing in the order that returned it.
            await expectServalError(.validationError) {
                _ = try await store.transformJobs(filter: .init(sortOrder: .ascending, nextToken: byTime))
            }
            await expectServalError(.validationError) {
                _ = try await store.transformJobs(filter: .init(sortBy: .name, nextToken: byTime))
            }
            await expectServalError(.validationError) {
                _ = try await store.transformJobs(filter: .init(nextToken: byName))
            }
            #expect(
                try await store.transformJobs(filter: .init(sortBy: .name, nextToken: byName)).jobs.map(\.name) == [
                    "job-1", "job-0",
                ])
            #expect(
                try await store.transformJobs(filter: .init(nextToken: byTime)).jobs.map(\.name) == ["job-1", "job-0"])
        }
    }

    // MARK: Plan

    @Test("a job is planned once, only while InProgress", arguments: StoreKind.allCases)
    func planOnce(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.plan("nope", parts: [1]) == false)
            #expect(try await store.transformObjects(job: "nope").isEmpty)
            try await store.create([makeTransformJob("job"), makeTransformJob("stopping"), makeTransformJob("empty")])

            let plan = makeTransformPlan([3, 1, 2])
            #expect(
                try await store.recordTransformPlan(
                    job: "job", objects: plan.objects, units: plan.units, progress: plan.progress,
                    now: timestamp(1_500)))
            var expected = makeTransformJob("job")
            expected.planned = true
            expected.progress = plan.progress
            expected.startedAt = timestamp(1_500)
            expected.updatedAt = timestamp(1_500)
            #expect(try await store.transformJob(named: "job") == expected)
            #expect(try await store.transformObjects(job: "job") == plan.objects)
            #expect(try await store.allUnits() == plan.units)
            #expect(try await store.transformUnits(job: "job", objectIndex: 2).map(\.part) == [0, 1])
            #expect(try await store.transformUnits(job: "job", objectIndex: 3).isEmpty)

            // A second plan (another runner that planned in parallel) changes nothing.
            #expect(try await store.plan(parts: [5], now: 1_600) == false)
            #expect(try await store.transformJob(named: "job") == expected)
            #expect(try await store.transformObjects(job: "job") == plan.objects)
            #expect(try await store.allUnits() == plan.units)

            _ = try await store.requestTransformJobStop(named: "stopping", now: timestamp(1_200))
            #expect(try await store.plan("stopping", parts: [2]) == false)
            #expect(try await store.transformJob(named: "stopping")?.planned == false)
            #expect(try await store.transformObjects(job: "stopping").isEmpty)

            // An empty prefix is a plan of nothing.
            #expect(try await store.plan("empty", parts: []))
            #expect(try await store.transformJob(named: "empty")?.planned == true)
            #expect(try await store.transformObjects(job: "empty").isEmpty)
            #expect(try await store.plan("empty", parts: [1]) == false)
        }
    }

    @Test("a plan of 100,000 units is recorded in one go and claimed in order", arguments: StoreKind.allCases)
    func largePlan(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.createTransformJob(makeTransformJob("job"))
            let clock = ContinuousClock()
            let start = clock.now
            #expect(try await store.plan(parts: Array(repeating: 1_000, count: 100)))
            let elapsed = clock.now - start
            // Generous: a row-at-a-time plan without a reused statement or one transaction takes far longer.
            #expect(elapsed < .seconds(240), "recording 100,000 units took \(elapsed)")
            #expect(try await store.transformJob(named: "job")?.progress.unitsTotal == 100_000)
            #expect(try await store.claimUnits(limit: 1_500).last == unitID(1, 499))
            #expect(try await store.claimUnits(limit: 1).first == unitID(1, 500))
            #expect(try await store.transformUnits(job: "job", objectIndex: 99).count == 1_000)
        }
    }

    // MARK: Claims

    @Test(
        "claims take the job's pending units in object and part order and leave the job as it is",
        arguments: StoreKind.allCases)
    func claimOrder(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.create([makeTransformJob("job"), makeTransformJob("other")])
            #expect(try await store.claimUnits().isEmpty)
            #expect(try await store.plan(parts: [3, 1, 2]))
            #expect(try await store.plan("other", parts: [2]))
            let first = try await store.claimTransformUnits(limit: 2, leaseUntil: 9_000)
            let plan = makeTransformPlan([3, 1, 2])
            let expected = plan.units.prefix(2).map { unit in
                var claimed = unit
                claimed.status = .inProgress
                claimed.attempts = 1
                return claimed
            }
            #expect(first == expected)
            #expect(
                try await store.transformUnits(job: "job", objectIndex: 0).map(\.status) == [
                    .inProgress, .inProgress, .pending,
                ])

            #expect(
                try await store.claimUnits(owner: "B", limit: 10) == [
                    unitID(0, 2), unitID(1, 0), unitID(2, 0), unitID(2, 1),
                ])
            #expect(try await store.claimUnits(limit: 10).isEmpty)
            #expect(try await store.allUnits().allSatisfy { $0.status == .inProgress && $0.attempts == 1 })
            // The other job's units were never touched; claiming does not change the job.
            #expect(try await store.allUnits("other").allSatisfy { $0.status == .pending && $0.attempts == 0 })
            #expect(try await store.claimUnits("other") == [unitID(0, 0), unitID(0, 1)])
            #expect(try await store.transformJob(named: "job")?.updatedAt == timestamp(1_500))
        }
    }

    @Test(
        "a stopping or ended job starts no units; units in flight still finish or go back",
        arguments: StoreKind.allCases)
    func claimStopsWhileStopping(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.createTransformJob(makeTransformJob("job"))
            #expect(try await store.plan(parts: [4]))
            #expect(try await store.claimUnits(limit: 2) == [unitID(0, 0), unitID(0, 1)])
            _ = try await store.requestTransformJobStop(named: "job", now: timestamp(2_000))
            #expect(try await store.claimUnits(owner: "B").isEmpty)
            #expect(
                try await store.transformUnitQueue.renew(
                    in: "job", ids: [unitID(0, 0), unitID(0, 1)], owner: "A", until: timestamp(12_000)) == [])
            #expect(try await store.finishUnit(unitID(0, 0)))
            #expect(
                try await store.transformUnitQueue.release(
                    in: "job", id: unitID(0, 1), owner: "A", now: timestamp(3_000), countAttempt: false))
            #expect(try await store.claimUnits(owner: "B").isEmpty)
            #expect(
                try await store.transformUnits(job: "job", objectIndex: 0).map(\.status) == [
                    .done, .pending, .pending, .pending,
                ])
            #expect(
                try await store.finishTransformJob(
                    named: "job", status: .stopped, failureReason: nil, now: timestamp(4_000)))
            #expect(try await store.claimUnits(owner: "B").isEmpty)
        }
    }

    @Test(
        "finishing a unit adds its records to the job's progress once, and only by the lease's owner",
        arguments: StoreKind.allCases)
    func finishAddsProgress(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.createTransformJob(makeTransformJob("job"))
            #expect(try await store.plan(parts: [2, 2]))
            _ = try await store.claimUnits(limit: 3)
            let before = try #require(try await store.transformJob(named: "job"))

            #expect(try await store.finishUnit(unitID(0, 0), owner: "B") == false)
            // A pending or unknown unit has no lease to end, nor has a unit of an unknown job.
            #expect(try await store.finishUnit(unitID(1, 1)) == false)
            #expect(try await store.finishUnit(unitID(5, 0)) == false)
            #expect(try await store.finishUnit(unitID(0, 0), job: "nope") == false)
            #expect(try await store.transformJob(named: "job") == before)
            #expect(try await store.allUnits().map(\.status) == [.inProgress, .inProgress, .inProgress, .pending])

            #expect(
                try await store.finishUnit(
                    unitID(0, 0), progress: TransformUnitProgress(recordsDone: 7, recordsFailed: 3, bytes: 1_000)))
            #expect(
                try await store.finishUnit(
                    unitID(1, 0), progress: TransformUnitProgress(recordsDone: 10, recordsFailed: 0, bytes: 2_500),
                    now: 3_500))
            var expected = before
            expected.progress.recordsDone = 17
            expected.progress.recordsFailed = 3
            expected.progress.bytesDone = 3_500
            expected.progress.unitsDone = 2
            expected.updatedAt = timestamp(3_500)
            #expect(try await store.transformJob(named: "job") == expected)
            #expect(try await store.allUnits().map(\.status) == [.done, .inProgress, .done, .pending])
            #expect(try await store.allUnits().map(\.attempts) == [1, 1, 1, 0])

            // Finishing twice (a retried commit) counts once.
            #expect(try await store.finishUnit(unitID(0, 0)) == false)
            #expect(try await store.transformJob(named: "job") == expected)
            // A done unit is never claimed again.
            #expect(try await store.claimUnits(limit: 10) == [unitID(1, 1)])
        }
    }

    // MARK: Objects

    @Test("an object is marked assembled once", arguments: StoreKind.allCases)
    func assembledOnce(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.createTransformJob(makeTransformJob("job"))
            #expect(try await store.assemble(0, now: 2_000) == false)
            #expect(try await store.plan(parts: [1, 1, 1]))
            #expect(try await store.assemble(1, now: 2_000))
            var expected = try #require(try await store.transformJob(named: "job"))
            #expect(expected.progress.objectsDone == 1)
            #expect(expected.updatedAt == timestamp(2_000))
            #expect(try await store.transformObjects(job: "job").map(\.assembled) == [false, true, false])

            #expect(try await store.assemble(1, now: 3_000) == false)
            #expect(try await store.transformJob(named: "job") == expected)
            #expect(try await store.assemble(3, now: 3_000) == false)
            #expect(try await store.assemble(0, job: "nope", now: 3_000) == false)

            #expect(try await store.assemble(0, now: 4_000))
            expected.progress.objectsDone = 2
            expected.updatedAt = timestamp(4_000)
            #expect(try await store.transformJob(named: "job") == expected)
            #expect(try await store.transformObjects(job: "job").map(\.assembled) == [true, true, false])
        }
    }

    // MARK: Stop and end

    @Test("a stop request moves InProgress to Stopping and leaves other states alone", arguments: StoreKind.allCases)
    func stopTransitions(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.requestTransformJobStop(named: "nope", now: timestamp(2_000)) == nil)
            try await store.create([makeTransformJob("job"), makeTransformJob("done")])
            var expected = makeTransformJob("job")
            expected.status = .stopping
            expected.updatedAt = timestamp(2_000)
            #expect(try await store.requestTransformJobStop(named: "job", now: timestamp(2_000)) == expected)
            #expect(try await store.transformJob(named: "job") == expected)
            // Asking again changes nothing, not even the time.
            #expect(try await store.requestTransformJobStop(named: "job", now: timestamp(3_000)) == expected)
            #expect(try await store.transformJob(named: "job") == expected)

            #expect(
                try await store.finishTransformJob(
                    named: "done", status: .completed, failureReason: nil, now: timestamp(2_500)))
            let done = try #require(try await store.transformJob(named: "done"))
            #expect(try await store.requestTransformJobStop(named: "done", now: timestamp(3_000)) == done)
            #expect(try await store.transformJob(named: "done") == done)
            #expect(done.status == .completed)
        }
    }

    @Test("a job ends once; its units are deleted and its objects kept", arguments: StoreKind.allCases)
    func finishJob(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(
                try await store.finishTransformJob(
                    named: "nope", status: .completed, failureReason: nil, now: timestamp(2_000)) == false)
            try await store.create([makeTransformJob("job"), makeTransformJob("other"), makeTransformJob("bad")])
            #expect(try await store.plan(parts: [2, 1]))
            #expect(try await store.plan("other", parts: [1]))
            _ = try await store.claimUnits(limit: 2)
            #expect(try await store.finishUnit(unitID(0, 0)))
            let objects = try await store.transformObjects(job: "job")

            for status in [TransformJobStatus.inProgress, .stopping] {
                let error = await expectServalError(.validationError) {
                    _ = try await store.finishTransformJob(
                        named: "job", status: status, failureReason: nil, now: timestamp(3_000))
                }
                #expect(error?.message.contains(status.rawValue) == true)
            }
            #expect(try await store.transformJob(named: "job")?.status == .inProgress)

            #expect(
                try await store.finishTransformJob(
                    named: "job", status: .failed,
                    failureReason: "Object in/file-0.csv, record 12: the model answered 400.",
                    now: timestamp(4_000)))
            let expected = try #require(try await store.transformJob(named: "job"))
            #expect(expected.status == .failed)
            #expect(expected.failureReason == "Object in/file-0.csv, record 12: the model answered 400.")
            #expect(expected.endedAt == timestamp(4_000))
            #expect(expected.updatedAt == timestamp(4_000))
            #expect(expected.progress.unitsDone == 1)
            #expect(try await store.allUnits().isEmpty)
            #expect(try await store.transformObjects(job: "job") == objects)
            // Nothing of its units is left to claim, renew, finish, release or rescue.
            #expect(try await store.claimUnits().isEmpty)
            #expect(
                try await store.transformUnitQueue.renew(
                    in: "job", ids: [unitID(0, 1)], owner: "A", until: timestamp(9_000)) == [unitID(0, 1)])
            #expect(try await store.finishUnit(unitID(0, 1)) == false)
            #expect(
                try await store.transformUnitQueue.release(
                    in: "job", id: unitID(0, 1), owner: "A", now: timestamp(4_500), countAttempt: true) == false)
            #expect(try await store.transformUnitQueue.rescueExpired(now: timestamp(Int64.max)) == 0)
            // The other job's units stay.
            #expect(try await store.allUnits("other").count == 1)

            // Once only.
            #expect(
                try await store.finishTransformJob(
                    named: "job", status: .completed, failureReason: nil, now: timestamp(5_000)) == false)
            #expect(try await store.transformJob(named: "job") == expected)

            // A stopping job ends Stopped; an unplanned one can end too.
            _ = try await store.requestTransformJobStop(named: "other", now: timestamp(5_000))
            #expect(
                try await store.finishTransformJob(
                    named: "other", status: .stopped, failureReason: nil, now: timestamp(6_000)))
            #expect(try await store.transformJob(named: "other")?.status == .stopped)
            #expect(try await store.allUnits("other").isEmpty)
            #expect(
                try await store.finishTransformJob(
                    named: "bad", status: .failed, failureReason: "No input objects.", now: timestamp(6_000)))
            #expect(try await store.activeTransformJobs().isEmpty)
        }
    }

    // MARK: Durability

    @Test("jobs, plans, leases and progress survive reopening the database", arguments: StoreKind.allCases)
    func survivesReopen(kind: StoreKind) async throws {
        try await withStore(kind) { store, backend in
            try await store.createTransformJob(makeTransformJob("job"))
            #expect(try await store.plan(parts: [2, 2]))
            _ = try await store.claimUnits(limit: 3, leaseUntil: 10_000)
            #expect(try await store.finishUnit(unitID(0, 0)))
            #expect(try await store.finishUnit(unitID(0, 1)))
            #expect(try await store.assemble(0, now: 3_500))
            let job = try await store.transformJob(named: "job")
            let objects = try await store.transformObjects(job: "job")
            let units = try await store.allUnits()

            // A kill -9 later:
            let reopened = try backend.open()
            #expect(try await reopened.transformJob(named: "job") == job)
            #expect(try await reopened.transformObjects(job: "job") == objects)
            #expect(try await reopened.allUnits() == units)
            #expect(try await reopened.activeTransformJobs().map(\.name) == ["job"])
            #expect(try await reopened.plan(parts: [1]) == false)
            // The lease survives (the leased queue's suite checks renewals); rescued, the unit goes back in its place.
            #expect(try await reopened.transformUnitQueue.rescueExpired(now: timestamp(10_001)) == 1)
            #expect(try await reopened.claimUnits(owner: "B") == [unitID(1, 0), unitID(1, 1)])
            #expect(try await reopened.transformJob(named: "job")?.progress.unitsDone == 2)
        }
    }
}
