import Foundation
public import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
import ServalAPI
public import ServalCore

/// Maps every error to one JSON shape per protocol, once: under `/v2` the Open Inference Protocol's `{"error"}`
/// (``OIPRoutes/errorResponse(for:)``); elsewhere `{"code", "message"}` with the status for its code, SageMaker's
/// `x-amzn-ErrorType` header, and `Retry-After` when a retry may succeed. Unknown errors become a generic 500;
/// their details go to the log only.
public struct ErrorMiddleware: RouterMiddleware {
    public typealias Context = ServalRequestContext

    /// Creates the middleware.
    public init() {}

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let serval = Self.servalError(from: error, request: request, context: context)
            response = OIPRoutes.owns(request.uri.path) ? OIPRoutes.errorResponse(for: serval) : Self.response(for: serval)
        }
        response.headers[.requestID] = context.requestID
        return response
    }

    /// The ``ServalError`` any error thrown while handling `request` stands for; what is not Serval's own
    /// becomes a generic 500, with the details in the log only.
    static func servalError(from error: any Error, request: Request, context: Context) -> ServalError {
        switch error {
        case let error as ServalError:
            return error
        case let error as HTTPError:
            return servalError(from: error.status, body: error.body, request: request)
        case is NIOTooManyBytesError:
            return servalError(from: .contentTooLarge, body: nil, request: request)
        case let error as DecodingError:
            return ServalError(.validationError, "The JSON body is invalid: \(describe(error))")
        default:
            context.logger.error("Unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return ServalError(
                .internalFailure,
                "Serval failed to handle the request; the server log has the details (request id \(context.requestID)).")
        }
    }

    /// The HTTP status for each error code.
    public static func status(for code: ServalError.Code) -> HTTPResponse.Status {
        switch code {
        case .validationError: .badRequest
        case .notFound: .notFound
        case .conflict: .conflict
        case .payloadTooLarge: .contentTooLarge
        case .modelError: HTTPResponse.Status(code: 424, reasonPhrase: "Failed Dependency")
        case .modelNotReady: .tooManyRequests
        case .serviceUnavailable, .overloaded: .serviceUnavailable
        case .invocationTimeout: .gatewayTimeout
        case .internalFailure: .internalServerError
        }
    }

    /// The code botocore sees in `x-amzn-ErrorType`: SageMaker reports a missing endpoint as a ValidationError
    /// and a full queue as ServiceUnavailable.
    static func sageMakerErrorType(_ code: ServalError.Code) -> String {
        switch code {
        case .notFound: "ValidationError"
        case .overloaded: "ServiceUnavailable"
        default: code.rawValue
        }
    }

    static func response(for error: ServalError) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        headers[.amznErrorType] = sageMakerErrorType(error.code)
        if let seconds = error.retryAfterSeconds { headers[.retryAfter] = String(seconds) }
        // SageMaker's ModelError also carries the container's status and text.
        let isModelError = error.code == .modelError
        let body = ErrorBody(
            code: error.code.rawValue, message: error.message, originalStatusCode: isModelError ? error.modelStatusCode : nil,
            originalMessage: isModelError ? error.message : nil)
        return Response(
            status: status(for: error.code), headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: (try? JSONEncoder().encode(body)) ?? Data())))
    }

    private static func servalError(from status: HTTPResponse.Status, body: String?, request: Request) -> ServalError {
        switch status {
        case .contentTooLarge:
            return ServalError(
                .payloadTooLarge,
                "The request body is larger than this route accepts (\(InvocationLimits.maxPayloadBytes) bytes for invocations); use asynchronous inference for larger inputs.")
        case .notFound:
            return ServalError(.notFound, "There is no route \(request.method) \(request.uri.path); see /openapi.json for the API.")
        case .methodNotAllowed:
            return ServalError(.validationError, "\(request.method) is not allowed on \(request.uri.path); see /openapi.json for the API.")
        default:
            return ServalError(status.code >= 500 ? .internalFailure : .validationError, body ?? status.reasonPhrase)
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return path.isEmpty ? "" : " at \(path.hasPrefix(".") ? String(path.dropFirst()) : path)"
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing field \"\(key.stringValue)\"\(path(context))."
        case .typeMismatch(let type, let context): return "expected \(type)\(path(context))."
        case .valueNotFound(let type, let context): return "expected \(type)\(path(context)), found null."
        case .dataCorrupted(let context): return "\(context.debugDescription)\(path(context))"
        @unknown default: return "\(error)"
        }
    }
}

extension HTTPField.Name {
    static let requestID = Self("x-amzn-RequestId")!
    static let amznErrorType = Self("x-amzn-ErrorType")!
    static let invokedProductionVariant = Self("x-Amzn-Invoked-Production-Variant")!
    static let customAttributes = Self("X-Amzn-SageMaker-Custom-Attributes")!
    static let targetVariant = Self("X-Amzn-SageMaker-Target-Variant")!
    static let inferenceID = Self("X-Amzn-SageMaker-Inference-Id")!
}
