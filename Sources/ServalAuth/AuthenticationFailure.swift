public import ServalCore

/// Why a request could not be authenticated, whichever scheme it used (SigV4 or a bearer token).
///
/// Frontends map a failure once, with ``sageMakerError`` (SageMaker's JSON protocols: `x-amzn-ErrorType` and
/// `__type`), ``s3Error`` (S3's XML `<Error><Code>`) or ``message`` (Serval's own REST API). No case carries a secret,
/// so a failure may be logged whole.
public enum AuthenticationFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The request carries no credentials at all: no `Authorization` header and no presigned query parameters.
    case missingAuthentication
    /// The credentials are present but cannot be read; the text says what is wrong.
    case malformed(String, location: CredentialLocation)
    /// No access key has this id (or it was deleted).
    case unknownAccessKey(String)
    /// The SigV4 signature (or a streaming chunk's signature) is not the one the key's secret produces. The details,
    /// when present, are what Serval signed; S3 returns them to the client to debug its signer.
    case signatureMismatch(SignatureMismatchDetails?)
    /// A bearer token names a known access key with the wrong secret.
    case incorrectSecret
    /// The request time is further from the server's clock than the allowed skew (15 minutes by default).
    case requestTimeTooSkewed(requestTime: Timestamp, serverTime: Timestamp, allowedSkewSeconds: Int)
    /// A presigned URL's validity period (`X-Amz-Date` plus `X-Amz-Expires`) is over.
    case expired(expiredAt: Timestamp, serverTime: Timestamp)
    /// The body's SHA-256 is not the `x-amz-content-sha256` the request signed.
    case payloadHashMismatch

    /// Where the credentials were read from.
    public enum CredentialLocation: String, Sendable, Equatable {
        /// The `Authorization` header.
        case header
        /// Presigned-URL query parameters (`X-Amz-Algorithm`, `X-Amz-Credential`, ...).
        case query
    }

    /// A message for the client: what is wrong and what to do. Never contains a secret.
    public var message: String {
        switch self {
        case .missingAuthentication:
            "The request has no credentials. Sign it with an access key (AWS Signature Version 4) or send "
                + "'Authorization: Bearer ACCESS_KEY_ID:SECRET'; create a key with 'serval keys create'."
        case .malformed(let reason, _):
            reason
        case .unknownAccessKey(let id) where AccessKey.isWellFormedID(id):
            "The access key id '\(id)' does not exist; check the configured access key or create one with "
                + "'serval keys create'."
        case .unknownAccessKey:
            // Not echoed: text that is no key id may be the secret, sent in the id's place.
            "The access key id is not a Serval access key id (\(AccessKey.idLength) characters starting with "
                + "'\(AccessKey.idPrefix)'); check that the access key id and the secret are not swapped."
        case .signatureMismatch:
            "The request signature we calculated does not match the signature you provided. Check your secret access "
                + "key and signing method."
        case .incorrectSecret:
            "The secret does not match the access key id; check the configured secret access key."
        case .requestTimeTooSkewed(let requestTime, let serverTime, let allowed):
            requestTime < serverTime
                ? "Signature expired: \(AmzDate(requestTime).basic) is now earlier than "
                    + "\(AmzDate(Timestamp(millisecondsSinceEpoch: serverTime.millisecondsSinceEpoch - Int64(allowed) * 1000)).basic) "
                    + "(\(AmzDate(serverTime).basic) - \(Self.minutes(allowed)) min.). Check the client's clock."
                : "Signature not yet current: \(AmzDate(requestTime).basic) is still later than "
                    + "\(AmzDate(Timestamp(millisecondsSinceEpoch: serverTime.millisecondsSinceEpoch + Int64(allowed) * 1000)).basic) "
                    + "(\(AmzDate(serverTime).basic) + \(Self.minutes(allowed)) min.). Check the client's clock."
        case .expired(let expiredAt, let serverTime):
            "Request has expired: the presigned URL expired at \(AmzDate(expiredAt).basic) and it is now "
                + "\(AmzDate(serverTime).basic). Create a new presigned URL."
        case .payloadHashMismatch:
            "The x-amz-content-sha256 header does not match the SHA-256 of the request body."
        }
    }

    /// The error as SageMaker's JSON protocols report it (`x-amzn-ErrorType`, `__type` and `message`), with the code
    /// botocore raises for it.
    ///
    /// Codes: `MissingAuthenticationTokenException`, `IncompleteSignatureException`, `UnrecognizedClientException`,
    /// `InvalidSignatureException` (wrong signature, clock skew and expiry, as AWS's JSON services answer). The
    /// status follows Serval's rule rather than AWS's 400/403: 401 for every authentication failure, 400 for a body
    /// that does not match its signed hash.
    public var sageMakerError: AWSErrorResponse {
        switch self {
        case .missingAuthentication:
            AWSErrorResponse(
                code: "MissingAuthenticationTokenException", message: "Missing Authentication Token. " + message,
                httpStatus: 401)
        case .malformed:
            AWSErrorResponse(code: "IncompleteSignatureException", message: message, httpStatus: 401)
        case .unknownAccessKey:
            AWSErrorResponse(
                code: "UnrecognizedClientException",
                message: "The security token included in the request is invalid. " + message,
                httpStatus: 401)
        case .signatureMismatch, .incorrectSecret, .requestTimeTooSkewed, .expired:
            AWSErrorResponse(code: "InvalidSignatureException", message: message, httpStatus: 401)
        case .payloadHashMismatch:
            AWSErrorResponse(code: "InvalidSignatureException", message: message, httpStatus: 400)
        }
    }

    /// The error as S3 reports it in its XML `<Error>` body.
    ///
    /// Codes: `AccessDenied` (no credentials, expired presigned URL), `AuthorizationHeaderMalformed` or
    /// `AuthorizationQueryParametersError`, `InvalidAccessKeyId`, `SignatureDoesNotMatch`, `RequestTimeTooSkewed`
    /// and `XAmzContentSHA256Mismatch`, with S3's own messages. Status as in ``sageMakerError``.
    public var s3Error: AWSErrorResponse {
        switch self {
        case .missingAuthentication:
            AWSErrorResponse(code: "AccessDenied", message: "Access Denied", httpStatus: 401)
        case .malformed(let reason, .header):
            AWSErrorResponse(
                code: "AuthorizationHeaderMalformed", message: "The authorization header is malformed; " + reason,
                httpStatus: 401)
        case .malformed(let reason, .query):
            AWSErrorResponse(code: "AuthorizationQueryParametersError", message: reason, httpStatus: 401)
        case .unknownAccessKey:
            AWSErrorResponse(
                code: "InvalidAccessKeyId",
                message: "The AWS Access Key Id you provided does not exist in our records.", httpStatus: 401)
        case .signatureMismatch, .incorrectSecret:
            AWSErrorResponse(
                code: "SignatureDoesNotMatch",
                message:
                    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                httpStatus: 401)
        case .requestTimeTooSkewed:
            AWSErrorResponse(
                code: "RequestTimeTooSkewed",
                message: "The difference between the request time and the current time is too large.",
                httpStatus: 401)
        case .expired:
            AWSErrorResponse(code: "AccessDenied", message: "Request has expired", httpStatus: 401)
        case .payloadHashMismatch:
            AWSErrorResponse(
                code: "XAmzContentSHA256Mismatch",
                message: "The provided 'x-amz-content-sha256' header does not match what was computed.",
                httpStatus: 400)
        }
    }

    /// The case and its ``message``.
    public var description: String {
        switch self {
        case .missingAuthentication: "missingAuthentication: \(message)"
        case .malformed(_, let location): "malformed(\(location.rawValue)): \(message)"
        case .unknownAccessKey: "unknownAccessKey: \(message)"
        case .signatureMismatch: "signatureMismatch: \(message)"
        case .incorrectSecret: "incorrectSecret: \(message)"
        case .requestTimeTooSkewed: "requestTimeTooSkewed: \(message)"
        case .expired: "expired: \(message)"
        case .payloadHashMismatch: "payloadHashMismatch: \(message)"
        }
    }

    private static func minutes(_ seconds: Int) -> String {
        seconds % 60 == 0 ? String(seconds / 60) : String(Double(seconds) / 60)
    }
}

/// What Serval signed for a request whose signature did not match: the canonical request and the string to sign.
///
/// Neither contains a secret (the `Authorization` header is never signed); S3 returns both to the client in its
/// `SignatureDoesNotMatch` error, so that the client can compare them with its own.
public struct SignatureMismatchDetails: Sendable, Equatable {
    /// The access key id the request named.
    public var accessKeyID: String
    /// The canonical request Serval computed.
    public var canonicalRequest: String
    /// The string to sign Serval computed.
    public var stringToSign: String

    /// Creates the details.
    public init(accessKeyID: String, canonicalRequest: String, stringToSign: String) {
        self.accessKeyID = accessKeyID
        self.canonicalRequest = canonicalRequest
        self.stringToSign = stringToSign
    }
}

/// An AWS-style error: the code SDKs branch on, a message and an HTTP status.
public struct AWSErrorResponse: Sendable, Equatable {
    /// The error code, e.g. `InvalidSignatureException` or `SignatureDoesNotMatch`.
    public var code: String
    /// The message for the client.
    public var message: String
    /// The HTTP status to answer with.
    public var httpStatus: Int

    /// Creates an error response.
    public init(code: String, message: String, httpStatus: Int) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
    }
}
