public import ServalCore

/// Filters, order and page of a listing of transform jobs: SageMaker's `ListTransformJobs`.
public struct TransformJobFilter: Sendable, Equatable {
    /// What a listing is sorted by.
    public enum SortKey: String, Sendable, Equatable, CaseIterable {
        /// The job's name, compared byte by byte (`A` < `Z` < `a`).
        case name = "Name"
        /// When the job was created; jobs created at the same millisecond are in name order.
        case creationTime = "CreationTime"
    }

    /// Which way a listing is sorted.
    public enum SortOrder: String, Sendable, Equatable, CaseIterable {
        case ascending = "Ascending"
        case descending = "Descending"
    }

    /// The allowed page sizes (SageMaker's `MaxResults`).
    public static let limits = 1...100

    /// Only jobs whose name contains this, ignoring ASCII case; `nil` or empty for every name.
    public var nameContains: String?
    /// Only jobs with this status.
    public var status: TransformJobStatus?
    /// Only jobs created after this time (not at it).
    public var creationTimeAfter: Timestamp?
    /// Only jobs created before this time (not at it).
    public var creationTimeBefore: Timestamp?
    /// The order of the listing.
    public var sortBy: SortKey
    /// The direction of the listing.
    public var sortOrder: SortOrder
    /// At most this many jobs per page (``limits``).
    public var limit: Int
    /// The `nextToken` of the previous page, listed with the same sort key and order.
    public var nextToken: String?

    /// Creates a filter; the defaults list the ten newest jobs.
    public init(
        nameContains: String? = nil, status: TransformJobStatus? = nil, creationTimeAfter: Timestamp? = nil,
        creationTimeBefore: Timestamp? = nil, sortBy: SortKey = .creationTime, sortOrder: SortOrder = .descending,
        limit: Int = 10, nextToken: String? = nil
    ) {
        self.nameContains = nameContains
        self.status = status
        self.creationTimeAfter = creationTimeAfter
        self.creationTimeBefore = creationTimeBefore
        self.sortBy = sortBy
        self.sortOrder = sortOrder
        self.limit = limit
        self.nextToken = nextToken
    }
}

/// What a finished unit adds to its job's progress: what ``LeasedQueue/finish(in:id:owner:completion:now:)`` records.
public struct TransformUnitProgress: Sendable, Equatable {
    /// Records whose output is committed in the unit's part.
    public var recordsDone: Int
    /// Records the model rejected.
    public var recordsFailed: Int
    /// The unit's bytes of input.
    public var bytes: Int64

    /// Creates a unit's progress.
    public init(recordsDone: Int, recordsFailed: Int, bytes: Int64) {
        self.recordsDone = recordsDone
        self.recordsFailed = recordsFailed
        self.bytes = bytes
    }
}

extension TransformUnit: LeasedWork {
    /// What a finished unit adds to its job's progress.
    public typealias Completion = TransformUnitProgress
}

/// The durable state of batch transform jobs: each job with its status and progress, its input objects, and the
/// work units they are split into.
///
/// A job is created `InProgress` and unplanned. A runner plans it once (``recordTransformPlan(job:objects:units:progress:now:)``
/// records its objects and units), then claims `Pending` units from ``transformUnitQueue`` under a lease (owner +
/// expiry) and renews the lease while it works. Only the lease's owner can finish or release a unit, so a runner that
/// lost its lease (it stalled, or its process died and the rescuer put the unit back) cannot count a unit twice:
/// finishing a unit and adding its records to the job's progress is one transaction, which is what makes each
/// record's output count exactly once. When every unit of an object is done the runner assembles the
/// object's output and marks it (once); when the job ends, its unit rows are deleted and its object rows kept.
///
/// Every method is one transaction; no method reads a clock. Implementations pass the shared conformance suites in
/// `ServalStoreTests` (the leased queue's and this protocol's).
public protocol TransformJobStore: Sendable {
    /// Stores a new job. Throws ``ServalError/Code/conflict`` when a job with its name exists (jobs are never
    /// deleted, so the user must choose another name).
    func createTransformJob(_ job: TransformJob) async throws

    /// The job named `name`, if any.
    func transformJob(named name: String) async throws -> TransformJob?

    /// A page of jobs matching `filter`, in its order, and the token of the next page (`nil` at the end). Throws
    /// ``ServalError/Code/validationError`` when the limit is outside ``TransformJobFilter/limits`` or the token is
    /// not one this method returned for the same sort key and order.
    func transformJobs(filter: TransformJobFilter) async throws -> (jobs: [TransformJob], nextToken: String?)

    /// The jobs that still need a runner (`InProgress` or `Stopping`), oldest first.
    func activeTransformJobs() async throws -> [TransformJob]

    /// Records the plan of an `InProgress` job that is not planned yet: its objects and units (stored as given,
    /// normally `Pending` with no attempts), `planned = true`, `progress` (its totals; its done counts are
    /// normally 0), and `startedAt` and `updatedAt` set to `now`. Returns whether it recorded; `false` when the job
    /// does not exist, is planned already, or is no longer `InProgress`, and then nothing is written.
    func recordTransformPlan(
        job: String, objects: [TransformObject], units: [TransformUnit], progress: TransformProgress, now: Timestamp
    ) async throws -> Bool

    /// The job's objects, by index; empty when it is not planned or does not exist.
    func transformObjects(job: String) async throws -> [TransformObject]

    /// The units of one of the job's objects, by part. Empty once the job has ended (its units are deleted).
    func transformUnits(job: String, objectIndex: Int) async throws -> [TransformUnit]

    /// The queue of work units, partitioned by job name, in (object index, part) order; units have no deadline.
    ///
    /// A claim makes a unit `InProgress` with `attempts + 1`, and claims nothing while its job is not `InProgress` (a
    /// `Stopping` job starts no new units). Releasing or rescuing it makes it `Pending` again. Finishing it with a
    /// ``TransformUnitProgress`` makes it `Done` and, in the same transaction, adds the progress and one unit to the
    /// job's and sets the job's `updatedAt` to `now`: this is what makes each record's output count exactly once.
    /// Units are deleted when their job ends, so nothing of an ended job can be claimed, renewed or finished.
    var transformUnitQueue: any LeasedQueue<TransformUnit> { get }

    /// Records that the object's `.out` object is written: the first time, `assembled = true`, the job's
    /// `objectsDone + 1` and `updatedAt = now`, and returns `true`. Returns `false`, changing nothing, when it was
    /// recorded before or the object does not exist.
    func markTransformObjectAssembled(job: String, objectIndex: Int, now: Timestamp) async throws -> Bool

    /// Asks an `InProgress` job to stop: it becomes `Stopping` with `updatedAt = now`. A job that is `Stopping` or
    /// has ended is unchanged. Returns the job as it is now, or `nil` when it does not exist.
    func requestTransformJobStop(named name: String, now: Timestamp) async throws -> TransformJob?

    /// Ends a job that has not ended yet with `status` (`Completed`, `Failed` or `Stopped`) and `failureReason`,
    /// `endedAt` and `updatedAt` set to `now`, and in the same transaction deletes its units (its objects stay).
    /// Returns whether it did; `false` when the job does not exist or has ended already. Throws
    /// ``ServalError/Code/validationError`` when `status` is not final.
    func finishTransformJob(
        named name: String, status: TransformJobStatus, failureReason: String?, now: Timestamp
    ) async throws -> Bool
}
