import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOHTTP1
import ServalArtifacts
public import ServalAPI
import ServalCore

#if canImport(Glibc)
import Glibc
#endif

/// Asynchronous inference: submit, status, wait, list, result, cancel.
extension ServalClient {
    /// What `POST /endpoints/{name}/async-invocations` answered.
    public struct AsyncSubmitted: Sendable, Equatable {
        public var inferenceId: String
        public var outputLocation: String
        public var failureLocation: String
    }

    /// Submits an async invocation: `inputLocation` names an object in Serval's object store, or `body` is sent
    /// inline (at most 128,000 bytes).
    public func submitAsync(
        _ name: String, inputLocation: String? = nil, body: ByteBuffer? = nil, contentType: String? = nil,
        accept: String? = nil, inferenceId: String? = nil, requestTTLSeconds: Int? = nil,
        invocationTimeoutSeconds: Int? = nil
    ) async throws -> AsyncSubmitted {
        var headers: [(String, String)] = []
        if let inputLocation { headers.append(("X-Amzn-SageMaker-InputLocation", inputLocation)) }
        if let contentType { headers.append(("X-Amzn-SageMaker-Content-Type", contentType)) }
        if let accept { headers.append(("X-Amzn-SageMaker-Accept", accept)) }
        if let inferenceId { headers.append(("X-Amzn-SageMaker-Inference-Id", inferenceId)) }
        if let requestTTLSeconds { headers.append(("X-Amzn-SageMaker-RequestTTLSeconds", "\(requestTTLSeconds)")) }
        if let invocationTimeoutSeconds {
            headers.append(("X-Amzn-SageMaker-InvocationTimeoutSeconds", "\(invocationTimeoutSeconds)"))
        }
        let response = try await send(.POST, "/endpoints/\(escape(name))/async-invocations", headers: headers, body: body)
        let accepted: AsyncInvocationAccepted = try decode(response)
        return AsyncSubmitted(
            inferenceId: accepted.inferenceId, outputLocation: response.header("X-Amzn-SageMaker-OutputLocation") ?? "",
            failureLocation: response.header("X-Amzn-SageMaker-FailureLocation") ?? "")
    }

    /// The invocation's status.
    public func asyncInvocation(_ name: String, id: String) async throws -> AsyncInvocationDescription {
        try await decode(send(.GET, "/endpoints/\(escape(name))/async-invocations/\(escape(id))"))
    }

    /// A page of the endpoint's invocations, newest first.
    public func asyncInvocations(
        _ name: String, status: String? = nil, limit: Int? = nil, nextToken: String? = nil
    ) async throws -> AsyncInvocationList {
        var query: [String] = []
        if let status { query.append("status=\(queryEscape(status))") }
        if let limit { query.append("limit=\(limit)") }
        if let nextToken { query.append("nextToken=\(queryEscape(nextToken))") }
        let suffix = query.isEmpty ? "" : "?" + query.joined(separator: "&")
        return try await decode(send(.GET, "/endpoints/\(escape(name))/async-invocations\(suffix)"))
    }

    /// Polls until the invocation has ended (Completed, Failed or Expired), or `timeout` passes.
    public func waitForAsyncInvocation(
        _ name: String, id: String, timeout: Duration = .seconds(3600)
    ) async throws -> AsyncInvocationDescription {
        let deadline = ContinuousClock.now + timeout
        var delay = Duration.milliseconds(20)
        while true {
            let invocation = try await asyncInvocation(name, id: id)
            if ["Completed", "Failed", "Expired"].contains(invocation.status) { return invocation }
            guard ContinuousClock.now < deadline else {
                throw ServalError(.serviceUnavailable, "Invocation \"\(id)\" is still \(invocation.status) after \(timeout).")
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .milliseconds(500))
        }
    }

    /// The completed invocation's output, whole.
    public func asyncResult(_ name: String, id: String) async throws -> RawResponse {
        let response = try await send(.GET, "/endpoints/\(escape(name))/async-invocations/\(escape(id))/result")
        try check(response)
        return response
    }

    /// Streams the completed invocation's output into `path` (`-` for standard output); returns its size.
    public func downloadAsyncResult(_ name: String, id: String, to path: String) async throws -> Int64 {
        let request = makeRequest(.GET, "/endpoints/\(escape(name))/async-invocations/\(escape(id))/result")
        let response = try await http.execute(request, timeout: timeout)
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: 1 << 20)
            throw Self.error(from: RawResponse(status: Int(response.status.code), headers: [], body: body))
        }
        let fd = path == "-" ? STDOUT_FILENO : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ServalError(.validationError, "Cannot create \(path) (errno \(errno)).") }
        defer { if fd != STDOUT_FILENO { close(fd) } }
        var total: Int64 = 0
        for try await chunk in response.body {
            let failure = chunk.withUnsafeReadableBytes { writeFully(fd, $0) }
            if failure != 0 { throw ServalError(.internalFailure, "Writing \(path) failed (errno \(failure)).") }
            total += Int64(chunk.readableBytes)
        }
        return total
    }

    /// Cancels a queued invocation.
    public func cancelAsync(_ name: String, id: String) async throws -> AsyncInvocationDescription {
        try await decode(send(.DELETE, "/endpoints/\(escape(name))/async-invocations/\(escape(id))"))
    }

}
