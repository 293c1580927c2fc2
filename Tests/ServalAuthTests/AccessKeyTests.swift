import ServalAuth
import ServalCore
import Testing

@Suite("Access keys and roles")
struct AccessKeyTests {
    static let createdAt = Timestamp(millisecondsSinceEpoch: 1_780_000_000_000)

    @Test("generated ids are SK and 18 base32 characters, secrets 40 base64-alphabet characters")
    func generatedShape() {
        let base32 = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        let secretAlphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        for _ in 0..<200 {
            let new = AccessKey.generate(role: .invoker, createdAt: Self.createdAt)
            #expect(new.key.id.count == 20)
            #expect(new.key.id.hasPrefix("SK"))
            #expect(new.key.id.dropFirst(2).allSatisfy(base32.contains))
            #expect(AccessKey.isWellFormedID(new.key.id))
            #expect(new.secret.value.count == 40)
            #expect(new.secret.value.allSatisfy(secretAlphabet.contains))
            #expect(new.key.role == .invoker)
            #expect(new.key.createdAt == Self.createdAt)
        }
    }

    @Test("generated ids and secrets do not repeat, and use the whole alphabet")
    func generatedDistinct() {
        let keys = (0..<1000).map { _ in AccessKey.generate(role: .admin, createdAt: Self.createdAt) }
        #expect(Set(keys.map(\.key.id)).count == keys.count)
        #expect(Set(keys.map(\.secret.value)).count == keys.count)
        #expect(Set(keys.flatMap { $0.key.id.dropFirst(2) }).count == 32)
        #expect(Set(keys.flatMap(\.secret.value)).count == 64)
    }

    @Test("generation draws from the generator it is given")
    func generatorIsUsed() {
        var first = CountingGenerator()
        var second = CountingGenerator()
        let a = AccessKey.generate(role: .deployer, createdAt: Self.createdAt, using: &first)
        let b = AccessKey.generate(role: .deployer, createdAt: Self.createdAt, using: &second)
        #expect(a.key.id == b.key.id)
        #expect(a.secret.value == b.secret.value)
        #expect(first.draws > 0)
    }

    @Test(
        "ids that are not Serval's shape are recognized",
        arguments: [
            "", "SK", "AKIAIOSFODNN7EXAMPLE", "SKQ3V7X2MZ4HJ5NB6RT", "SKQ3V7X2MZ4HJ5NB6RTA1", "SKq3V7X2MZ4HJ5NB6RTA",
            "SK03V7X2MZ4HJ5NB6RTA",
        ])
    func malformedIDs(id: String) {
        #expect(!AccessKey.isWellFormedID(id))
    }

    @Test("a secret never prints")
    func secretRedacted() {
        let new = AccessKey.generate(role: .admin, createdAt: Self.createdAt)
        var dumped = ""
        dump(new, to: &dumped)
        for text in ["\(new.secret)", String(reflecting: new.secret), "\(new)", dumped] {
            #expect(!text.contains(new.secret.value), "\(text)")
        }
        #expect("\(new.secret)" == "AccessKeySecret(redacted)")
    }

    @Test("secrets compare by value")
    func secretMatches() {
        #expect(AccessKeySecret("abc").matches(AccessKeySecret("abc")))
        #expect(!AccessKeySecret("abc").matches(AccessKeySecret("abd")))
        #expect(!AccessKeySecret("abc").matches(AccessKeySecret("abcd")))
    }

    /// The documented role table, restated as facts.
    static let table: [AccessAction: Set<AccessKeyRole>] = [
        .manageAccessKeys: [.admin],
        .describeResources: [.admin, .deployer],
        .manageModels: [.admin, .deployer],
        .manageEndpointConfigs: [.admin, .deployer],
        .manageEndpoints: [.admin, .deployer],
        .manageTransformJobs: [.admin, .deployer],
        .manageTags: [.admin, .deployer],
        .readObjects: [.admin, .deployer],
        .writeObjects: [.admin, .deployer],
        .invoke: [.admin, .deployer, .invoker],
        .readInvocationResults: [.admin, .deployer, .invoker],
    ]

    @Test("each role permits exactly its row of the table", arguments: AccessAction.allCases)
    func roleTable(action: AccessAction) throws {
        let allowed = try #require(Self.table[action])
        for role in AccessKeyRole.allCases {
            #expect(role.permits(action) == allowed.contains(role), "\(role) \(action)")
        }
    }

    @Test("roles nest: a more privileged role permits all a lesser one does")
    func rolesNest() {
        for action in AccessAction.allCases {
            if AccessKeyRole.invoker.permits(action) { #expect(AccessKeyRole.deployer.permits(action)) }
            if AccessKeyRole.deployer.permits(action) { #expect(AccessKeyRole.admin.permits(action)) }
        }
    }

    @Test("a denied action names the key, its role and the role needed, as AccessDeniedException and AccessDenied")
    func accessDenied() throws {
        try AccessKeyRole.invoker.authorize(.invoke, accessKeyID: "SKQ3V7X2MZ4HJ5NB6RTA")
        #expect(throws: AccessDenied(accessKeyID: "SKQ3V7X2MZ4HJ5NB6RTA", role: .invoker, action: .manageEndpoints)) {
            try AccessKeyRole.invoker.authorize(.manageEndpoints, accessKeyID: "SKQ3V7X2MZ4HJ5NB6RTA")
        }
        let denied = AccessDenied(accessKeyID: "SKQ3V7X2MZ4HJ5NB6RTA", role: .deployer, action: .manageAccessKeys)
        #expect(denied.message.contains("SKQ3V7X2MZ4HJ5NB6RTA"))
        #expect(denied.message.contains("'deployer'"))
        #expect(denied.message.contains("'admin'"))
        #expect(
            denied.sageMakerError
                == AWSErrorResponse(code: "AccessDeniedException", message: denied.message, httpStatus: 403))
        #expect(denied.s3Error.code == "AccessDenied")
        #expect(denied.s3Error.httpStatus == 403)
        let invokerDenied = AccessDenied(accessKeyID: "SKQ3V7X2MZ4HJ5NB6RTA", role: .invoker, action: .readObjects)
        #expect(invokerDenied.message.contains("'deployer' or higher"))
    }

    @Test("roles encode as their lowercase names")
    func roleNames() {
        #expect(AccessKeyRole.allCases.map(\.rawValue) == ["admin", "deployer", "invoker"])
        #expect(AccessKeyRole(rawValue: "deployer") == .deployer)
    }
}

/// A deterministic generator, to show that generation uses the one it is given.
struct CountingGenerator: RandomNumberGenerator {
    var draws: UInt64 = 0
    mutating func next() -> UInt64 {
        draws += 1
        return draws &* 0x9E37_79B9_7F4A_7C15
    }
}
