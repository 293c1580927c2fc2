import Foundation
import Hummingbird
import ServalAPI
import ServalAuth
import ServalCore
import ServalJobs
import ServalStore

/// Transform jobs over HTTP, in SageMaker's shapes: create, describe (with progress), list, stop.
struct TransformRoutes: Sendable {
    let service: TransformJobService
    let clock: any WallClock

    /// Registers the routes: reading describes, creating and stopping manage transform jobs.
    func register(on routes: ServalRoutes) {
        routes.add(.post, "/transform-jobs", .requires(.manageTransformJobs), use: create)
        routes.add(.get, "/transform-jobs", .requires(.describeResources), use: list)
        routes.add(.get, "/transform-jobs/{name}", .requires(.describeResources), use: describe)
        routes.add(.post, "/transform-jobs/{name}/stop", .requires(.manageTransformJobs), use: stop)
    }

    /// `CreateTransformJob`: 201 with the job's description.
    @Sendable func create(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let body = try await request.decode(as: CreateTransformJobRequest.self, context: context)
        let job = try await service.create(try body.spec(), tags: try body.Tags?.validated() ?? [])
        return try RESTRoutes.json(TransformJobDescription(job, now: clock.now()), status: .created)
    }

    @Sendable func describe(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let job = try await service.describe(try context.parameters.require("name"))
        return try RESTRoutes.json(TransformJobDescription(job, now: clock.now()))
    }

    /// `?nameContains=&statusEquals=&creationTimeAfter=&creationTimeBefore=&sortBy=Name|CreationTime&sortOrder=Ascending|Descending&maxResults=&nextToken=`.
    @Sendable func list(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        var filter = TransformJobFilter()
        filter.nameContains = query.get("nameContains")
        filter.status = try query.get("statusEquals").map { try Self.choice($0, field: "statusEquals") }
        filter.creationTimeAfter = try query.get("creationTimeAfter").map { try RESTRoutes.time($0, field: "creationTimeAfter") }
        filter.creationTimeBefore = try query.get("creationTimeBefore").map { try RESTRoutes.time($0, field: "creationTimeBefore") }
        if let sortBy = query.get("sortBy") { filter.sortBy = try Self.choice(sortBy, field: "sortBy") }
        if let sortOrder = query.get("sortOrder") { filter.sortOrder = try Self.choice(sortOrder, field: "sortOrder") }
        if let limit = query.get("maxResults") {
            guard let parsed = Int(limit) else { throw ServalError.invalid("maxResults", "\"\(limit)\" is not a number.") }
            filter.limit = parsed
        }
        filter.nextToken = query.get("nextToken")
        let page = try await service.list(filter)
        return try RESTRoutes.json(
            TransformJobList(TransformJobSummaries: page.jobs.map { TransformJobSummary($0) }, NextToken: page.nextToken))
    }

    /// `StopTransformJob`: the job's description, `Stopping` (or its end state when it has ended).
    @Sendable func stop(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let job = try await service.stop(try context.parameters.require("name"))
        return try RESTRoutes.json(TransformJobDescription(job, now: clock.now()))
    }

    private static func choice<Value: RawRepresentable & CaseIterable>(
        _ text: String, field: String
    ) throws(ServalError) -> Value where Value.RawValue == String {
        guard let value = Value(rawValue: text) else {
            throw .invalid(field, "is \"\(text)\"; use one of \(Value.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        return value
    }

}
