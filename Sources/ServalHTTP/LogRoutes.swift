import Hummingbird
import ServalAPI
import ServalAuth
import ServalCore
import ServalJobs
import ServalLogs
import ServalServices

/// Model workers' output over Serval's REST API: `GET /endpoints/{name}/logs` and `GET /transform-jobs/{name}/logs`
/// with `?since=` (ISO 8601 or epoch seconds), `?limit=` (1-10,000, default 1000) and `?nextToken=` (from the
/// previous page: only lines written after it). Lines come in the order they were written, across the resource's
/// streams. A resource that is gone still shows the logs it left (they age out; docs/logs.md).
struct LogRoutes: Sendable {
    let services: HTTPServices

    /// Registers the routes; reading logs describes.
    func register(on routes: ServalRoutes) {
        routes.add(.get, "/endpoints/{name}/logs", .requires(.describeResources), use: endpointLogs)
        routes.add(.get, "/transform-jobs/{name}/logs", .requires(.describeResources), use: transformJobLogs)
    }

    @Sendable func endpointLogs(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        try ResourceName.validate(name, field: "name")
        return try await page(request, group: WorkerLogDestination.endpointGroup(name), prefix: nil) {
            _ = try await services.endpoints.get(name)
        }
    }

    @Sendable func transformJobLogs(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        try ResourceName.validate(name, field: "name")
        return try await page(request, group: WorkerLogDestination.transformJobsGroup, prefix: name + "/") {
            _ = try await services.transformJobs.describe(name)
        }
    }

    /// A page of the group's lines (of the streams with `prefix`); when there is none at all, `exists` throws
    /// ``ServalError/Code/notFound`` for a resource that does not exist.
    private func page(
        _ request: Request, group: String, prefix: String?, exists: () async throws -> Void
    ) async throws -> Response {
        let parameters = request.uri.queryParameters
        var query = LogTailQuery(group: group)
        query.streamNamePrefix = prefix
        query.since = try parameters.get("since").map { try RESTRoutes.time($0, field: "since") }
        if let limit = parameters.get("limit") {
            guard let parsed = Int(limit) else { throw ServalError.invalid("limit", "\"\(limit)\" is not a number; use 1-10000.") }
            query.limit = parsed
        }
        query.after = parameters.get("nextToken")
        let page = try await services.logs.tail(query)
        if page.events.isEmpty, try await !services.logs.hasStreams(group: group, prefix: prefix) {
            try await exists()
        }
        return try RESTRoutes.json(
            WorkerLogPage(
                logGroup: group,
                events: page.events.map { WorkerLogLine(time: $0.timestamp.iso8601, stream: $0.stream, message: $0.message) },
                nextToken: page.nextToken))
    }
}
