import ServalAuth
import Testing

@Suite("Bearer tokens")
struct BearerCredentialsTests {
    static let keyID = "SKQ3V7X2MZ4HJ5NB6RTA"
    static let secret = AccessKeySecret("Zq7Wm1xk9Jf3Lr8TvB2NcY5HdP0GsA4eUoKiQw6E")

    @Test("Bearer ID:SECRET parses, and the client writes the same header")
    func parses() throws {
        let credentials = BearerCredentials(accessKeyID: Self.keyID, secret: Self.secret)
        #expect(credentials.authorizationHeaderValue == "Bearer \(Self.keyID):\(Self.secret.value)")
        for header in [
            credentials.authorizationHeaderValue, "bearer \(Self.keyID):\(Self.secret.value)",
            "  Bearer  \(Self.keyID):\(Self.secret.value) ",
        ] {
            let parsed = try BearerCredentials.parse(authorization: [header])
            #expect(parsed.accessKeyID == Self.keyID)
            #expect(parsed.secret.value == Self.secret.value)
        }
        // A secret may contain ':'; the id may not.
        #expect(try BearerCredentials.parse(authorization: ["Bearer id:se:cret"]).secret.value == "se:cret")
    }

    @Test("the right secret verifies; a wrong or unknown one does not")
    func verifies() throws {
        let credentials = try BearerCredentials.parse(authorization: ["Bearer \(Self.keyID):\(Self.secret.value)"])
        try credentials.verify(storedSecret: Self.secret)
        #expect(throws: AuthenticationFailure.incorrectSecret) {
            try credentials.verify(storedSecret: AccessKeySecret("Zq7Wm1xk9Jf3Lr8TvB2NcY5HdP0GsA4eUoKiQw6F"))
        }
        #expect(throws: AuthenticationFailure.incorrectSecret) {
            try credentials.verify(storedSecret: AccessKeySecret("Zq7"))
        }
        #expect(throws: AuthenticationFailure.unknownAccessKey(Self.keyID)) {
            try credentials.verify(storedSecret: nil)
        }
    }

    @Test("no header is missing authentication")
    func missing() {
        #expect(throws: AuthenticationFailure.missingAuthentication) { try BearerCredentials.parse(authorization: []) }
    }

    @Test(
        "malformed headers are refused without echoing the token",
        arguments: [
            ["Basic U0s6c2VjcmV0"], ["Bearer"], ["Bearer "], ["Bearer SKQ3V7X2MZ4HJ5NB6RTA"], ["Bearer :secret-value"],
            ["Bearer SKQ3V7X2MZ4HJ5NB6RTA:"], ["Bearersecret-value"],
            ["Bearer SKQ3V7X2MZ4HJ5NB6RTA:secret-value", "Bearer SKQ3V7X2MZ4HJ5NB6RTA:secret-value"],
        ])
    func malformed(values: [String]) {
        do {
            _ = try BearerCredentials.parse(authorization: values)
            Issue.record("expected a failure")
        } catch {
            guard case .malformed(let reason, location: .header) = error else {
                Issue.record("expected malformed, got \(error)")
                return
            }
            #expect(!reason.contains("secret-value"))
            #expect(!error.sageMakerError.message.contains("secret-value"))
        }
    }

    @Test("authenticate looks the key up and returns its id")
    func authenticate() async throws {
        let header = ["Bearer \(Self.keyID):\(Self.secret.value)"]
        let found = await BearerCredentials.authenticate(authorization: header) { $0 == Self.keyID ? Self.secret : nil }
        #expect(try found.get() == Self.keyID)
        let unknown = await BearerCredentials.authenticate(authorization: ["Bearer SKAAAAAAAAAAAAAAAAAA:x"]) { _ in nil
        }
        #expect(throws: AuthenticationFailure.unknownAccessKey("SKAAAAAAAAAAAAAAAAAA")) { try unknown.get() }
    }

    @Test("an id that cannot be a key id (the secret, when id and secret are swapped) is not echoed")
    func swappedIDAndSecretNotEchoed() async throws {
        // The secret sent where the id goes, as with swapped aws_access_key_id and aws_secret_access_key.
        let swapped = await BearerCredentials.authenticate(
            authorization: ["Bearer \(Self.secret.value):\(Self.keyID)"]) { _ in nil }
        guard case .failure(let failure) = swapped else {
            Issue.record("a swapped id and secret authenticated")
            return
        }
        #expect(failure == .unknownAccessKey(Self.secret.value))
        for text in [failure.message, "\(failure)", failure.sageMakerError.message, failure.s3Error.message] {
            #expect(!text.contains(Self.secret.value), "\(text)")
        }
        #expect(failure.message.contains("swapped"))
        // A well-formed id is still named, to say which key is missing.
        #expect(AuthenticationFailure.unknownAccessKey(Self.keyID).message.contains(Self.keyID))
    }

    @Test("credentials print without their secret")
    func redacted() throws {
        let credentials = try BearerCredentials.parse(authorization: ["Bearer \(Self.keyID):\(Self.secret.value)"])
        #expect(!"\(credentials)".contains(Self.secret.value))
        #expect("\(credentials)".contains(Self.keyID))
    }
}
