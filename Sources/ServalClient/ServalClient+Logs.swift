import NIOHTTP1
public import ServalAPI
public import ServalCore

/// Model workers' output: `GET /endpoints/{name}/logs` and `GET /transform-jobs/{name}/logs`.
extension ServalClient {
    /// Whose workers' logs to read.
    public enum LogSource: Sendable, Equatable {
        /// An endpoint's (every variant's).
        case endpoint(String)
        /// A transform job's.
        case transformJob(String)
    }

    /// A page of lines in the order they were written: at or after `since`, after the page `nextToken` ended (only
    /// lines written since, when following), at most `limit` (1-10,000; the server's default is 1000).
    public func logs(
        _ source: LogSource, since: Timestamp? = nil, limit: Int? = nil, nextToken: String? = nil
    ) async throws -> WorkerLogPage {
        let path: String
        switch source {
        case .endpoint(let name): path = "/endpoints/\(escape(name))/logs"
        case .transformJob(let name): path = "/transform-jobs/\(escape(name))/logs"
        }
        var query: [String] = []
        if let since { query.append("since=\(queryEscape(since.iso8601))") }
        if let limit { query.append("limit=\(limit)") }
        if let nextToken { query.append("nextToken=\(queryEscape(nextToken))") }
        return try await decode(send(.GET, path + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))))
    }
}
