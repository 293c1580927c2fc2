/// The credentials of an `Authorization: Bearer ACCESS_KEY_ID:SECRET` header, what Serval's CLI and REST clients
/// send.
///
/// Parsing never echoes the header in an error, since it holds the secret; the value prints redacted.
public struct BearerCredentials: Sendable, CustomStringConvertible {
    /// The access key id.
    public var accessKeyID: String
    /// The secret presented with it.
    public var secret: AccessKeySecret

    /// Creates credentials.
    public init(accessKeyID: String, secret: AccessKeySecret) {
        self.accessKeyID = accessKeyID
        self.secret = secret
    }

    /// The `Authorization` header value: `Bearer ACCESS_KEY_ID:SECRET`.
    public var authorizationHeaderValue: String { "Bearer \(accessKeyID):\(secret.value)" }

    /// `BearerCredentials(accessKeyID: ..., secret: redacted)`.
    public var description: String { "BearerCredentials(accessKeyID: \(accessKeyID), secret: redacted)" }

    /// Parses the `Authorization` header values of a request (none, one, or — malformed — several).
    ///
    /// The scheme is case-insensitive; the id and secret are split at the first `:`, so a secret may contain `:`.
    public static func parse(authorization values: [String]) throws(AuthenticationFailure) -> BearerCredentials {
        guard let value = values.first else { throw .missingAuthentication }
        guard values.count == 1 else {
            throw .malformed("The request has more than one Authorization header.", location: .header)
        }
        let text = value.trimmingSpaces
        let expected = "Send 'Authorization: Bearer ACCESS_KEY_ID:SECRET'."
        guard let space = text.firstIndex(of: " "), text[..<space].lowercased() == "bearer" else {
            throw .malformed("The Authorization header is not a bearer token. " + expected, location: .header)
        }
        let token = text[space...].trimmingSpaces
        guard let colon = token.firstIndex(of: ":"), colon != token.startIndex,
            token.index(after: colon) != token.endIndex
        else {
            throw .malformed("The bearer token is not ACCESS_KEY_ID:SECRET. " + expected, location: .header)
        }
        return BearerCredentials(
            accessKeyID: String(token[..<colon]), secret: AccessKeySecret(String(token[token.index(after: colon)...])))
    }

    /// Checks the presented secret against the stored secret of ``accessKeyID`` (`nil`: no such key), in constant
    /// time.
    public func verify(storedSecret: AccessKeySecret?) throws(AuthenticationFailure) {
        guard let storedSecret else { throw .unknownAccessKey(accessKeyID) }
        guard secret.matches(storedSecret) else { throw .incorrectSecret }
    }

    /// Authenticates a request by its `Authorization` header values: parses them, looks up the named key's secret
    /// and compares. Returns the access key id, or why the request is not authenticated; rethrows the lookup's
    /// errors.
    public static func authenticate(
        authorization values: [String], secret lookup: (String) async throws -> AccessKeySecret?
    ) async rethrows -> Result<String, AuthenticationFailure> {
        let credentials: BearerCredentials
        do {
            credentials = try parse(authorization: values)
        } catch {
            return .failure(error)
        }
        let stored = try await lookup(credentials.accessKeyID)
        do {
            try credentials.verify(storedSecret: stored)
            return .success(credentials.accessKeyID)
        } catch {
            return .failure(error)
        }
    }
}
