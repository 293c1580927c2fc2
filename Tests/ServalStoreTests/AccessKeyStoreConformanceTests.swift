import ServalAuth
import ServalCore
import ServalStore
import Testing

/// A stored key with a secret sealed under a fixed master key.
func makeStoredKey(
    _ role: AccessKeyRole, createdAt: Int64, description: String? = nil
) throws -> (stored: StoredAccessKey, secret: AccessKeySecret) {
    let new = AccessKey.generate(role: role, createdAt: timestamp(createdAt))
    let sealed = try testSealer.seal(new.secret, accessKeyID: new.key.id)
    return (
        StoredAccessKey(
            id: new.key.id, role: new.key.role.rawValue, createdAt: new.key.createdAt, description: description,
            sealedSecret: sealed.bytes),
        new.secret
    )
}

let testSealer = SecretSealer(masterKey: try! MasterKey(bytes: Array(repeating: 7, count: 32)))

/// The behaviour every ``AccessKeyStore`` must have, run against each ``StoreKind``.
@Suite("AccessKeyStore conformance")
struct AccessKeyStoreConformanceTests {
    @Test("keys: create, get, list oldest first, delete", arguments: StoreKind.allCases)
    func lifecycle(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            #expect(try await store.accessKeys().isEmpty)
            let admin = try makeStoredKey(.admin, createdAt: 2_000, description: "bootstrap ✓")
            let invoker = try makeStoredKey(.invoker, createdAt: 1_000)
            let deployer = try makeStoredKey(.deployer, createdAt: 3_000, description: "CI")
            for key in [admin, invoker, deployer] { try await store.createAccessKey(key.stored) }

            let read = try #require(try await store.accessKey(id: admin.stored.id))
            #expect(read == admin.stored)
            #expect(read.description == "bootstrap ✓")
            #expect(try await store.accessKey(id: invoker.stored.id)?.description == nil)
            #expect(try await store.accessKey(id: "SKAAAAAAAAAAAAAAAAAA") == nil)
            #expect(try await store.accessKeys().map(\.id) == [invoker, admin, deployer].map(\.stored.id))
            #expect(try await store.accessKeys().map(\.role) == ["invoker", "admin", "deployer"])

            #expect(try await store.deleteAccessKey(id: invoker.stored.id))
            #expect(try await store.deleteAccessKey(id: invoker.stored.id) == false)
            #expect(try await store.accessKey(id: invoker.stored.id) == nil)
            #expect(try await store.accessKeys().map(\.id) == [admin, deployer].map(\.stored.id))
        }
    }

    @Test("keys: the sealed secret round-trips and opens only for its own id", arguments: StoreKind.allCases)
    func sealedSecret(kind: StoreKind) async throws {
        try await withStore(kind) { store, backend in
            let key = try makeStoredKey(.deployer, createdAt: 1_000)
            let other = try makeStoredKey(.deployer, createdAt: 1_000)
            try await store.createAccessKey(key.stored)
            try await store.createAccessKey(other.stored)
            // What survives a reopen is exactly what was sealed, and it opens to the secret.
            let reopened = try backend.open()
            let read = try #require(try await reopened.accessKey(id: key.stored.id))
            #expect(read.sealedSecret == key.stored.sealedSecret)
            let sealed = SealedSecret(bytes: read.sealedSecret)
            #expect(try testSealer.open(sealed, accessKeyID: key.stored.id).matches(key.secret))
            #expect(throws: SecretSealingError.cannotOpen) {
                try testSealer.open(sealed, accessKeyID: other.stored.id)
            }
            // The secret is not stored in clear.
            #expect(!String(decoding: read.sealedSecret, as: UTF8.self).contains(key.secret.value))
        }
    }

    @Test("keys: creating an existing id is a conflict and keeps the original", arguments: StoreKind.allCases)
    func duplicate(kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let original = try makeStoredKey(.invoker, createdAt: 1_000)
            try await store.createAccessKey(original.stored)
            var copy = original.stored
            copy.role = "admin"
            await expectServalError(.conflict) { try await store.createAccessKey(copy) }
            #expect(try await store.accessKey(id: original.stored.id)?.role == "invoker")
            #expect(try await store.accessKeys().count == 1)
        }
    }
}
