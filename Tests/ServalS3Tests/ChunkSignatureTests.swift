import NIOCore
import ServalAuth
import ServalCore
import ServalS3
import Testing

/// `AWSChunkedBody` verifying chunk signatures, on AWS's published streaming upload example (66,560 bytes of `a`
/// in a 65,536-byte chunk and a 1,024-byte one; secret `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`).
@Suite struct ChunkSignatureTests {
    static let signatures = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ]

    /// The verifier chained from the example's seed signature.
    static func verifier() throws -> SigV4ChunkVerifier {
        let request = SigV4Request(
            method: "PUT", path: "/examplebucket/chunkObject.txt",
            headers: [
                ("content-encoding", "aws-chunked"), ("content-length", "66824"), ("host", "s3.amazonaws.com"),
                ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), ("x-amz-date", "20130524T000000Z"),
                ("x-amz-decoded-content-length", "66560"), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders="
                        + "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
                        + "x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
                ),
            ], payload: .header)
        let verifier = SigV4Verifier(services: ["s3"])
        let claim = try verifier.claim(for: request, now: Timestamp(millisecondsSinceEpoch: 1_369_353_600_000))
        let authentication = try verifier.verify(claim, secret: AccessKeySecret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"))
        return try #require(authentication.chunkVerifier)
    }

    /// The encoded body with `signatures` in its size lines; the second chunk has one byte changed when asked.
    static func body(signatures: [String] = signatures, alterSecondChunk: Bool = false) -> [UInt8] {
        var second = [UInt8](repeating: UInt8(ascii: "a"), count: 1024)
        if alterSecondChunk { second[500] = UInt8(ascii: "b") }
        var bytes = Array("10000;chunk-signature=\(signatures[0])\r\n".utf8)
        bytes += [UInt8](repeating: UInt8(ascii: "a"), count: 65_536) + Array("\r\n".utf8)
        bytes += Array("400;chunk-signature=\(signatures[1])\r\n".utf8) + second + Array("\r\n".utf8)
        bytes += Array("0;chunk-signature=\(signatures[2])\r\n\r\n".utf8)
        return bytes
    }

    /// Streams `bytes` through a verifying body in pieces of `size` bytes; returns how many bytes came out.
    static func decode(_ bytes: [UInt8], size: Int) async throws -> Int {
        let pieces = stride(from: 0, to: bytes.count, by: size).map {
            ByteBuffer(bytes: bytes[$0..<min($0 + size, bytes.count)])
        }
        var total = 0
        for try await chunk in AWSChunkedBody(Pieces(pieces: pieces), signatures: try verifier()) {
            total += chunk.readableBytes
        }
        return total
    }

    @Test("a correctly signed body decodes, in pieces of any size", arguments: [1, 7, 4096, 100_000])
    func signedBody(size: Int) async throws {
        #expect(try await Self.decode(Self.body(), size: size) == 66_560)
    }

    @Test("altered data, a wrong or missing signature, or chunks out of order fail the body")
    func refusals() async throws {
        await #expect(throws: AuthenticationFailure.self) {
            _ = try await Self.decode(Self.body(alterSecondChunk: true), size: 4096)
        }
        var wrong = Self.signatures
        wrong[2] = String(repeating: "0", count: 64)
        await #expect(throws: AuthenticationFailure.self) { _ = try await Self.decode(Self.body(signatures: wrong), size: 4096) }
        let swapped = [Self.signatures[1], Self.signatures[0], Self.signatures[2]]
        await #expect(throws: AuthenticationFailure.self) { _ = try await Self.decode(Self.body(signatures: swapped), size: 4096) }
        let unsigned = Array("5\r\nhello\r\n0\r\n\r\n".utf8)
        await #expect(throws: AuthenticationFailure.self) { _ = try await Self.decode(unsigned, size: 3) }
    }
}
