/// Verifies the chunk signatures of an S3 streaming upload (`x-amz-content-sha256:
/// STREAMING-AWS4-HMAC-SHA256-PAYLOAD`), each chained from the previous one, starting from the request's own
/// ("seed") signature.
///
/// Feed it every chunk in order, the final empty chunk included, with the `chunk-signature` from its size line. It
/// holds the request's signing key, so it prints nothing of itself. Trailer signatures (`…-PAYLOAD-TRAILER`) are not
/// verified.
public struct SigV4ChunkVerifier: Sendable, CustomStringConvertible, CustomReflectable {
    private let signingKey: [UInt8]
    private let amzDate: String
    private let scope: String
    /// The signature the next chunk's signature is chained from: the seed signature, then each verified chunk's.
    public private(set) var previousSignature: String

    init(signingKey: [UInt8], amzDate: String, scope: String, seedSignature: String) {
        self.signingKey = signingKey
        self.amzDate = amzDate
        self.scope = scope
        self.previousSignature = seedSignature
    }

    /// Verifies the next chunk, given its data.
    public mutating func verifyChunk(_ data: [UInt8], signature: String) throws(AuthenticationFailure) {
        try verifyChunk(sha256Hex: SigV4Crypto.sha256Hex(data), signature: signature)
    }

    /// Verifies the next chunk, given the lowercase hex SHA-256 of its data (for callers that hash as they stream).
    public mutating func verifyChunk(sha256Hex: String, signature: String) throws(AuthenticationFailure) {
        let stringToSign = [
            SigV4Crypto.chunkAlgorithm, amzDate, scope, previousSignature, SigV4Crypto.emptySHA256, sha256Hex,
        ].joined(separator: "\n")
        let expected = SigV4Crypto.signature(of: stringToSign, using: signingKey)
        guard constantTimeEquals(expected.utf8, signature.utf8) else { throw .signatureMismatch(nil) }
        previousSignature = expected
    }

    /// `SigV4ChunkVerifier(scope: ...)`, without the key.
    public var description: String { "SigV4ChunkVerifier(scope: \(scope))" }

    /// A mirror without the signing key.
    public var customMirror: Mirror {
        Mirror(self, children: ["scope": scope, "previousSignature": previousSignature], displayStyle: .struct)
    }
}
