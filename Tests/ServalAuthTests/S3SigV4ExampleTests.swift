import Foundation
import ServalAuth
import ServalCore
import Testing

/// The worked examples of the Amazon S3 API reference ("Authenticating Requests (AWS Signature Version 4)": header
/// examples, query-string example, and streaming upload example), signed by `AKIAIOSFODNN7EXAMPLE` for
/// `us-east-1/s3` at `20130524T000000Z`.
@Suite("S3 SigV4 documentation examples")
struct S3SigV4ExampleTests {
    static let secret = AccessKeySecret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    /// 2013-05-24T00:00:00Z.
    static let time = Timestamp(millisecondsSinceEpoch: 1_369_353_600_000)
    static let host = ("Host", "examplebucket.s3.amazonaws.com")
    let verifier = SigV4Verifier(services: ["s3"])

    static func authorization(_ signedHeaders: String, _ signature: String) -> (name: String, value: String) {
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=\(signedHeaders),"
                + "Signature=\(signature)"
        )
    }

    func authenticate(_ request: SigV4Request, now: Timestamp = time) throws(AuthenticationFailure)
        -> SigV4Authentication
    {
        try verifier.verify(verifier.claim(for: request, now: now), secret: Self.secret)
    }

    @Test("GET Object with a Range header")
    func getObject() throws {
        let request = SigV4Request(
            method: "GET", path: "/test.txt",
            headers: [
                Self.host, ("Range", "bytes=0-9"), ("x-amz-content-sha256", Suite.emptySHA256),
                ("x-amz-date", "20130524T000000Z"),
                Self.authorization(
                    "host;range;x-amz-content-sha256;x-amz-date",
                    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
            ], payload: .header)
        let claim = try verifier.claim(for: request, now: Self.time)
        #expect(
            claim.canonicalRequest
                == "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:\(Suite.emptySHA256)\n"
                + "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n\(Suite.emptySHA256)")
        #expect(
            claim.stringToSign
                == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                + "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
        let authentication = try verifier.verify(claim, secret: Self.secret)
        #expect(authentication.accessKeyID == "AKIAIOSFODNN7EXAMPLE")
        #expect(authentication.payload == .sha256(Suite.emptySHA256))
        // The body was not hashed by the caller (source `.header`), so the digest is left for it to check.
        #expect(authentication.unverifiedPayloadSHA256 == Suite.emptySHA256)
    }

    @Test(
        "PUT Object: '$' in the key signs as %24 whether or not the client encoded it",
        arguments: ["/test$file.text", "/test%24file.text"])
    func putObject(path: String) throws {
        let bodyHash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        #expect(SigV4TestSupport.sha256Hex("Welcome to Amazon S3.") == bodyHash)
        let request = SigV4Request(
            method: "PUT", path: path,
            headers: [
                Self.host, ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-date", "20130524T000000Z"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"), ("x-amz-content-sha256", bodyHash),
                Self.authorization(
                    "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
            ], payload: .sha256(of: Array("Welcome to Amazon S3.".utf8)))
        let claim = try verifier.claim(for: request, now: Self.time)
        #expect(claim.canonicalRequest.hasPrefix("PUT\n/test%24file.text\n\n"))
        let authentication = try verifier.verify(claim, secret: Self.secret)
        // The caller hashed the body and it matched the header: nothing left to check.
        #expect(authentication.unverifiedPayloadSHA256 == nil)
    }

    @Test(
        "GET Bucket lifecycle and ListObjects: a parameter without a value, and parameters sorted",
        arguments: [
            ("lifecycle", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
            ("max-keys=2&prefix=J", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
            ("prefix=J&max-keys=2", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
        ])
    func bucketQueries(query: String, signature: String) throws {
        let request = SigV4Request(
            method: "GET", path: "/", query: query,
            headers: [
                Self.host, ("x-amz-content-sha256", Suite.emptySHA256), ("x-amz-date", "20130524T000000Z"),
                Self.authorization("host;x-amz-content-sha256;x-amz-date", signature),
            ], payload: .header)
        #expect(try authenticate(request).accessKeyID == "AKIAIOSFODNN7EXAMPLE")
    }

    static let presignedQuery =
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

    static func presignedRequest(query: String = presignedQuery) -> SigV4Request {
        SigV4Request(method: "GET", path: "/test.txt", query: query, headers: [host], payload: .header)
    }

    @Test("a presigned URL verifies during its 86,400 seconds")
    func presignedURL() throws {
        let claim = try verifier.claim(for: Self.presignedRequest(), now: Self.time.adding(seconds: 3600))
        #expect(
            claim.canonicalRequest
                == "GET\n/test.txt\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3"
                + "%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n"
                + "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD")
        #expect(
            claim.stringToSign
                == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                + "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04")
        let authentication = try verifier.verify(claim, secret: Self.secret)
        #expect(authentication.mechanism == .presignedURL(expiresAt: Self.time.adding(seconds: 86_400)))
        #expect(authentication.payload == .unsigned)
        #expect(
            try authenticate(Self.presignedRequest(), now: Self.time.adding(seconds: 86_400)).accessKeyID
                == "AKIAIOSFODNN7EXAMPLE")
    }

    @Test("the signer reproduces the presigned URL")
    func presignReproduces() {
        let signer = SigV4Signer(
            accessKeyID: "AKIAIOSFODNN7EXAMPLE", secret: Self.secret, region: "us-east-1", service: "s3")
        let signed = signer.presign(
            method: "GET", path: "/test.txt", headers: [Self.host], date: Self.time, expiresInSeconds: 86_400)
        #expect(signed.query == Self.presignedQuery)
        #expect(signed.headers.isEmpty)
    }

    @Test("a presigned URL is refused once expired")
    func presignedExpired() {
        let now = Self.time.adding(seconds: 86_401)
        #expect(
            SigV4TestSupport.failure { try verifier.claim(for: Self.presignedRequest(), now: now) }
                == .expired(expiredAt: Self.time.adding(seconds: 86_400), serverTime: now))
    }

    @Test("a presigned URL dated more than 15 minutes ahead is refused")
    func presignedFromTheFuture() {
        let now = Self.time.adding(seconds: -16 * 60)
        #expect(
            SigV4TestSupport.failure { try verifier.claim(for: Self.presignedRequest(), now: now) }
                == .requestTimeTooSkewed(requestTime: Self.time, serverTime: now, allowedSkewSeconds: 900))
    }

    @Test("a presigned URL with an altered parameter or path does not verify")
    func presignedTampered() {
        let longer = Self.presignedRequest(
            query: Self.presignedQuery.replacingFirst("X-Amz-Expires=86400", with: "X-Amz-Expires=604800"))
        var otherKey = Self.presignedRequest()
        otherKey.path = "/other.txt"
        let extraParameter = Self.presignedRequest(query: Self.presignedQuery + "&response-content-type=text%2Fhtml")
        for request in [longer, otherKey, extraParameter] {
            guard
                case .signatureMismatch = SigV4TestSupport.failure({
                    try authenticate(request, now: Self.time.adding(seconds: 60))
                })
            else {
                Issue.record("expected a signature mismatch for \(request.path)?\(request.query)")
                continue
            }
        }
    }

    @Test(
        "presigned query parameters are checked",
        arguments: [
            ("X-Amz-Expires=86400", "X-Amz-Expires=604801", "less than a week"),
            ("X-Amz-Expires=86400", "X-Amz-Expires=0", "X-Amz-Expires"),
            ("X-Amz-Expires=86400&", "", "requires the X-Amz-Algorithm"),
            ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1", "only supports"),
            ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=2013-05-24", "ISO8601"),
            ("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range", "'host'"),
        ])
    func presignedMalformed(original: String, replacement: String, mentioning: String) {
        let request = Self.presignedRequest(query: Self.presignedQuery.replacingFirst(original, with: replacement))
        let failure = SigV4TestSupport.failure { try verifier.claim(for: request, now: Self.time) }
        guard case .malformed(let reason, location: .query) = failure else {
            Issue.record("expected a malformed query, got \(String(describing: failure))")
            return
        }
        #expect(reason.contains(mentioning))
        #expect(failure?.s3Error.code == "AuthorizationQueryParametersError")
    }

    @Test("a presigned URL and an Authorization header together are refused")
    func bothMechanisms() {
        var request = Self.presignedRequest()
        request.headers.append(Self.authorization("host", String(repeating: "0", count: 64)))
        guard case .malformed = SigV4TestSupport.failure({ try verifier.claim(for: request, now: Self.time) }) else {
            Issue.record("expected malformed")
            return
        }
    }

    @Test("a streaming upload: the seed signature verifies, then every chunk signature in the chain")
    func streamingUpload() throws {
        let request = SigV4Request(
            method: "PUT", path: "/examplebucket/chunkObject.txt",
            headers: [
                ("content-encoding", "aws-chunked"), ("content-length", "66824"), ("host", "s3.amazonaws.com"),
                ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), ("x-amz-date", "20130524T000000Z"),
                ("x-amz-decoded-content-length", "66560"), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                Self.authorization(
                    "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
                    "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"),
            ], payload: .header)
        let claim = try verifier.claim(for: request, now: Self.time)
        #expect(
            claim.stringToSign
                == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                + "cee3fed04b70f867d036f722359b0b1f2f0e5dc0efadbc082b76c4c60e316455")
        let authentication = try verifier.verify(claim, secret: Self.secret)
        #expect(authentication.payload == .streaming(.signedChunks))
        var chunks = try #require(authentication.chunkVerifier)
        try chunks.verifyChunk(
            [UInt8](repeating: UInt8(ascii: "a"), count: 65_536),
            signature: "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648")
        try chunks.verifyChunk(
            [UInt8](repeating: UInt8(ascii: "a"), count: 1024),
            signature: "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497")
        var beforeFinal = chunks
        try chunks.verifyChunk([], signature: "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9")
        // A chunk out of order, or altered, breaks the chain.
        #expect(throws: AuthenticationFailure.self) {
            try beforeFinal.verifyChunk(
                [UInt8(ascii: "a")], signature: "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9")
        }
        #expect(!String(describing: chunks).contains("wJalr"))
    }

    @Test("S3 paths are encoded once and not normalized")
    func s3PathRules() throws {
        let signer = SigV4Signer(
            accessKeyID: "AKIAIOSFODNN7EXAMPLE", secret: Self.secret, region: "us-east-1", service: "s3")
        for (path, canonical) in [
            ("/bucket/my%20key", "/bucket/my%20key"), ("/bucket/my key", "/bucket/my%20key"),
            ("/bucket/a/../b", "/bucket/a/../b"),
            ("//bucket//key", "//bucket//key"), ("/bucket/a%2Fb", "/bucket/a%2Fb"),
            ("/bucket/%7Etilde", "/bucket/~tilde"),
            ("/bucket/caf%C3%A9", "/bucket/caf%C3%A9"), ("/bucket/100%", "/bucket/100%25"),
        ] {
            let signed = signer.sign(
                method: "GET", path: path, headers: [Self.host, ("x-amz-content-sha256", Suite.emptySHA256)],
                payloadHash: Suite.emptySHA256, date: Self.time)
            #expect(
                signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[1] == canonical[...])
            let request = SigV4Request(
                method: "GET", path: path,
                headers: [Self.host, ("x-amz-content-sha256", Suite.emptySHA256)] + signed.headers,
                payload: .header)
            #expect(try authenticate(request).accessKeyID == "AKIAIOSFODNN7EXAMPLE")
        }
    }
}

extension String {
    /// The string with the first occurrence of `target` replaced.
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
