import Foundation
import NIOHTTP1
public import ServalAPI
import ServalCore

/// Batch transform jobs: create, describe, list, stop, wait.
extension ServalClient {
    /// Creates a job; returns its description.
    public func createTransformJob(_ request: CreateTransformJobRequest) async throws -> TransformJobDescription {
        try await decode(send(.POST, "/transform-jobs", json: request))
    }

    /// The job's description, with its progress.
    public func transformJob(_ name: String) async throws -> TransformJobDescription {
        try await decode(send(.GET, "/transform-jobs/\(escape(name))"))
    }

    /// A page of jobs, newest first.
    public func transformJobs(
        nameContains: String? = nil, status: String? = nil, maxResults: Int? = nil, nextToken: String? = nil
    ) async throws -> TransformJobList {
        var query: [String] = []
        if let nameContains { query.append("nameContains=\(queryEscape(nameContains))") }
        if let status { query.append("statusEquals=\(queryEscape(status))") }
        if let maxResults { query.append("maxResults=\(maxResults)") }
        if let nextToken { query.append("nextToken=\(queryEscape(nextToken))") }
        let suffix = query.isEmpty ? "" : "?" + query.joined(separator: "&")
        return try await decode(send(.GET, "/transform-jobs\(suffix)"))
    }

    /// Asks the job to stop.
    public func stopTransformJob(_ name: String) async throws -> TransformJobDescription {
        try await decode(send(.POST, "/transform-jobs/\(escape(name))/stop", json: [String: String]()))
    }

    /// Polls until the job has ended (Completed, Failed or Stopped) or `timeout` passes, calling `progress` with
    /// each description seen.
    public func waitForTransformJob(
        _ name: String, timeout: Duration = .seconds(86_400),
        progress: (TransformJobDescription) -> Void = { _ in }
    ) async throws -> TransformJobDescription {
        let deadline = ContinuousClock.now + timeout
        var delay = Duration.milliseconds(50)
        while true {
            let job = try await transformJob(name)
            progress(job)
            if ["Completed", "Failed", "Stopped"].contains(job.TransformJobStatus) { return job }
            guard ContinuousClock.now < deadline else {
                throw ServalError(.serviceUnavailable, "Transform job \"\(name)\" is still \(job.TransformJobStatus) after \(timeout).")
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .milliseconds(1000))
        }
    }
}
