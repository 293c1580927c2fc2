import ServalAuth
import Testing

@Suite("Sealing secrets at rest")
struct SecretSealerTests {
    static let keyID = "SKQ3V7X2MZ4HJ5NB6RTA"
    static let secret = AccessKeySecret("Zq7Wm1xk9Jf3Lr8TvB2NcY5HdP0GsA4eUoKiQw6E")

    @Test("a sealed secret opens under the same master key and key id")
    func roundTrip() throws {
        let sealer = SecretSealer(masterKey: .generate())
        let sealed = try sealer.seal(Self.secret, accessKeyID: Self.keyID)
        #expect(try sealer.open(sealed, accessKeyID: Self.keyID).value == Self.secret.value)
        // 1 version byte, 12 nonce, 40 ciphertext, 16 tag; the secret itself does not appear.
        #expect(sealed.bytes.count == 1 + 12 + 40 + 16)
        #expect(!String(decoding: sealed.bytes, as: UTF8.self).contains(Self.secret.value))
    }

    @Test("sealing twice gives different bytes (a fresh nonce each time)")
    func freshNonce() throws {
        let sealer = SecretSealer(masterKey: .generate())
        #expect(
            try sealer.seal(Self.secret, accessKeyID: Self.keyID) != sealer.seal(Self.secret, accessKeyID: Self.keyID))
    }

    @Test("another master key cannot open it")
    func wrongMasterKey() throws {
        let sealed = try SecretSealer(masterKey: .generate()).seal(Self.secret, accessKeyID: Self.keyID)
        #expect(throws: SecretSealingError.cannotOpen) {
            try SecretSealer(masterKey: .generate()).open(sealed, accessKeyID: Self.keyID)
        }
    }

    @Test("the key id is bound: a secret moved to another key's record does not open")
    func associatedDataBindsID() throws {
        let sealer = SecretSealer(masterKey: .generate())
        let sealed = try sealer.seal(Self.secret, accessKeyID: Self.keyID)
        #expect(throws: SecretSealingError.cannotOpen) { try sealer.open(sealed, accessKeyID: "SKAAAAAAAAAAAAAAAAAA") }
    }

    @Test("any altered byte is detected")
    func tampered() throws {
        let sealer = SecretSealer(masterKey: .generate())
        let sealed = try sealer.seal(Self.secret, accessKeyID: Self.keyID)
        for index in 1..<sealed.bytes.count {
            var altered = sealed
            altered.bytes[index] ^= 0x01
            #expect(throws: SecretSealingError.cannotOpen) { try sealer.open(altered, accessKeyID: Self.keyID) }
        }
        #expect(throws: SecretSealingError.cannotOpen) {
            try sealer.open(SealedSecret(bytes: Array(sealed.bytes.dropLast())), accessKeyID: Self.keyID)
        }
        #expect(throws: SecretSealingError.cannotOpen) {
            try sealer.open(SealedSecret(bytes: [1, 2, 3]), accessKeyID: Self.keyID)
        }
        #expect(throws: SecretSealingError.cannotOpen) {
            try sealer.open(SealedSecret(bytes: []), accessKeyID: Self.keyID)
        }
        var otherVersion = sealed
        otherVersion.bytes[0] = 2
        #expect(throws: SecretSealingError.unsupportedFormat(2)) {
            try sealer.open(otherVersion, accessKeyID: Self.keyID)
        }
    }

    @Test("a master key survives its file format, and opens what it sealed")
    func masterKeyFile() throws {
        let key = MasterKey.generate()
        let contents = key.fileContents
        #expect(contents.hasPrefix("serval-master-key-v1 "))
        #expect(contents.hasSuffix("\n"))
        #expect(contents.count == "serval-master-key-v1 ".count + 64 + 1)
        let reloaded = try MasterKey(fileContents: "  " + contents + "\n")
        #expect(reloaded.fingerprint == key.fingerprint)
        let sealed = try SecretSealer(masterKey: key).seal(Self.secret, accessKeyID: Self.keyID)
        #expect(try SecretSealer(masterKey: reloaded).open(sealed, accessKeyID: Self.keyID).value == Self.secret.value)
    }

    @Test("a known key file decodes to its bytes and fingerprint")
    func knownKeyFile() throws {
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        let key = try MasterKey(fileContents: "serval-master-key-v1 \(hex)\n")
        #expect(key.fileContents == "serval-master-key-v1 \(hex)\n")
        #expect(try MasterKey(bytes: Array(0..<32)).fingerprint == key.fingerprint)
        #expect(try MasterKey(fileContents: "serval-master-key-v1 \(hex.uppercased())").fingerprint == key.fingerprint)
        #expect(key.fingerprint.count == 16)
    }

    @Test(
        "a bad key file is refused",
        arguments: [
            "", "serval-master-key-v1",
            "serval-master-key-v2 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "serval-master-key-v1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
            "serval-master-key-v1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00",
            "serval-master-key-v1 zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "serval-master-key-v1 000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f",
        ])
    func badKeyFile(contents: String) {
        #expect(throws: SecretSealingError.self) { try MasterKey(fileContents: contents) }
    }

    @Test("a master key prints only its fingerprint")
    func masterKeyRedacted() throws {
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        let key = try MasterKey(fileContents: "serval-master-key-v1 \(hex)")
        var dumped = ""
        dump(key, to: &dumped)
        for text in ["\(key)", String(reflecting: key), dumped] {
            #expect(!text.contains(hex))
            #expect(text.contains(key.fingerprint))
        }
    }
}
