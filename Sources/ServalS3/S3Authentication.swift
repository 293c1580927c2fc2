import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServalAuth

/// Authentication on the S3 port: AWS Signature Version 4 for the signing name `s3`, in the `Authorization` header
/// or as a presigned URL, then the key's role (``ServalAuth/AccessAction/readObjects`` for GET and HEAD,
/// ``ServalAuth/AccessAction/writeObjects`` for everything else, and both for a copy).
///
/// Bodies are streamed, so what the signature says of the body is checked while it is read: a signed SHA-256
/// (`x-amz-content-sha256: <hex>`) by hashing the body as it passes (``SHA256CheckedBody``), the chunk signatures
/// of `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` uploads by ``AWSChunkedBody``. Either fails the request before the
/// object store commits anything.
enum S3Authentication {
    static let verifier = SigV4Verifier(services: ["s3"])

    /// Authenticates and authorizes `request`, wrapping its body in a checker when the signature covers a digest
    /// of it. Throws ``ServalAuth/AuthenticationFailure`` or ``ServalAuth/AccessDenied``.
    static func check(
        _ request: inout Request, context: inout S3RequestContext, authenticator: RequestAuthenticator
    ) async throws {
        let rawPath = request.head.path ?? "/"
        let query = rawPath.firstIndex(of: "?").map { String(rawPath[rawPath.index(after: $0)...]) } ?? ""
        try refuseSignatureVersion2(authorization: request.headers[.authorization], query: query)
        var headers: [(name: String, value: String)] = request.headers.map { ($0.name.canonicalName, $0.value) }
        if let authority = request.head.authority { headers.append(("host", authority)) }
        let signed = SigV4Request(
            method: request.method.rawValue, path: String(rawPath.prefix { $0 != "?" }), query: query,
            headers: headers, payload: .header)
        let (key, authentication) = try await authenticator.sigV4(signed, verifier: verifier).get()
        context.logger[metadataKey: "access_key"] = .string(key.id)
        let reads = request.method == .get || request.method == .head
        try key.role.authorize(reads ? .readObjects : .writeObjects, accessKeyID: key.id)
        if request.headers[.init("x-amz-copy-source")!] != nil {
            // A copy reads its source as well as writing its target.
            try key.role.authorize(.readObjects, accessKeyID: key.id)
        }
        if let digest = authentication.unverifiedPayloadSHA256 {
            request.body = RequestBody(asyncSequence: SHA256CheckedBody(base: request.body, expectedHex: digest))
        }
        context.chunkSignatures = authentication.chunkVerifier
    }

    /// Refuses AWS Signature Version 2 (`Authorization: AWS ID:SIG`, or `AWSAccessKeyId` and `Signature` in the
    /// query, what botocore presigns S3 URLs with by default) with a message saying what to use instead.
    static func refuseSignatureVersion2(authorization: String?, query: String) throws(AuthenticationFailure) {
        let advice =
            "Serval accepts AWS Signature Version 4 only; sign with SigV4 (botocore: "
            + "Config(signature_version=\"s3v4\"), also for generate_presigned_url)."
        if let authorization, authorization.hasPrefix("AWS ") {
            throw .malformed("Signature Version 2 is not supported. " + advice, location: .header)
        }
        let names = query.split(separator: "&").map { $0.prefix { $0 != "=" } }
        if names.contains("AWSAccessKeyId"), names.contains("Signature") {
            throw .malformed("Signature Version 2 query authentication is not supported. " + advice, location: .query)
        }
    }
}

/// A body whose SHA-256 must be `expectedHex`: the bytes pass through, and the end of the body fails with
/// ``ServalAuth/AuthenticationFailure/payloadHashMismatch`` when the digest differs.
struct SHA256CheckedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer

    let base: Base
    let expectedHex: String

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let expectedHex: String
        var hash = SHA256()
        var done = false

        mutating func next() async throws -> ByteBuffer? {
            guard !done else { return nil }
            guard let chunk = try await base.next() else {
                done = true
                let digest = hash.finalize().map { byte in
                    let hex = String(byte, radix: 16)
                    return hex.count == 1 ? "0" + hex : hex
                }.joined()
                guard digest == expectedHex.lowercased() else { throw AuthenticationFailure.payloadHashMismatch }
                return nil
            }
            chunk.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), expectedHex: expectedHex)
    }
}

extension S3Error {
    /// The S3 error for an authentication or authorization refusal.
    init(_ error: AWSErrorResponse) {
        self.init(error.code, HTTPResponse.Status(code: error.httpStatus), error.message)
    }
}
