import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServalAPI
import ServalAuth
import ServalCore

/// Authenticates and authorizes a request on Serval's HTTP port for the action its route was registered with
/// (``ServalRoutes``); open routes (`GET /ping`, `GET /v2`, `GET /v2/health/live`, `GET /v2/health/ready`) never
/// come here.
///
/// Credentials are either `Authorization: Bearer ACCESS_KEY_ID:SECRET` (Serval's CLI and REST clients) or an AWS
/// Signature Version 4 for the signing name `sagemaker` (boto3's `sagemaker` and `sagemaker-runtime` clients) or
/// `logs` (its CloudWatch Logs client).
/// For SigV4 the body is read (up to the invocation limit) and its SHA-256 is what the signature must cover; a
/// request that declares `x-amz-content-sha256: UNSIGNED-PAYLOAD` is not read. Refusals are 401 (no, unreadable or
/// wrong credentials) or 403 (a role without the right), written in the route's ``ErrorShape``.
///
/// Neither the `Authorization` header nor a secret is ever logged; the access key id is, as `access_key`.
struct Authentication: Sendable {
    let authenticator: RequestAuthenticator
    let verifier: SigV4Verifier

    private static let contentSHA256Header = HTTPField.Name("x-amz-content-sha256")!

    /// Creates the check; SigV4 requests must be scoped to the `sagemaker` signing name, or `logs` (boto3's
    /// CloudWatch Logs client).
    init(authenticator: RequestAuthenticator) {
        self.authenticator = authenticator
        self.verifier = SigV4Verifier(services: ["sagemaker", "logs"])
    }

    /// Calls `next` when the request's key may perform `action`; otherwise answers the refusal in `shape`.
    func authorize(
        _ incoming: Request, context incomingContext: ServalRequestContext, action: AccessAction, shape: ErrorShape,
        next: (Request, ServalRequestContext) async throws -> Response
    ) async throws -> Response {
        var request = incoming
        var context = incomingContext
        let rawPath = request.head.path ?? "/"
        let authorization = request.headers[values: .authorization]
        let rawQuery = rawPath.firstIndex(of: "?").map { String(rawPath[rawPath.index(after: $0)...]) } ?? ""
        let key: AccessKey
        let outcome: Result<AccessKey, AuthenticationFailure>
        if RequestAuthenticator.isSigV4(authorization: authorization, rawQuery: rawQuery) {
            outcome = try await authenticateSigV4(&request, rawPath: rawPath, rawQuery: rawQuery)
        } else {
            outcome = try await authenticator.bearer(authorization: authorization)
        }
        switch outcome {
        case .success(let authenticated):
            key = authenticated
        case .failure(let failure):
            context.logger.notice(
                "Request refused: not authenticated",
                metadata: ["reason": "\(failure)", "path": "\(request.uri.path)"])
            return Self.refusal(failure, shape: shape)
        }
        context.logger[metadataKey: "access_key"] = .string(key.id)
        guard key.role.permits(action) else {
            context.logger.notice(
                "Request refused: role not permitted",
                metadata: ["role": "\(key.role.rawValue)", "action": "\(action.rawValue)"])
            return Self.refusal(AccessDenied(accessKeyID: key.id, role: key.role, action: action), shape: shape)
        }
        return try await next(request, context)
    }

    /// Verifies a SigV4 request. The body is collected (bounded) and hashed unless it is declared unsigned, and
    /// is put back for the handler.
    private func authenticateSigV4(
        _ request: inout Request, rawPath: String, rawQuery: String
    ) async throws -> Result<AccessKey, AuthenticationFailure> {
        var headers: [(name: String, value: String)] = request.headers.map { ($0.name.canonicalName, $0.value) }
        if let authority = request.head.authority { headers.append(("host", authority)) }
        let payload: PayloadHashSource
        if request.headers[Self.contentSHA256Header]?.trimmingCharacters(in: .whitespaces) == "UNSIGNED-PAYLOAD" {
            payload = .unsigned
        } else {
            let body = try await request.collectBody(upTo: InvocationLimits.maxPayloadBytes)
            payload = .sha256(of: Array(body.readableBytesView))
        }
        let path = String(rawPath.prefix { $0 != "?" })
        let sigV4Request = SigV4Request(
            method: request.method.rawValue, path: path, query: rawQuery, headers: headers, payload: payload)
        return try await authenticator.sigV4(sigV4Request, verifier: verifier).map { $0.key }
    }

    // MARK: Refusals

    /// A refusal in the route's protocol: 401 for ``AuthenticationFailure``, 403 for ``AccessDenied``.
    static func refusal(_ failure: AuthenticationFailure, shape: ErrorShape) -> Response {
        let aws = failure.sageMakerError
        switch shape {
        case .rest:
            var response = errorResponse(
                status: aws.httpStatus, code: aws.httpStatus == 401 ? "Unauthenticated" : "ValidationError",
                message: failure.message, shape: shape)
            if aws.httpStatus == 401 { response.headers[.wwwAuthenticate] = "Bearer realm=\"serval\"" }
            return response
        case .sageMakerRuntime, .sageMakerJSON, .openInference:
            return errorResponse(status: aws.httpStatus, code: aws.code, message: aws.message, shape: shape)
        }
    }

    static func refusal(_ denied: AccessDenied, shape: ErrorShape) -> Response {
        let aws = denied.sageMakerError
        return errorResponse(
            status: aws.httpStatus, code: shape == .rest ? "AccessDenied" : aws.code, message: aws.message,
            shape: shape)
    }

    private static func errorResponse(status: Int, code: String, message: String, shape: ErrorShape) -> Response {
        var headers: HTTPFields = [:]
        let body: Data
        switch shape {
        case .rest, .sageMakerRuntime:
            headers[.contentType] = "application/json"
            headers[.amznErrorType] = code
            body = (try? JSONEncoder().encode(ErrorBody(code: code, message: message))) ?? Data()
        case .sageMakerJSON:
            headers[.contentType] = "application/x-amz-json-1.1"
            headers[.amznErrorType] = code
            body = (try? JSONEncoder().encode(["__type": code, "message": message])) ?? Data()
        case .openInference:
            headers[.contentType] = "application/json"
            body = (try? JSONEncoder().encode(["error": message])) ?? Data()
        }
        return Response(
            status: HTTPResponse.Status(code: status), headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
