import Crypto
import Foundation
public import ServalCore

/// Stored secrets other than access keys (webhook secrets, secret-looking model environment values) sealed with
/// the same master key: `serval-sealed:v1:` and the base64 of a version byte, nonce, ciphertext and tag, bound to
/// the value's context.
extension SecretSealer: ValueSealer {
    public func seal(_ value: String, context: String) throws -> String {
        guard !SealedValues.isSealed(value) else { return value }
        let box = try AES.GCM.seal(Array(value.utf8), using: key, authenticating: Self.associatedData(context))
        guard let combined = box.combined else { throw SecretSealingError.cannotSeal }
        return SealedValues.prefix + Data([Self.formatVersion] + Array(combined)).base64EncodedString()
    }

    public func open(_ sealed: String, context: String) throws -> String {
        guard SealedValues.isSealed(sealed) else { return sealed }
        guard let bytes = Data(base64Encoded: String(sealed.dropFirst(SealedValues.prefix.count))),
            bytes.first == Self.formatVersion
        else { throw SecretSealingError.cannotOpen }
        do {
            let box = try AES.GCM.SealedBox(combined: bytes.dropFirst())
            let plain = try AES.GCM.open(box, using: key, authenticating: Self.associatedData(context))
            guard let text = String(validating: plain, as: UTF8.self) else { throw SecretSealingError.cannotOpen }
            return text
        } catch {
            throw SecretSealingError.cannotOpen
        }
    }

    private static func associatedData(_ context: String) -> [UInt8] {
        Array("serval-sealed-value-v1\0".utf8) + Array(context.utf8)
    }
}
