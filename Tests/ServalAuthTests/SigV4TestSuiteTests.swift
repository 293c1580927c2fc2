import ServalAuth
import ServalCore
import Testing

/// One case of AWS's published Signature Version 4 test suite (aws-sig-v4-test-suite, 2015 edition).
///
/// Every case is signed by `AKIDEXAMPLE` with the suite's secret, for region `us-east-1` and service `service`, at
/// `20150830T123600Z`. `path` and `query` are the request line's, as the suite writes them; `signature` is the one
/// in the suite's `.authz` file; `canonicalRequest`, where given, is its `.creq` file.
struct SuiteCase: Sendable, CustomTestStringConvertible {
    var name: String
    var method = "GET"
    var path = "/"
    var query = ""
    var headers: [(name: String, value: String)] = []
    var body = ""
    var signedHeaders = "host;x-amz-date"
    var signature: String
    var canonicalRequest: String?

    var testDescription: String { name }

    /// The request's headers: the suite's `Host` and `X-Amz-Date`, then the case's own.
    var allHeaders: [(name: String, value: String)] {
        [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")] + headers
    }
}

enum Suite {
    static let accessKeyID = "AKIDEXAMPLE"
    static let secret = AccessKeySecret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    /// 2015-08-30T12:36:00Z.
    static let time = Timestamp(millisecondsSinceEpoch: 1_440_938_160_000)
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    static let vanillaSignature = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

    static let cases: [SuiteCase] = [
        SuiteCase(
            name: "get-vanilla", signature: vanillaSignature,
            canonicalRequest:
                "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptySHA256)"),
        SuiteCase(
            name: "get-vanilla-empty-query-key", query: "Param1=value1",
            signature: "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
        SuiteCase(
            name: "get-vanilla-query-order-key-case", query: "Param2=value2&Param1=value1",
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            canonicalRequest:
                "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptySHA256)"
        ),
        SuiteCase(
            name: "get-vanilla-query-order-key", query: "Param1=value2&Param1=Value1",
            signature: "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
        SuiteCase(
            name: "get-vanilla-query-order-value", query: "Param1=value2&Param1=value1",
            signature: "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
        SuiteCase(
            name: "get-vanilla-query-unreserved",
            query:
                "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
        SuiteCase(
            name: "get-vanilla-utf8-query", query: "\u{1234}=bar",
            signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
            canonicalRequest:
                "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptySHA256)"
        ),
        SuiteCase(
            name: "get-unreserved", path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
        SuiteCase(
            name: "get-utf8", path: "/\u{1234}",
            signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
            canonicalRequest:
                "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptySHA256)"
        ),
        // normalize-path/: services other than S3 remove dot segments and repeated slashes.
        SuiteCase(
            name: "normalize-path/get-space", path: "/example space/",
            signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
            canonicalRequest:
                "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptySHA256)"
        ),
        SuiteCase(name: "normalize-path/get-relative", path: "/example/..", signature: vanillaSignature),
        SuiteCase(
            name: "normalize-path/get-relative-relative", path: "/example1/example2/../..", signature: vanillaSignature,
            canonicalRequest:
                "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptySHA256)"),
        SuiteCase(name: "normalize-path/get-slash", path: "//", signature: vanillaSignature),
        SuiteCase(name: "normalize-path/get-slash-dot-slash", path: "/./", signature: vanillaSignature),
        SuiteCase(
            name: "normalize-path/get-slash-pointless-dot", path: "/./example",
            signature: "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"),
        SuiteCase(
            name: "normalize-path/get-slashes", path: "//example//",
            signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"),
        SuiteCase(
            name: "get-header-value-trim", headers: [("My-Header1", " value1"), ("My-Header2", "\"a   b   c\"")],
            signedHeaders: "host;my-header1;my-header2;x-amz-date",
            signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
            canonicalRequest:
                "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\n"
                + "host;my-header1;my-header2;x-amz-date\n\(emptySHA256)"),
        SuiteCase(
            name: "get-header-key-duplicate",
            headers: [("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")],
            signedHeaders: "host;my-header1;x-amz-date",
            signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
            canonicalRequest:
                "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\n"
                + "host;my-header1;x-amz-date\n\(emptySHA256)"),
        SuiteCase(
            name: "get-header-value-order",
            headers: [
                ("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2"),
            ],
            signedHeaders: "host;my-header1;x-amz-date",
            signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
        SuiteCase(
            name: "post-vanilla", method: "POST",
            signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        SuiteCase(
            name: "post-vanilla-query", method: "POST", query: "Param1=value1",
            signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
        SuiteCase(
            name: "post-header-key-sort", method: "POST", headers: [("My-Header1", "value1")],
            signedHeaders: "host;my-header1;x-amz-date",
            signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
        SuiteCase(
            name: "post-header-value-case", method: "POST", headers: [("My-Header1", "VALUE1")],
            signedHeaders: "host;my-header1;x-amz-date",
            signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
        SuiteCase(
            name: "post-x-www-form-urlencoded", method: "POST",
            headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: "Param1=value1", signedHeaders: "content-type;host;x-amz-date",
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
            canonicalRequest:
                "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                + "content-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"),
        SuiteCase(
            name: "post-x-www-form-urlencoded-parameters", method: "POST",
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf8")], body: "Param1=value1",
            signedHeaders: "content-type;host;x-amz-date",
            signature: "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"),
        SuiteCase(
            name: "post-sts-token/post-sts-header-before", method: "POST",
            headers: [
                (
                    "X-Amz-Security-Token",
                    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/"
                        + "qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0"
                        + "iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
                )
            ],
            signedHeaders: "host;x-amz-date;x-amz-security-token",
            signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
    ]
}

@Suite("AWS SigV4 test suite")
struct SigV4TestSuiteTests {
    let verifier = SigV4Verifier(services: ["service"])

    func request(_ testCase: SuiteCase, headers extra: [(name: String, value: String)] = []) -> SigV4Request {
        SigV4Request(
            method: testCase.method, path: testCase.path, query: testCase.query, headers: testCase.allHeaders + extra,
            payload: .sha256(of: Array(testCase.body.utf8)))
    }

    func authorization(_ testCase: SuiteCase) -> (name: String, value: String) {
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=\(testCase.signedHeaders), Signature=\(testCase.signature)"
        )
    }

    @Test("the published signature verifies", arguments: Suite.cases)
    func publishedSignatureVerifies(testCase: SuiteCase) throws {
        let claim = try verifier.claim(for: request(testCase, headers: [authorization(testCase)]), now: Suite.time)
        if let expected = testCase.canonicalRequest {
            #expect(claim.canonicalRequest == expected)
        }
        let authentication = try verifier.verify(claim, secret: Suite.secret)
        #expect(authentication.accessKeyID == "AKIDEXAMPLE")
        #expect(authentication.scope == SigV4CredentialScope(date: "20150830", region: "us-east-1", service: "service"))
        #expect(authentication.requestTime == Suite.time)
        #expect(authentication.mechanism == .authorizationHeader)
        #expect(authentication.unverifiedPayloadSHA256 == nil)
    }

    @Test("the signer reproduces the published signature", arguments: Suite.cases)
    func signerReproducesSignature(testCase: SuiteCase) {
        let signer = SigV4Signer(
            accessKeyID: Suite.accessKeyID, secret: Suite.secret, region: "us-east-1", service: "service")
        let signed = signer.sign(
            method: testCase.method, path: testCase.path, query: testCase.query, headers: testCase.allHeaders,
            payloadHash: SigV4TestSupport.sha256Hex(testCase.body), date: Suite.time)
        #expect(signed.signature == testCase.signature)
        #expect(signed.headers.first { $0.name == "Authorization" }?.value == authorization(testCase).value)
        if let expected = testCase.canonicalRequest {
            #expect(signed.canonicalRequest == expected)
        }
    }

    @Test("a wrong signature of the right shape does not verify", arguments: Suite.cases)
    func alteredSignatureFails(testCase: SuiteCase) throws {
        var altered = testCase
        altered.signature = String(testCase.signature.dropLast()) + (testCase.signature.hasSuffix("0") ? "1" : "0")
        let claim = try verifier.claim(for: request(altered, headers: [authorization(altered)]), now: Suite.time)
        #expect(throws: AuthenticationFailure.self) { try verifier.verify(claim, secret: Suite.secret) }
    }

    @Test("header names match case-insensitively (post-header-key-case)")
    func headerKeyCase() throws {
        let headers = [("HOST", "example.amazonaws.com"), ("x-AMZ-date", "20150830T123600Z")]
        let request = SigV4Request(
            method: "POST", path: "/",
            headers: headers + [
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, "
                        + "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
                )
            ], payload: .sha256(of: []))
        let authentication = try verifier.verify(verifier.claim(for: request, now: Suite.time), secret: Suite.secret)
        #expect(authentication.accessKeyID == "AKIDEXAMPLE")
    }
}

/// botocore's variants of the 2011 suite, whose request lines carry an already-encoded path: services other than S3
/// encode it a second time. They also date the request with `Date` instead of `X-Amz-Date`.
@Suite("botocore's double-encoding vectors")
struct BotocoreDoubleEncodingTests {
    /// 2011-09-09T23:36:00Z.
    static let time = Timestamp(millisecondsSinceEpoch: 1_315_611_360_000)

    @Test(
        "get-space and get-utf8 sign the encoded path encoded again",
        arguments: [
            ("/%20/foo", "/%2520/foo", "2be9e587d1ee1f0fd02128724b86b4358ba3630d39f493b6e06610a19a50779e"),
            ("/%E1%88%B4", "/%25E1%2588%25B4", "57b1eb3df3b16a8479c0097b66c0b261cfd65b829419a3f2c3d05319722490b8"),
        ])
    func doubleEncoded(path: String, canonicalURI: String, signature: String) throws {
        let verifier = SigV4Verifier(services: ["host"])
        let request = SigV4Request(
            method: "GET", path: path,
            headers: [
                ("Date", "Mon, 09 Sep 2011 23:36:00 GMT"), ("Host", "host.foo.com"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request, SignedHeaders=date;host, "
                        + "Signature=\(signature)"
                ),
            ], payload: .sha256(of: []))
        let claim = try verifier.claim(for: request, now: Self.time)
        #expect(
            claim.canonicalRequest
                == "GET\n\(canonicalURI)\n\ndate:Mon, 09 Sep 2011 23:36:00 GMT\nhost:host.foo.com\n\ndate;host\n\(Suite.emptySHA256)"
        )
        #expect(try verifier.verify(claim, secret: Suite.secret).accessKeyID == "AKIDEXAMPLE")
    }
}
