public import ServalCore

/// A request to authenticate with AWS Signature Version 4, as plain values taken from whatever HTTP framework
/// received it.
public struct SigV4Request: Sendable {
    /// The HTTP method, e.g. `POST`.
    public var method: String
    /// The path exactly as it appeared on the request line, still percent-encoded, without the query: e.g.
    /// `/endpoints/my-endpoint/invocations`. Do not decode it: SigV4 canonicalizes the raw form.
    public var path: String
    /// The raw query string after `?`, still percent-encoded, or `""`.
    public var query: String
    /// Every header field in the order received; names are compared case-insensitively and a name may repeat.
    ///
    /// Include `host`: frameworks built on swift-http-types move the HTTP/1 `Host` header into the request's
    /// authority, so add it back as `("host", authority)`.
    public var headers: [(name: String, value: String)]
    /// Where the hash of the body that was signed comes from.
    public var payload: PayloadHashSource

    /// Creates a request.
    public init(
        method: String, path: String, query: String = "", headers: [(name: String, value: String)],
        payload: PayloadHashSource
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.payload = payload
    }

    /// The values of every header field named `name` (case-insensitively), in order.
    func values(of name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name }.map(\.value)
    }
}

/// Where the payload hash of a request's canonical request comes from.
///
/// Whichever source is chosen, a request that carries an `x-amz-content-sha256` header signs that header's value:
/// it is what every SDK puts in its canonical request when it sends the header. The source decides what happens
/// when the header is absent, and whether Serval can check the body against it.
public enum PayloadHashSource: Sendable, Equatable {
    /// S3's rule: the `x-amz-content-sha256` header names the payload hash (a hex SHA-256, `UNSIGNED-PAYLOAD` or a
    /// `STREAMING-…` value). Header authentication without it is malformed; a presigned URL without it signs
    /// `UNSIGNED-PAYLOAD`. Use it when the body is streamed: the body has not been read yet, so the caller checks
    /// it afterwards against ``SigV4Authentication/unverifiedPayloadSHA256``.
    case header
    /// The hex SHA-256 of the whole body, computed by the caller: SageMaker's APIs, whose bodies are read whole
    /// before they are handled. Signed when the header is absent; compared with the header when present.
    case computed(sha256Hex: String)
    /// The payload is declared unsigned: `UNSIGNED-PAYLOAD` is signed when the header is absent.
    case unsigned

    /// The source for a body the caller holds whole: its SHA-256.
    public static func sha256(of body: [UInt8]) -> PayloadHashSource {
        .computed(sha256Hex: SigV4Crypto.sha256Hex(body))
    }
}

/// What a SigV4 request's signature covers of its body.
public enum SignedPayload: Sendable, Equatable {
    /// The body's SHA-256 (lowercase hex) is signed.
    case sha256(String)
    /// The body is not signed (`UNSIGNED-PAYLOAD`).
    case unsigned
    /// The body is S3's `aws-chunked` encoding of a streamed upload.
    case streaming(StreamingPayload)

    /// The literal `x-amz-content-sha256` values other than a hex digest.
    static let unsignedValue = "UNSIGNED-PAYLOAD"

    /// The value that appears as the canonical request's last line.
    var canonicalValue: String {
        switch self {
        case .sha256(let digest): digest
        case .unsigned: Self.unsignedValue
        case .streaming(let kind): kind.rawValue
        }
    }

    /// Parses an `x-amz-content-sha256` value: 64 hex digits (either case), `UNSIGNED-PAYLOAD` or a streaming value.
    init?(headerValue: String) {
        if headerValue == Self.unsignedValue {
            self = .unsigned
        } else if let kind = StreamingPayload(rawValue: headerValue) {
            self = .streaming(kind)
        } else if isLowercaseSHA256Hex(headerValue.lowercased()) {
            self = .sha256(headerValue)
        } else {
            return nil
        }
    }
}

/// The `x-amz-content-sha256` values of S3 streaming uploads (`Content-Encoding: aws-chunked`).
public enum StreamingPayload: String, Sendable, Equatable, CaseIterable {
    /// Every chunk carries a signature chained from the request's (seed) signature; see ``SigV4ChunkVerifier``.
    case signedChunks = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    /// Signed chunks followed by a signed trailer (a checksum header). The trailer signature is not verified.
    case signedChunksWithTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    /// Unsigned chunks followed by a trailing checksum, what recent SDKs send for uploads over HTTPS.
    case unsignedChunksWithTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    /// Whether each chunk carries a signature.
    public var hasChunkSignatures: Bool { self != .unsignedChunksWithTrailer }
}

/// A SigV4 credential scope: `DATE/REGION/SERVICE/aws4_request`.
public struct SigV4CredentialScope: Sendable, Equatable, CustomStringConvertible {
    /// The signing date, `yyyyMMdd`.
    public var date: String
    /// The region the client signed for, e.g. `us-east-1`. Serval accepts any unless configured otherwise.
    public var region: String
    /// The service signing name, e.g. `sagemaker` or `s3`.
    public var service: String

    /// Creates a scope.
    public init(date: String, region: String, service: String) {
        self.date = date
        self.region = region
        self.service = service
    }

    /// `DATE/REGION/SERVICE/aws4_request`.
    public var description: String { "\(date)/\(region)/\(service)/\(SigV4Crypto.terminator)" }
}

/// How a SigV4 request carried its signature.
public enum SigV4Mechanism: Sendable, Equatable {
    /// In the `Authorization` header.
    case authorizationHeader
    /// In presigned-URL query parameters, valid until `expiresAt`.
    case presignedURL(expiresAt: Timestamp)
}
