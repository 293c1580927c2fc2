import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServalAPI
import ServalAuth
import ServalCore
import ServalJobs
import ServalObjects
import ServalStore

/// Asynchronous inference over HTTP: SageMaker's InvokeEndpointAsync (`POST .../async-invocations`, 202), and
/// Serval's status, list, result and cancel routes.
struct AsyncRoutes: Sendable {
    let service: AsyncInvocationService

    /// Registers the routes: submitting is SageMaker's runtime and invokes; status, listing and results are for
    /// whoever may read invocation results; cancelling is for whoever may invoke.
    func register(on routes: ServalRoutes) {
        routes.add(.post, "/endpoints/{name}/async-invocations", .requires(.invoke), shape: .sageMakerRuntime, use: submit)
        routes.add(.get, "/endpoints/{name}/async-invocations", .requires(.readInvocationResults), use: list)
        routes.add(.get, "/endpoints/{name}/async-invocations/{id}", .requires(.readInvocationResults), use: describe)
        routes.add(.get, "/endpoints/{name}/async-invocations/{id}/result", .requires(.readInvocationResults), use: result)
        routes.add(.delete, "/endpoints/{name}/async-invocations/{id}", .requires(.invoke), use: cancel)
    }

    /// InvokeEndpointAsync: headers as SageMaker's (CONTRACTS.md §1), an input location or an inline body.
    @Sendable func submit(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        let headers = request.headers
        var inline: ByteBuffer?
        if headers[.asyncInputLocation] == nil {
            do {
                inline = try await request.body.collect(upTo: AsyncLimits.maxInlineBodyBytes)
            } catch is NIOTooManyBytesError {
                throw ServalError(
                    .payloadTooLarge,
                    "The inline body is larger than \(AsyncLimits.maxInlineBodyBytes) bytes. Upload the input to the object store and pass X-Amzn-SageMaker-InputLocation.")
            }
        }
        let submission = AsyncSubmission(
            inputLocation: headers[.asyncInputLocation], inlineBody: inline,
            contentType: headers[.asyncContentType] ?? headers[.contentType] ?? "",
            accept: headers[.asyncAccept] ?? headers[.accept] ?? "",
            customAttributes: headers[.customAttributes] ?? "", inferenceId: headers[.inferenceID],
            requestTTLSeconds: try Self.integer(headers, .requestTTLSeconds),
            invocationTimeoutSeconds: try Self.integer(headers, .invocationTimeoutSeconds),
            outputPathExtension: headers[.outputPathExtension], filename: headers[.asyncFilename])
        let (invocation, _) = try await service.submit(endpoint: name, submission)
        let data = try JSONEncoder().encode(AsyncInvocationAccepted(inferenceId: invocation.id))
        return Response(
            status: .accepted,
            headers: [
                .contentType: "application/json", .asyncOutputLocation: invocation.outputLocation,
                .asyncFailureLocation: invocation.failureLocation,
            ],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    @Sendable func describe(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let invocation = try await service.get(
            endpoint: try context.parameters.require("name"), id: try context.parameters.require("id"))
        return try RESTRoutes.json(AsyncInvocationDescription(invocation))
    }

    /// `?status=&createdAfter=&createdBefore=&limit=&nextToken=`; times are ISO 8601 or epoch seconds.
    @Sendable func list(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        var filter = AsyncInvocationFilter()
        if let status = query.get("status") {
            guard let parsed = AsyncInvocationStatus(rawValue: status) else {
                throw ServalError.invalid(
                    "status", "\"\(status)\" is not a status; use one of \(AsyncInvocationStatus.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            filter.status = parsed
        }
        filter.createdAfter = try query.get("createdAfter").map { try RESTRoutes.time($0, field: "createdAfter") }
        filter.createdBefore = try query.get("createdBefore").map { try RESTRoutes.time($0, field: "createdBefore") }
        if let limit = query.get("limit") {
            guard let parsed = Int(limit) else { throw ServalError.invalid("limit", "\"\(limit)\" is not a number.") }
            filter.limit = parsed
        }
        filter.nextToken = query.get("nextToken")
        let page = try await service.list(endpoint: try context.parameters.require("name"), filter: filter)
        return try RESTRoutes.json(
            AsyncInvocationList(invocations: page.invocations.map(AsyncInvocationDescription.init), nextToken: page.nextToken))
    }

    /// Streams a completed invocation's output.
    @Sendable func result(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let (invocation, object) = try await service.result(
            endpoint: try context.parameters.require("name"), id: try context.parameters.require("id"))
        let contentType = invocation.outputContentType.flatMap { $0.isEmpty ? nil : $0 } ?? "application/octet-stream"
        return Response(
            status: .ok,
            headers: [.contentType: contentType, .contentLength: "\(object.info.size)", .asyncOutputLocation: invocation.outputLocation],
            body: ResponseBody(asyncSequence: object.body))
    }

    @Sendable func cancel(_ request: Request, context: ServalRequestContext) async throws -> Response {
        let invocation = try await service.cancel(
            endpoint: try context.parameters.require("name"), id: try context.parameters.require("id"))
        return try RESTRoutes.json(AsyncInvocationDescription(invocation))
    }

    private static func integer(_ headers: HTTPFields, _ name: HTTPField.Name) throws(ServalError) -> Int? {
        guard let text = headers[name] else { return nil }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
            throw .invalid(name.rawName, "\"\(text)\" is not a whole number of seconds.")
        }
        return value
    }
}

extension HTTPField.Name {
    static let asyncInputLocation = Self("X-Amzn-SageMaker-InputLocation")!
    static let asyncContentType = Self("X-Amzn-SageMaker-Content-Type")!
    static let asyncAccept = Self("X-Amzn-SageMaker-Accept")!
    static let requestTTLSeconds = Self("X-Amzn-SageMaker-RequestTTLSeconds")!
    static let invocationTimeoutSeconds = Self("X-Amzn-SageMaker-InvocationTimeoutSeconds")!
    static let outputPathExtension = Self("X-Amzn-SageMaker-S3OutputPathExtension")!
    static let asyncFilename = Self("X-Amzn-SageMaker-Filename")!
    static let asyncOutputLocation = Self("X-Amzn-SageMaker-OutputLocation")!
    static let asyncFailureLocation = Self("X-Amzn-SageMaker-FailureLocation")!
}
