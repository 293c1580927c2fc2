import Crypto
import Foundation
import ServalCore
import ServalStore

/// The JSON body of a webhook notification, mirroring SageMaker's async inference success and error
/// notifications (`invocationStatus`, `inferenceId`, `requestParameters`, `responseParameters`), plus Serval's
/// `attempts`.
struct AsyncNotificationBody: Codable, Equatable {
    struct RequestParameters: Codable, Equatable {
        var contentType: String
        var endpointName: String
        var inputLocation: String?
    }

    struct ResponseParameters: Codable, Equatable {
        var contentType: String?
        var outputLocation: String?
        var failureLocation: String?
    }

    var eventVersion = "1.0"
    var eventSource = "serval:async-inference"
    var eventName = "InferenceResult"
    var eventTime: String
    var receivedTime: String
    var invocationStatus: String
    var inferenceId: String
    var failureReason: String?
    var attempts: Int
    var requestParameters: RequestParameters
    var responseParameters: ResponseParameters

    /// The body for `invocation` ending with `outcome` at `now`.
    init(_ invocation: AsyncInvocation, outcome: AsyncOutcome, now: Timestamp) {
        eventTime = now.iso8601
        receivedTime = invocation.createdAt.iso8601
        inferenceId = invocation.id
        attempts = invocation.attempts
        requestParameters = RequestParameters(
            contentType: invocation.contentType, endpointName: invocation.endpointName,
            inputLocation: invocation.inputLocation)
        switch outcome {
        case .completed(let contentType):
            invocationStatus = "Completed"
            responseParameters = ResponseParameters(contentType: contentType, outputLocation: invocation.outputLocation)
        case .failed(let reason), .expired(let reason):
            invocationStatus = outcome == .expired(reason: reason) ? "Expired" : "Failed"
            failureReason = reason
            responseParameters = ResponseParameters(failureLocation: invocation.failureLocation)
        }
    }

    /// The notifications to record for `invocation` ending with `outcome`: one to the config's success or error
    /// webhook, signed when the config has a secret.
    static func notifications(
        for invocation: AsyncInvocation, outcome: AsyncOutcome, config: AsyncInferenceConfig?, now: Timestamp
    ) -> [NewAsyncNotification] {
        let url: String?
        if case .completed = outcome { url = config?.successWebhook } else { url = config?.errorWebhook }
        guard let url else { return [] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let body = try? encoder.encode(AsyncNotificationBody(invocation, outcome: outcome, now: now)) else { return [] }
        let bytes = Array(body)
        return [NewAsyncNotification(url: url, body: bytes, signature: config?.webhookSecret.map { signature(of: bytes, secret: $0) })]
    }

    /// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
    static func signature(of body: [UInt8], secret: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))
        return "sha256=" + hexString(code)
    }
}
