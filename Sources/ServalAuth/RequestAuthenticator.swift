public import ServalCore

/// Where authenticators find access keys: the key record and its secret, opened.
///
/// Serval's implementation reads the metadata store and opens sealed secrets with the master key; tests use a
/// dictionary. Errors (a store failure, a secret that does not open) are the server's, not the client's: callers
/// rethrow them instead of answering 401.
public protocol AccessKeyDirectory: Sendable {
    /// The key named `id` and its secret, or `nil` when no such key exists.
    func accessKey(id: String) async throws -> (key: AccessKey, secret: AccessKeySecret)?
}

/// Authenticates requests against an ``AccessKeyDirectory``: bearer tokens and SigV4 signatures, each resolving to
/// the ``AccessKey`` that made the request, whose role the caller then checks with
/// ``AccessKeyRole/authorize(_:accessKeyID:)``.
///
/// Frontends build the plain request values (``SigV4Request``, `Authorization` header values) and map the
/// ``AuthenticationFailure`` to their protocol once.
public struct RequestAuthenticator: Sendable {
    /// Where keys are looked up.
    public let directory: any AccessKeyDirectory
    /// The server's clock, for the SigV4 request time window.
    public let clock: any WallClock

    /// Creates an authenticator.
    public init(directory: any AccessKeyDirectory, clock: any WallClock) {
        self.directory = directory
        self.clock = clock
    }

    /// Authenticates `Authorization: Bearer ACCESS_KEY_ID:SECRET`.
    ///
    /// Text that cannot be a Serval key id is refused without a lookup.
    public func bearer(authorization values: [String]) async throws -> Result<AccessKey, AuthenticationFailure> {
        let credentials: BearerCredentials
        do {
            credentials = try BearerCredentials.parse(authorization: values)
        } catch {
            return .failure(error)
        }
        let found = try await lookup(credentials.accessKeyID)
        do {
            try credentials.verify(storedSecret: found?.secret)
        } catch {
            return .failure(error)
        }
        return .success(found!.key)
    }

    /// Authenticates a SigV4 request (signed in the `Authorization` header or presigned) with `verifier`'s rules.
    ///
    /// - Returns: the key and the verified request; check ``SigV4Authentication/unverifiedPayloadSHA256`` and
    ///   ``SigV4Authentication/chunkVerifier`` while reading the body when the payload source was
    ///   ``PayloadHashSource/header``.
    public func sigV4(
        _ request: SigV4Request, verifier: SigV4Verifier
    ) async throws -> Result<(key: AccessKey, authentication: SigV4Authentication), AuthenticationFailure> {
        let claim: SigV4Claim
        do {
            claim = try verifier.claim(for: request, now: clock.now())
        } catch {
            return .failure(error)
        }
        let found = try await lookup(claim.accessKeyID)
        do {
            let authentication = try verifier.verify(claim, secret: found?.secret)
            return .success((found!.key, authentication))
        } catch {
            return .failure(error)
        }
    }

    /// Whether a request carries SigV4 credentials: an `AWS4-…` `Authorization` header or presigned-URL parameters.
    public static func isSigV4(authorization values: [String], rawQuery: String) -> Bool {
        if let first = values.first {
            return first.drop(while: { $0 == " " }).hasPrefix("AWS4-")
        }
        return rawQuery.contains("X-Amz-Algorithm=") || rawQuery.contains("X-Amz-Credential=")
            || rawQuery.contains("X-Amz-Signature=")
    }

    private func lookup(_ id: String) async throws -> (key: AccessKey, secret: AccessKeySecret)? {
        guard AccessKey.isWellFormedID(id) else { return nil }
        return try await directory.accessKey(id: id)
    }
}
