public import ServalCore

/// Verifies AWS Signature Version 4 requests (`AWS4-HMAC-SHA256`), signed in the `Authorization` header or as a
/// presigned URL, against the secrets of Serval's access keys.
///
/// Verification has two steps so that the secret lookup, which usually reads a store, happens between them and
/// only for requests worth looking up:
///
/// 1. ``claim(for:now:)`` parses the credentials, checks the request time and computes the canonical request. It
///    needs no secret and rejects malformed, stale and wrongly scoped requests.
/// 2. ``verify(_:secret:)`` derives the signing key from the named key's secret and compares signatures in
///    constant time.
///
/// ``authenticate(_:now:secret:)`` runs both around a lookup closure.
///
/// What is checked: the algorithm; the credential scope `KEY/DATE/REGION/SERVICE/aws4_request` (service among
/// ``services``, region equal to ``region`` if set, date equal to the request date); the request time from
/// `X-Amz-Date` (or `Date`) within ``maxClockSkewSeconds`` of now; `host` among the signed headers and every signed
/// header present; for presigned URLs, `X-Amz-Expires` (at most 7 days) not yet past. The canonical URI follows
/// the scope's service: S3 paths are encoded once and never normalized, every other service's path is normalized
/// and encoded twice (see the SigV4 documentation).
///
/// Not verified: the signatures of `aws-chunked` chunks (use ``SigV4Authentication/chunkVerifier`` while
/// decoding) and of trailers (`STREAMING-…-TRAILER` uploads); session tokens (`X-Amz-Security-Token`) are signed
/// like any header but Serval issues none and ignores them; SigV4a (`AWS4-ECDSA-P256-SHA256`) is rejected.
public struct SigV4Verifier: Sendable {
    /// The service signing names accepted in the credential scope, e.g. `["sagemaker"]` or `["s3"]`.
    public var services: Set<String>
    /// The region the credential scope must name, or `nil` to accept any region (the default: Serval is one place).
    public var region: String?
    /// How far the request time may be from the server's clock, either way. AWS allows 15 minutes.
    public var maxClockSkewSeconds: Int

    /// The default clock skew: 15 minutes.
    public static let defaultMaxClockSkewSeconds = 900
    /// The longest validity a presigned URL may ask for: 7 days, as in S3.
    public static let maxPresignedExpirySeconds = 604_800

    /// Creates a verifier for requests signed for one of `services`.
    public init(services: Set<String>, region: String? = nil, maxClockSkewSeconds: Int = defaultMaxClockSkewSeconds) {
        self.services = services
        self.region = region
        self.maxClockSkewSeconds = maxClockSkewSeconds
    }

    /// Authenticates a request: parses it, looks up the secret of the access key it names and checks the signature.
    ///
    /// - Parameter lookup: returns the secret of an access key id, or `nil` if no such key exists. Its errors (a
    ///   store failure) are rethrown, not turned into authentication failures.
    /// - Returns: the authenticated request, or why it is not.
    public func authenticate(
        _ request: SigV4Request, now: Timestamp, secret lookup: (String) async throws -> AccessKeySecret?
    ) async rethrows -> Result<SigV4Authentication, AuthenticationFailure> {
        let claim: SigV4Claim
        do {
            claim = try self.claim(for: request, now: now)
        } catch {
            return .failure(error)
        }
        let secret = try await lookup(claim.accessKeyID)
        do {
            return .success(try verify(claim, secret: secret))
        } catch {
            return .failure(error)
        }
    }

    /// Step 1: reads the request's credentials and checks everything that needs no secret.
    public func claim(for request: SigV4Request, now: Timestamp) throws(AuthenticationFailure) -> SigV4Claim {
        let authorizations = request.values(of: "authorization")
        let queryNames = Set(
            SigV4Canonicalization.rawQueryPairs(request.query).map { String(decoding: $0.name, as: UTF8.self) })
        let presigned = !queryNames.isDisjoint(with: [Query.algorithm, Query.credential, Query.signature])
        if presigned, !authorizations.isEmpty {
            throw .malformed(
                "Only one auth mechanism allowed; send either the X-Amz-Algorithm query parameters or the Authorization "
                    + "header, not both.", location: .header)
        }
        if presigned {
            return try presignedClaim(request, now: now)
        }
        guard let authorization = authorizations.first else { throw .missingAuthentication }
        guard authorizations.count == 1 else {
            throw .malformed("The request has more than one Authorization header.", location: .header)
        }
        return try headerClaim(request, authorization: authorization, now: now)
    }

    /// Step 2: checks the claim's signature with the secret of the access key it names (`nil`: no such key).
    public func verify(_ claim: SigV4Claim, secret: AccessKeySecret?) throws(AuthenticationFailure)
        -> SigV4Authentication
    {
        guard let secret else { throw .unknownAccessKey(claim.accessKeyID) }
        let key = SigV4Crypto.signingKey(secret: secret, scope: claim.scope)
        let expected = SigV4Crypto.signature(of: claim.stringToSign, using: key)
        guard constantTimeEquals(expected.utf8, claim.signature.utf8) else {
            throw .signatureMismatch(
                SignatureMismatchDetails(
                    accessKeyID: claim.accessKeyID, canonicalRequest: claim.canonicalRequest,
                    stringToSign: claim.stringToSign))
        }
        if claim.payloadHashMismatch { throw .payloadHashMismatch }
        var chunkVerifier: SigV4ChunkVerifier?
        if case .streaming(let kind) = claim.payload, kind.hasChunkSignatures {
            chunkVerifier = SigV4ChunkVerifier(
                signingKey: key, amzDate: claim.amzDate.basic, scope: claim.scope.description,
                seedSignature: claim.signature)
        }
        return SigV4Authentication(
            accessKeyID: claim.accessKeyID, scope: claim.scope, requestTime: claim.requestTime, mechanism: claim.mechanism,
            payload: claim.payload, unverifiedPayloadSHA256: claim.unverifiedPayloadSHA256, chunkVerifier: chunkVerifier)
    }

    // MARK: - Authorization header

    private func headerClaim(
        _ request: SigV4Request, authorization: String, now: Timestamp
    ) throws(AuthenticationFailure) -> SigV4Claim {
        let text = authorization.drop(while: { $0 == " " })
        guard let space = text.firstIndex(of: " "), text[..<space] == SigV4Crypto.algorithm else {
            throw .malformed(
                "Serval accepts AWS Signature Version 4: 'AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, "
                    + "SignedHeaders=..., Signature=...'; the Authorization header uses another scheme.",
                location: .header)
        }
        var fields: [String: String] = [:]
        for component in text[text.index(after: space)...].split(separator: ",") {
            let trimmed = component.trimmingSpaces
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw .malformed(
                    "The Authorization header component '\(trimmed)' is not NAME=VALUE.", location: .header)
            }
            let name = String(trimmed[..<equals])
            guard fields[name] == nil else {
                throw .malformed("The Authorization header repeats its '\(name)' parameter.", location: .header)
            }
            fields[name] = String(trimmed[trimmed.index(after: equals)...])
        }
        let missing = ["Credential", "SignedHeaders", "Signature"].filter { fields[$0]?.isEmpty ?? true }
        guard missing.isEmpty else {
            throw .malformed(
                missing.map { "Authorization header requires '\($0)' parameter." }.joined(separator: " "),
                location: .header)
        }
        let date = try requestDate(request)
        let credential = try parseCredential(fields["Credential"]!, date: date, location: .header)
        let difference = abs(now.millisecondsSinceEpoch - date.timestamp.millisecondsSinceEpoch)
        guard difference <= Int64(maxClockSkewSeconds) * 1000 else {
            throw .requestTimeTooSkewed(
                requestTime: date.timestamp, serverTime: now, allowedSkewSeconds: maxClockSkewSeconds)
        }
        let signedHeaders = try parseSignedHeaders(fields["SignedHeaders"]!, location: .header)
        let payload = try resolvePayload(request, presigned: false)
        let canonicalRequest = try SigV4Claim.canonicalRequest(
            method: request.method, path: request.path,
            canonicalQuery: SigV4Canonicalization.query(rawQuery: request.query),
            headers: request.headers, signedHeaders: signedHeaders, payload: payload.signed,
            service: credential.scope.service,
            location: .header)
        return SigV4Claim(
            accessKeyID: credential.accessKeyID, scope: credential.scope, amzDate: date,
            mechanism: .authorizationHeader,
            payload: payload.signed, unverifiedPayloadSHA256: payload.unverified, payloadHashMismatch: payload.mismatch,
            canonicalRequest: canonicalRequest, signature: fields["Signature"]!)
    }

    /// The request time: `X-Amz-Date` if present, else `Date`.
    private func requestDate(_ request: SigV4Request) throws(AuthenticationFailure) -> AmzDate {
        let amzDates = request.values(of: "x-amz-date")
        if !amzDates.isEmpty {
            guard amzDates.count == 1, let date = AmzDate(basic: amzDates[0].trimmingSpaces) else {
                throw .malformed(
                    "X-Amz-Date must be one timestamp in the ISO 8601 basic format yyyyMMdd'T'HHmmss'Z'.",
                    location: .header)
            }
            return date
        }
        let dates = request.values(of: "date")
        guard !dates.isEmpty else {
            throw .malformed(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
                location: .header)
        }
        guard dates.count == 1, let date = AmzDate(httpDate: dates[0].trimmingSpaces) else {
            throw .malformed(
                "The Date header must be one HTTP date such as 'Fri, 24 May 2013 00:00:00 GMT'; or send X-Amz-Date.",
                location: .header)
        }
        return date
    }

    // MARK: - Presigned URL

    /// The query parameters of a presigned URL.
    private enum Query {
        static let algorithm = "X-Amz-Algorithm"
        static let credential = "X-Amz-Credential"
        static let date = "X-Amz-Date"
        static let expires = "X-Amz-Expires"
        static let signedHeaders = "X-Amz-SignedHeaders"
        static let signature = "X-Amz-Signature"
        static let required = [algorithm, credential, signature, date, signedHeaders, expires]
    }

    private func presignedClaim(_ request: SigV4Request, now: Timestamp) throws(AuthenticationFailure) -> SigV4Claim {
        var parameters: [String: [String]] = [:]
        for (name, value) in SigV4Canonicalization.rawQueryPairs(request.query) {
            parameters[String(decoding: name, as: UTF8.self), default: []].append(
                String(decoding: value, as: UTF8.self))
        }
        guard Query.required.allSatisfy({ parameters[$0]?.first?.isEmpty == false }) else {
            throw .malformed(
                "Query-string authentication requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
                    + "X-Amz-SignedHeaders, and X-Amz-Expires parameters.", location: .query)
        }
        if let repeated = Query.required.first(where: { parameters[$0]!.count > 1 }) {
            throw .malformed("The query repeats its \(repeated) parameter.", location: .query)
        }
        let value = { (name: String) in parameters[name]![0] }
        guard value(Query.algorithm) == SigV4Crypto.algorithm else {
            throw .malformed("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\".", location: .query)
        }
        guard let date = AmzDate(basic: value(Query.date)) else {
            throw .malformed(
                "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\".", location: .query)
        }
        guard let expires = Int(value(Query.expires)), expires >= 1 else {
            throw .malformed("X-Amz-Expires must be a whole number of seconds of at least 1.", location: .query)
        }
        guard expires <= Self.maxPresignedExpirySeconds else {
            throw .malformed(
                "X-Amz-Expires must be less than a week (in seconds) that is \(Self.maxPresignedExpirySeconds).",
                location: .query)
        }
        let credential = try parseCredential(value(Query.credential), date: date, location: .query)
        guard date.timestamp.millisecondsSinceEpoch - now.millisecondsSinceEpoch <= Int64(maxClockSkewSeconds) * 1000
        else {
            throw .requestTimeTooSkewed(
                requestTime: date.timestamp, serverTime: now, allowedSkewSeconds: maxClockSkewSeconds)
        }
        let expiresAt = Timestamp(millisecondsSinceEpoch: date.timestamp.millisecondsSinceEpoch + Int64(expires) * 1000)
        guard now <= expiresAt else { throw .expired(expiredAt: expiresAt, serverTime: now) }
        let signedHeaders = try parseSignedHeaders(value(Query.signedHeaders), location: .query)
        let payload = try resolvePayload(request, presigned: true)
        let canonicalRequest = try SigV4Claim.canonicalRequest(
            method: request.method, path: request.path,
            canonicalQuery: SigV4Canonicalization.query(rawQuery: request.query, excluding: Query.signature),
            headers: request.headers, signedHeaders: signedHeaders, payload: payload.signed,
            service: credential.scope.service,
            location: .query)
        return SigV4Claim(
            accessKeyID: credential.accessKeyID, scope: credential.scope, amzDate: date,
            mechanism: .presignedURL(expiresAt: expiresAt), payload: payload.signed,
            unverifiedPayloadSHA256: payload.unverified, payloadHashMismatch: payload.mismatch,
            canonicalRequest: canonicalRequest, signature: value(Query.signature))
    }

    // MARK: - Shared parts

    /// Parses `KEY/DATE/REGION/SERVICE/aws4_request` and checks it against the request date and the configuration.
    private func parseCredential(
        _ text: String, date: AmzDate, location: AuthenticationFailure.CredentialLocation
    ) throws(AuthenticationFailure) -> (accessKeyID: String, scope: SigV4CredentialScope) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts.allSatisfy({ !$0.isEmpty }), parts[4] == SigV4Crypto.terminator,
            parts[1].utf8.count == 8, parts[1].utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        else {
            // Not echoed: a secret sent in the id's place (secrets may hold '/') would reach the answer and the log.
            throw .malformed(
                "The credential is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request (it has \(parts.count) "
                    + "'/'-separated parts); check that the access key id and the secret are not swapped.",
                location: location)
        }
        let scope = SigV4CredentialScope(date: String(parts[1]), region: String(parts[2]), service: String(parts[3]))
        guard scope.date == date.day else {
            throw .malformed(
                "Invalid credential date '\(scope.date)': it is not the date of the request time \(date.basic).",
                location: location)
        }
        guard services.contains(scope.service) else {
            throw .malformed(
                "Credential should be scoped to correct service: '\(services.sorted().joined(separator: "' or '"))', not "
                    + "'\(scope.service)'.", location: location)
        }
        if let region, scope.region != region {
            throw .malformed("the region '\(scope.region)' is wrong; expecting '\(region)'", location: location)
        }
        return (String(parts[0]), scope)
    }

    /// Parses `name;name;...`: lowercase names, none empty or repeated, `host` among them and `authorization` not.
    private func parseSignedHeaders(
        _ text: String, location: AuthenticationFailure.CredentialLocation
    ) throws(AuthenticationFailure) -> [String] {
        let names = text.split(separator: ";", omittingEmptySubsequences: false).map { $0.lowercased() }
        guard names.allSatisfy({ !$0.isEmpty }), Set(names).count == names.count else {
            throw .malformed(
                "SignedHeaders '\(text)' must be distinct header names separated by ';'.", location: location)
        }
        guard names.contains("host") else {
            throw .malformed("SignedHeaders must include 'host'; got '\(text)'.", location: location)
        }
        guard !names.contains("authorization") else {
            throw .malformed(
                "SignedHeaders must not include 'authorization', which carries the signature.", location: location)
        }
        return names
    }

    /// The payload hash the request signed, the digest the caller still has to check, and whether a digest the
    /// caller computed contradicts the signed one.
    private func resolvePayload(
        _ request: SigV4Request, presigned: Bool
    ) throws(AuthenticationFailure) -> (signed: SignedPayload, unverified: String?, mismatch: Bool) {
        let location: AuthenticationFailure.CredentialLocation = presigned ? .query : .header
        let values = request.values(of: "x-amz-content-sha256")
        if let headerValue = values.first {
            guard values.count == 1, let signed = SignedPayload(headerValue: String(headerValue.trimmingSpaces)) else {
                throw .malformed(
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
                        + "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-UNSIGNED-PAYLOAD-TRAILER, or a valid sha256 value.",
                    location: location)
            }
            switch (signed, request.payload) {
            case (.sha256(let digest), .computed(let computed)):
                return (signed, nil, digest.lowercased() != computed.lowercased())
            case (.sha256(let digest), _):
                return (signed, digest.lowercased(), false)
            default:
                return (signed, nil, false)
            }
        }
        switch request.payload {
        case .header:
            guard presigned else {
                throw .malformed("Missing required header for this request: x-amz-content-sha256.", location: .header)
            }
            return (.unsigned, nil, false)
        case .computed(let digest):
            return (.sha256(digest.lowercased()), nil, false)
        case .unsigned:
            return (.unsigned, nil, false)
        }
    }
}

/// A SigV4 request whose credentials have been read and whose time and scope are acceptable: everything but the
/// signature, which ``SigV4Verifier/verify(_:secret:)`` checks once the secret of ``accessKeyID`` is known.
public struct SigV4Claim: Sendable {
    /// The access key id the request names.
    public let accessKeyID: String
    /// The credential scope.
    public let scope: SigV4CredentialScope
    /// The request time.
    public var requestTime: Timestamp { amzDate.timestamp }
    /// Header or presigned URL.
    public let mechanism: SigV4Mechanism
    /// What the signature covers of the body.
    public let payload: SignedPayload
    let amzDate: AmzDate
    let unverifiedPayloadSHA256: String?
    let payloadHashMismatch: Bool
    /// The canonical request Serval computed.
    public let canonicalRequest: String
    let signature: String

    init(
        accessKeyID: String, scope: SigV4CredentialScope, amzDate: AmzDate, mechanism: SigV4Mechanism,
        payload: SignedPayload, unverifiedPayloadSHA256: String?, payloadHashMismatch: Bool, canonicalRequest: String,
        signature: String
    ) {
        self.accessKeyID = accessKeyID
        self.scope = scope
        self.amzDate = amzDate
        self.mechanism = mechanism
        self.payload = payload
        self.unverifiedPayloadSHA256 = unverifiedPayloadSHA256
        self.payloadHashMismatch = payloadHashMismatch
        self.canonicalRequest = canonicalRequest
        self.signature = signature
    }

    /// The string to sign: algorithm, request time, scope and the hash of the canonical request.
    public var stringToSign: String {
        SigV4Claim.stringToSign(canonicalRequest: canonicalRequest, amzDate: amzDate, scope: scope)
    }

    static func stringToSign(canonicalRequest: String, amzDate: AmzDate, scope: SigV4CredentialScope) -> String {
        "\(SigV4Crypto.algorithm)\n\(amzDate.basic)\n\(scope)\n\(SigV4Crypto.sha256Hex(canonicalRequest))"
    }

    /// The canonical request: method, canonical URI, canonical query, canonical headers, signed headers, payload.
    static func canonicalRequest(
        method: String, path: String, canonicalQuery: String, headers: [(name: String, value: String)],
        signedHeaders: [String], payload: SignedPayload, service: String,
        location: AuthenticationFailure.CredentialLocation
    ) throws(AuthenticationFailure) -> String {
        let canonical = SigV4Canonicalization.request(
            method: method, path: path, canonicalQuery: canonicalQuery, headers: headers, signedHeaders: signedHeaders,
            payloadHash: payload.canonicalValue, service: service)
        switch canonical {
        case .success(let canonicalRequest):
            return canonicalRequest
        case .failure(let missing):
            throw .malformed("The request does not carry the signed header '\(missing.name)'.", location: location)
        }
    }
}

/// A request whose SigV4 signature has been verified.
public struct SigV4Authentication: Sendable {
    /// The access key that signed the request.
    public var accessKeyID: String
    /// The credential scope it signed with.
    public var scope: SigV4CredentialScope
    /// The signed request time.
    public var requestTime: Timestamp
    /// Header or presigned URL.
    public var mechanism: SigV4Mechanism
    /// What the signature covers of the body.
    public var payload: SignedPayload
    /// The lowercase hex SHA-256 the body must have, when the signature covers one that Serval has not compared with
    /// the body (the source was ``PayloadHashSource/header`` or ``PayloadHashSource/unsigned``). The caller hashes
    /// the body as it reads it and fails with ``AuthenticationFailure/payloadHashMismatch`` if it differs. `nil`
    /// when there is nothing left to check.
    public var unverifiedPayloadSHA256: String?
    /// For ``StreamingPayload/signedChunks`` and ``StreamingPayload/signedChunksWithTrailer`` uploads, the verifier
    /// of the chunk signatures chained from this request's signature; `nil` otherwise.
    public var chunkVerifier: SigV4ChunkVerifier?
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    var trimmingSpaces: SubSequence {
        let isSpace = { (character: Character) in character == " " || character == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return self[endIndex...]
        }
        return self[first...last]
    }
}
