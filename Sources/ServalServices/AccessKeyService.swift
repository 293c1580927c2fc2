import Foundation
public import Logging
public import ServalAuth
public import ServalCore
public import ServalStore
import ServalArtifacts
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Access keys: creating, listing and deleting them, and looking up a key's secret for authentication.
///
/// Secrets are sealed with the master key in `<data-dir>/master.key` (mode 0600), which is created the first time
/// a secret is sealed or opened. A secret is shown once, when its key is created; it is never stored or logged in
/// clear.
public final class AccessKeyService: AccessKeyDirectory {
    let store: any AccessKeyStore
    let clock: any WallClock
    let logger: Logger
    /// The master key file.
    public let masterKeyPath: String
    private let sealer: MasterKeySealer

    /// The longest description accepted, in characters.
    public static let maxDescriptionLength = 256

    /// Creates the service over a store; `masterKeyPath` is usually ``masterKeyPath(dataDirectory:)``.
    public init(store: any AccessKeyStore, masterKeyPath: String, clock: any WallClock, logger: Logger) {
        self.store = store
        self.masterKeyPath = masterKeyPath
        self.sealer = MasterKeySealer(masterKeyPath: masterKeyPath)
        self.clock = clock
        self.logger = logger
    }

    /// `<dataDirectory>/master.key`.
    public static func masterKeyPath(dataDirectory: String) -> String {
        dataDirectory + "/master.key"
    }

    /// Creates a key with a new random id and secret; the returned secret is the only copy in clear.
    public func create(role: AccessKeyRole, description: String?) async throws -> NewAccessKey {
        let description = description.flatMap { $0.isEmpty ? nil : $0 }
        if let description {
            guard description.count <= Self.maxDescriptionLength else {
                throw ServalError.invalid(
                    "Description", "is \(description.count) characters; at most \(Self.maxDescriptionLength) are allowed.")
            }
            guard !description.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw ServalError.invalid("Description", "must not contain control characters.")
            }
        }
        let new = AccessKey.generate(role: role, createdAt: clock.now())
        let sealed: SealedSecret
        let sealer = try sealerLoadingKey()
        do {
            sealed = try sealer.seal(new.secret, accessKeyID: new.key.id)
        } catch {
            throw ServalError(.internalFailure, "Cannot seal the new secret: \(error.description)")
        }
        try await store.createAccessKey(
            StoredAccessKey(
                id: new.key.id, role: new.key.role.rawValue, createdAt: new.key.createdAt, description: description,
                sealedSecret: sealed.bytes))
        logger.notice(
            "Created access key", metadata: ["access_key": "\(new.key.id)", "role": "\(new.key.role.rawValue)"])
        return new
    }

    /// Every key, oldest first, without secrets.
    public func list() async throws -> [(key: AccessKey, description: String?)] {
        try await store.accessKeys().map { stored in (try Self.accessKey(stored), stored.description) }
    }

    /// Deletes a key; requests made with it are refused from then on.
    public func delete(id: String) async throws {
        guard try await store.deleteAccessKey(id: id) else {
            throw ServalError.notFound("Access key", id, hint: "List the keys with `serval keys list`.")
        }
        logger.notice("Deleted access key", metadata: ["access_key": "\(id)"])
    }

    /// The key `id` and its opened secret, for authentication.
    ///
    /// A secret that does not open (another master key file, altered rows) is logged and reported as a generic
    /// internal failure: clients learn nothing of the server's keys.
    public func accessKey(id: String) async throws -> (key: AccessKey, secret: AccessKeySecret)? {
        guard let stored = try await store.accessKey(id: id) else { return nil }
        let key = try Self.accessKey(stored)
        let sealer = try sealerLoadingKey()
        do {
            return (key, try sealer.open(SealedSecret(bytes: stored.sealedSecret), accessKeyID: id))
        } catch {
            logger.error(
                "Cannot open the secret of an access key",
                metadata: ["access_key": "\(id)", "error": "\(error.description)", "master_key": "\(masterKeyPath)"])
            throw ServalError(
                .internalFailure, "Serval cannot check access keys right now; the server log has the details.")
        }
    }

    /// The key record of a stored key; a role this Serval does not know (a row written by another version, or
    /// altered) is an internal failure.
    private static func accessKey(_ stored: StoredAccessKey) throws -> AccessKey {
        guard let role = AccessKeyRole(rawValue: stored.role) else {
            throw ServalError(
                .internalFailure, "Access key \(stored.id) has the unknown role '\(stored.role)' in the database.")
        }
        return AccessKey(id: stored.id, role: role, createdAt: stored.createdAt)
    }

    /// Loads (or creates) the master key now, so that a bad key file stops the server at startup rather than at
    /// the first request.
    public func prepare() throws {
        _ = try sealerLoadingKey()
    }

    private func sealerLoadingKey() throws -> SecretSealer {
        try sealer.loaded()
    }

    /// Reads the master key file, creating it (mode 0600, atomically: a file written aside and linked into place,
    /// so two processes starting at once agree on one key) when it does not exist.
    static func loadOrCreateMasterKey(at path: String) throws -> MasterKey {
        if let contents = try readMasterKeyFile(path) { return try decode(contents, path: path) }
        let key = MasterKey.generate()
        let temporary = path + ".new-\(UUID().uuidString.prefix(8))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ServalError(
                .internalFailure, "Cannot create the master key file \(path): \(String(cString: strerror(errno))).")
        }
        defer { unlink(temporary) }
        let bytes = Array(key.fileContents.utf8)
        let failure = bytes.withUnsafeBytes { writeFully(fd, $0) }
        let synced = fsync(fd) == 0
        close(fd)
        guard failure == 0, synced else {
            throw ServalError(.internalFailure, "Cannot write the master key file \(path).")
        }
        if link(temporary, path) != 0 {
            guard errno == EEXIST, let contents = try readMasterKeyFile(path) else {
                throw ServalError(
                    .internalFailure, "Cannot create the master key file \(path): \(String(cString: strerror(errno))).")
            }
            return try decode(contents, path: path)
        }
        return key
    }

    private static func decode(_ contents: String, path: String) throws(ServalError) -> MasterKey {
        do {
            return try MasterKey(fileContents: contents)
        } catch {
            throw ServalError(.internalFailure, "\(path): \(error.description)")
        }
    }

    private static func readMasterKeyFile(_ path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & 0o077 != 0 {
            throw ServalError(
                .internalFailure,
                "The master key file \(path) is readable by other users (mode \(String(status.st_mode & 0o777, radix: 8))); run `chmod 600 \(path)`.")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ServalError(.internalFailure, "Cannot read the master key file \(path).")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Seals stored values under the data folder's master key, reading (or making) the key file the first time a value
/// is sealed or opened, so that a data folder that never held a secret has no key file.
public final class MasterKeySealer: ValueSealer {
    private let masterKeyPath: String
    private let sealer = Mutex<SecretSealer?>(nil)

    /// A sealer over the key file at `masterKeyPath` (``AccessKeyService/masterKeyPath(dataDirectory:)``).
    public init(masterKeyPath: String) {
        self.masterKeyPath = masterKeyPath
    }

    /// The sealer, the key file read or made on first use.
    func loaded() throws -> SecretSealer {
        try sealer.withLock { cached in
            if let cached { return cached }
            let loaded = SecretSealer(masterKey: try AccessKeyService.loadOrCreateMasterKey(at: masterKeyPath))
            cached = loaded
            return loaded
        }
    }

    public func seal(_ value: String, context: String) throws -> String {
        try loaded().seal(value, context: context)
    }

    public func open(_ sealed: String, context: String) throws -> String {
        guard SealedValues.isSealed(sealed) else { return sealed }
        return try loaded().open(sealed, context: context)
    }
}
