import ServalAuth
import ServalCore
import Testing

/// Verification of requests signed as boto3 signs SageMaker runtime calls, and what is refused.
@Suite("SigV4 verification")
struct SigV4VerifierTests {
    static let keyID = "SKQ3V7X2MZ4HJ5NB6RTA"
    static let secret = AccessKeySecret("Zq7Wm1xk9Jf3Lr8TvB2NcY5HdP0GsA4eUoKiQw6E")
    static let now = Timestamp(millisecondsSinceEpoch: 1_780_000_000_000)
    static let body = Array(#"{"instances": [[1.0, 2.0]]}"#.utf8)
    static let host = ("host", "127.0.0.1:8080")

    let verifier = SigV4Verifier(services: ["sagemaker"])
    let signer = SigV4Signer(accessKeyID: keyID, secret: secret, region: "us-east-1", service: "sagemaker")

    /// An InvokeEndpoint request signed at `signedAt`, its body hashed by the caller.
    func invocation(
        path: String = "/endpoints/my-endpoint/invocations", signedAt: Timestamp = now, body: [UInt8] = body
    ) -> SigV4Request {
        let headers = [Self.host, ("Content-Type", "application/json"), ("X-Amzn-SageMaker-Custom-Attributes", "a=1")]
        let signed = signer.sign(
            method: "POST", path: path, headers: headers, payloadHash: SigV4TestSupport.sha256Hex(body), date: signedAt)
        return SigV4Request(method: "POST", path: path, headers: headers + signed.headers, payload: .sha256(of: body))
    }

    func authenticate(
        _ request: SigV4Request, secret: AccessKeySecret? = secret, now: Timestamp = now
    ) throws(AuthenticationFailure) -> SigV4Authentication {
        try verifier.verify(verifier.claim(for: request, now: now), secret: secret)
    }

    func failure(_ request: SigV4Request, secret: AccessKeySecret? = secret, now: Timestamp = now)
        -> AuthenticationFailure?
    {
        SigV4TestSupport.failure { try authenticate(request, secret: secret, now: now) }
    }

    func isSignatureMismatch(_ failure: AuthenticationFailure?) -> Bool {
        if case .signatureMismatch = failure { true } else { false }
    }

    /// The request with its Authorization header replaced.
    func with(authorization: String, _ request: SigV4Request? = nil) -> SigV4Request {
        var request = request ?? invocation()
        request.headers = request.headers.filter { $0.name != "Authorization" } + [("Authorization", authorization)]
        return request
    }

    var validAuthorization: String { invocation().headers.first { $0.name == "Authorization" }!.value }

    @Test("a signed invocation verifies, and yields its key and scope")
    func signedInvocation() throws {
        let authentication = try authenticate(invocation())
        #expect(authentication.accessKeyID == Self.keyID)
        #expect(authentication.scope.service == "sagemaker")
        #expect(authentication.payload == .sha256(SigV4TestSupport.sha256Hex(Self.body)))
        #expect(authentication.unverifiedPayloadSHA256 == nil)
        #expect(authentication.chunkVerifier == nil)
    }

    @Test("a tampered body does not verify")
    func tamperedBody() {
        var request = invocation()
        request.payload = .sha256(of: Array(#"{"instances": [[9.0, 2.0]]}"#.utf8))
        #expect(isSignatureMismatch(failure(request)))
    }

    @Test("a tampered signed header, path, query or method does not verify")
    func tamperedRequest() {
        var header = invocation()
        header.headers = header.headers.map { $0.name == "Content-Type" ? ($0.name, "text/csv") : $0 }
        var path = invocation()
        path.path = "/endpoints/other-endpoint/invocations"
        var query = invocation()
        query.query = "x=1"
        var method = invocation()
        method.method = "PUT"
        for request in [header, path, query, method] {
            #expect(isSignatureMismatch(failure(request)))
        }
    }

    @Test("an unsigned header may be added or changed")
    func unsignedHeader() throws {
        var request = invocation()
        request.headers.append(("User-Agent", "Boto3/1.35"))
        #expect(try authenticate(request).accessKeyID == Self.keyID)
    }

    @Test("a request signed with another secret does not verify")
    func wrongSecret() {
        let failure = failure(invocation(), secret: AccessKeySecret("Zq7Wm1xk9Jf3Lr8TvB2NcY5HdP0GsA4eUoKiQw6F"))
        guard case .signatureMismatch(let details) = failure else {
            Issue.record("expected a signature mismatch, got \(String(describing: failure))")
            return
        }
        #expect(details?.accessKeyID == Self.keyID)
        #expect(details?.canonicalRequest.hasPrefix("POST\n/endpoints/my-endpoint/invocations\n\n") == true)
        #expect(failure?.sageMakerError.code == "InvalidSignatureException")
        #expect(failure?.s3Error.code == "SignatureDoesNotMatch")
        #expect(failure?.sageMakerError.httpStatus == 401)
    }

    @Test("an unknown access key is reported as such")
    func unknownKey() {
        let failure = failure(invocation(), secret: nil)
        #expect(failure == .unknownAccessKey(Self.keyID))
        #expect(failure?.sageMakerError.code == "UnrecognizedClientException")
        #expect(failure?.s3Error.code == "InvalidAccessKeyId")
    }

    @Test(
        "a request time up to 15 minutes either side of the server's clock is accepted",
        arguments: [-14 * 60, 14 * 60, -900, 900])
    func withinSkew(offsetSeconds: Int64) throws {
        let request = invocation(signedAt: Self.now.adding(seconds: offsetSeconds))
        #expect(try authenticate(request).accessKeyID == Self.keyID)
    }

    @Test(
        "a request time more than 15 minutes away is refused before any secret is looked up",
        arguments: [-16 * 60, 16 * 60])
    func beyondSkew(offsetSeconds: Int64) {
        let signedAt = Self.now.adding(seconds: offsetSeconds)
        let failure = SigV4TestSupport.failure {
            try verifier.claim(for: invocation(signedAt: signedAt), now: Self.now)
        }
        #expect(failure == .requestTimeTooSkewed(requestTime: signedAt, serverTime: Self.now, allowedSkewSeconds: 900))
        #expect(failure?.s3Error.code == "RequestTimeTooSkewed")
        #expect(failure?.sageMakerError.code == "InvalidSignatureException")
        #expect(
            failure?.message.hasPrefix(offsetSeconds < 0 ? "Signature expired: " : "Signature not yet current: ")
                == true)
    }

    @Test("the skew allowance is configurable")
    func configurableSkew() {
        let strict = SigV4Verifier(services: ["sagemaker"], maxClockSkewSeconds: 60)
        let request = invocation(signedAt: Self.now.adding(seconds: 61))
        guard case .requestTimeTooSkewed = SigV4TestSupport.failure({ try strict.claim(for: request, now: Self.now) })
        else {
            Issue.record("expected a skew failure")
            return
        }
    }

    @Test("a request without credentials is missing authentication")
    func missing() {
        let request = SigV4Request(method: "POST", path: "/", headers: [Self.host], payload: .sha256(of: []))
        let failure = failure(request)
        #expect(failure == .missingAuthentication)
        #expect(failure?.sageMakerError.code == "MissingAuthenticationTokenException")
        #expect(failure?.s3Error.code == "AccessDenied")
    }

    static let malformedCases: [(String, String, String)] = [
        // (what is wrong, how to change the valid header, text the reason mentions)
        ("no Credential", "Credential=", "requires 'Credential'"),
        ("no SignedHeaders", "SignedHeaders=", "requires 'SignedHeaders'"),
        ("no Signature", "Signature=", "requires 'Signature'"),
        ("another algorithm", "AWS4-HMAC-SHA256 ", "AWS Signature Version 4"),
        ("a short credential", "/us-east-1/", "is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request"),
        ("a wrong terminator", "/aws4_request", "is not ACCESS_KEY_ID"),
        ("another service", "/sagemaker/", "correct service: 'sagemaker'"),
        ("another credential date", "/20200101/", "Invalid credential date"),
        ("host not signed", ";host;", "must include 'host'"),
        ("authorization signed", ";host;", "must not include 'authorization'"),
    ]

    @Test("a malformed Authorization header is refused with its reason", arguments: malformedCases)
    func malformedHeader(what: String, change: String, mentioning: String) throws {
        let valid = validAuthorization
        let altered: String
        switch what {
        case "no Credential", "no SignedHeaders", "no Signature":
            let parameters = valid.dropFirst("AWS4-HMAC-SHA256 ".count).split(separator: ",").map {
                $0.drop(while: { $0 == " " })
            }
            altered = "AWS4-HMAC-SHA256 " + parameters.filter { !$0.hasPrefix(change) }.joined(separator: ", ")
        case "another algorithm":
            altered = valid.replacingFirst(change, with: "AWS4-HMAC-SHA512 ")
        case "a short credential":
            altered = valid.replacingFirst(change, with: "/")
        case "a wrong terminator":
            altered = valid.replacingFirst(change, with: "/aws5_request")
        case "another service":
            altered = valid.replacingFirst(change, with: "/s3/")
        case "another credential date":
            let date = String(AmzDateForTest.basic(Self.now).prefix(8))
            altered = valid.replacingFirst("/\(date)/", with: change)
        case "authorization signed":
            altered = valid.replacingFirst(change, with: ";authorization;host;")
        default:
            altered = valid.replacingFirst(change, with: ";")
        }
        #expect(altered != valid, "the test did not change the header")
        let failure = SigV4TestSupport.failure { try verifier.claim(for: with(authorization: altered), now: Self.now) }
        guard case .malformed(let reason, location: .header) = failure else {
            Issue.record("\(what): expected malformed, got \(String(describing: failure))")
            return
        }
        #expect(reason.contains(mentioning), "\(what): \(reason)")
        #expect(failure?.sageMakerError.code == "IncompleteSignatureException")
        #expect(failure?.s3Error.code == "AuthorizationHeaderMalformed")
    }

    @Test("a credential naming the secret (id and secret swapped; secrets may hold '/') is not echoed")
    func swappedCredentialNotEchoed() throws {
        let secret = "Zq7W/m1xk9Jf3Lr8TvB2NcY5HdP0GsA4eUoKiQw6"
        let altered = validAuthorization.replacingFirst(Self.keyID, with: secret)
        #expect(altered != validAuthorization, "the test did not change the header")
        let failure = SigV4TestSupport.failure { try verifier.claim(for: with(authorization: altered), now: Self.now) }
        guard case .malformed(let reason, location: .header) = failure else {
            Issue.record("expected malformed, got \(String(describing: failure))")
            return
        }
        #expect(!reason.contains(secret), "\(reason)")
        #expect(!"\(failure!)".contains(secret))
        #expect(reason.contains("swapped"), "\(reason)")
    }

    @Test("a request without X-Amz-Date or Date, or with an unreadable one, is malformed")
    func requestDate() {
        var noDate = invocation()
        noDate.headers.removeAll { $0.name == "x-amz-date" }
        var badDate = invocation()
        badDate.headers = badDate.headers.map { $0.name == "x-amz-date" ? ($0.name, "2026-05-28T12:00:00Z") : $0 }
        var impossibleDate = invocation()
        impossibleDate.headers = impossibleDate.headers.map {
            $0.name == "x-amz-date" ? ($0.name, "20260230T120000Z") : $0
        }
        for (request, mentioning) in [
            (noDate, "either a 'X-Amz-Date' or a 'Date'"), (badDate, "yyyyMMdd"), (impossibleDate, "yyyyMMdd"),
        ] {
            guard
                case .malformed(let reason, _) = SigV4TestSupport.failure({
                    try verifier.claim(for: request, now: Self.now)
                })
            else {
                Issue.record("expected malformed")
                continue
            }
            #expect(reason.contains(mentioning))
        }
    }

    @Test("a signed header missing from the request is malformed")
    func signedHeaderMissing() {
        var request = invocation()
        request.headers.removeAll { $0.name == "X-Amzn-SageMaker-Custom-Attributes" }
        guard case .malformed(let reason, _) = failure(request) else {
            Issue.record("expected malformed")
            return
        }
        #expect(reason.contains("x-amzn-sagemaker-custom-attributes"))
    }

    @Test("two Authorization headers are malformed")
    func twoAuthorizations() {
        var request = invocation()
        request.headers.append(("authorization", validAuthorization))
        guard case .malformed = failure(request) else {
            Issue.record("expected malformed")
            return
        }
    }

    @Test("a configured region must match the credential scope")
    func region() {
        let regional = SigV4Verifier(services: ["sagemaker"], region: "eu-west-1")
        guard
            case .malformed(let reason, _) = SigV4TestSupport.failure({
                try regional.claim(for: invocation(), now: Self.now)
            })
        else {
            Issue.record("expected malformed")
            return
        }
        #expect(reason == "the region 'us-east-1' is wrong; expecting 'eu-west-1'")
    }

    @Test("SageMaker paths are normalized and encoded a second time")
    func sageMakerPathRules() throws {
        for (path, canonical) in [
            ("/endpoints/my-endpoint/invocations", "/endpoints/my-endpoint/invocations"),
            ("/endpoints/a%20b/invocations", "/endpoints/a%2520b/invocations"),
            ("/endpoints/x/../my-endpoint//invocations", "/endpoints/my-endpoint/invocations"),
            ("/models/m%3A1", "/models/m%253A1"),
        ] {
            let request = invocation(path: path)
            let claim = try verifier.claim(for: request, now: Self.now)
            #expect(
                claim.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[1] == canonical[...])
            #expect(try verifier.verify(claim, secret: Self.secret).accessKeyID == Self.keyID)
        }
    }

    @Test("x-amz-content-sha256: signed as sent, compared with the caller's hash after the signature")
    func contentSHA256Header() throws {
        let bodyHash = SigV4TestSupport.sha256Hex(Self.body)
        let headers = [Self.host, ("x-amz-content-sha256", bodyHash)]
        let signed = signer.sign(method: "POST", path: "/", headers: headers, payloadHash: bodyHash, date: Self.now)
        let matching = SigV4Request(
            method: "POST", path: "/", headers: headers + signed.headers, payload: .sha256(of: Self.body))
        #expect(try authenticate(matching).unverifiedPayloadSHA256 == nil)

        var otherBody = matching
        otherBody.payload = .sha256(of: Array("other".utf8))
        let mismatch = failure(otherBody)
        #expect(mismatch == .payloadHashMismatch)
        #expect(mismatch?.s3Error.code == "XAmzContentSHA256Mismatch")
        #expect(mismatch?.s3Error.httpStatus == 400)
        // A wrong signature is reported before the body: an unauthenticated client learns nothing about it.
        #expect(isSignatureMismatch(failure(otherBody, secret: AccessKeySecret("wrong"))))

        var streamed = matching
        streamed.payload = .header
        #expect(try authenticate(streamed).unverifiedPayloadSHA256 == bodyHash)
    }

    @Test("UNSIGNED-PAYLOAD in x-amz-content-sha256 signs no body")
    func unsignedPayload() throws {
        let headers = [Self.host, ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]
        let signed = signer.sign(
            method: "POST", path: "/", headers: headers, payloadHash: "UNSIGNED-PAYLOAD", date: Self.now)
        let request = SigV4Request(
            method: "POST", path: "/", headers: headers + signed.headers, payload: .sha256(of: Self.body))
        let authentication = try authenticate(request)
        #expect(authentication.payload == .unsigned)
        #expect(authentication.unverifiedPayloadSHA256 == nil)
    }

    @Test("S3's rule: header authentication without x-amz-content-sha256, or with a bad one, is malformed")
    func headerSourceRequiresHeader() {
        var request = invocation()
        request.payload = .header
        guard case .malformed(let reason, _) = failure(request) else {
            Issue.record("expected malformed")
            return
        }
        #expect(reason.contains("x-amz-content-sha256"))
        request.headers.append(("x-amz-content-sha256", "not-a-hash"))
        guard case .malformed = failure(request) else {
            Issue.record("expected malformed")
            return
        }
    }

    @Test("authenticate looks the secret up, and rethrows the lookup's own errors")
    func authenticateWithLookup() async throws {
        struct StoreDown: Error {}
        let lookedUp = LookupLog()
        let found = await verifier.authenticate(invocation(), now: Self.now) { id in
            await lookedUp.record(id)
            return id == Self.keyID ? Self.secret : nil
        }
        #expect(try found.get().accessKeyID == Self.keyID)
        #expect(await lookedUp.ids == [Self.keyID])

        let unknown = await verifier.authenticate(invocation(), now: Self.now) { _ in nil }
        #expect(throws: AuthenticationFailure.unknownAccessKey(Self.keyID)) { try unknown.get() }

        // A stale request never reaches the store.
        let stale = await verifier.authenticate(invocation(signedAt: Self.now.adding(seconds: -3600)), now: Self.now) {
            id in
            await lookedUp.record(id)
            return Self.secret
        }
        #expect(await lookedUp.ids.count == 1)
        guard case .failure(.requestTimeTooSkewed) = stale else {
            Issue.record("expected a skew failure")
            return
        }

        await #expect(throws: StoreDown.self) {
            _ = try await verifier.authenticate(invocation(), now: Self.now) { _ in throw StoreDown() }
        }
    }
}

actor LookupLog {
    var ids: [String] = []
    func record(_ id: String) { ids.append(id) }
}

enum AmzDateForTest {
    /// `yyyyMMdd'T'HHmmss'Z'` from `Timestamp.iso8601`.
    static func basic(_ time: Timestamp) -> String {
        let text = time.iso8601
        return text.filter { $0 != "-" && $0 != ":" }.replacingFirst(".000", with: "")
    }
}
