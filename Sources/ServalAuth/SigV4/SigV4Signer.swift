public import ServalCore

/// Signs requests with AWS Signature Version 4, canonicalizing exactly as ``SigV4Verifier`` does.
///
/// For Serval's own clients and tests (a SageMaker request without boto3, a presigned object URL); production clients
/// are the AWS SDKs.
public struct SigV4Signer: Sendable {
    /// The access key id.
    public var accessKeyID: String
    /// The access key's secret.
    public var secret: AccessKeySecret
    /// The region to sign for, e.g. `us-east-1`.
    public var region: String
    /// The service signing name, e.g. `sagemaker` or `s3`.
    public var service: String

    /// Creates a signer.
    public init(accessKeyID: String, secret: AccessKeySecret, region: String, service: String) {
        self.accessKeyID = accessKeyID
        self.secret = secret
        self.region = region
        self.service = service
    }

    /// Signs a request in its `Authorization` header.
    ///
    /// Every header given is signed (include `host`); an `x-amz-date` for `date` is added, replacing any given.
    ///
    /// - Parameters:
    ///   - path: the raw path as it will be sent, percent-encoded.
    ///   - query: the raw query string as it will be sent, or `""`.
    ///   - payloadHash: the hex SHA-256 of the body, `UNSIGNED-PAYLOAD` or a streaming value. It is not added as
    ///     an `x-amz-content-sha256` header: S3 requires that header, so include it in `headers` for S3.
    /// - Returns: the signature, with the `x-amz-date` and `Authorization` headers to send.
    public func sign(
        method: String, path: String, query: String = "", headers: [(name: String, value: String)], payloadHash: String,
        date: Timestamp
    ) -> SigV4Signature {
        let amzDate = AmzDate(date)
        var fields = headers.filter { $0.name.lowercased() != "x-amz-date" }
        fields.append(("x-amz-date", amzDate.basic))
        let signedHeaders = Set(fields.map { $0.name.lowercased() }).sorted {
            $0.utf8.lexicographicallyPrecedes($1.utf8)
        }
        let scope = SigV4CredentialScope(date: String(amzDate.day), region: region, service: service)
        let signature = sign(
            method: method, path: path, canonicalQuery: SigV4Canonicalization.query(rawQuery: query), headers: fields,
            signedHeaders: signedHeaders, payloadHash: payloadHash, amzDate: amzDate, scope: scope)
        let authorization =
            "\(SigV4Crypto.algorithm) Credential=\(accessKeyID)/\(scope), SignedHeaders=\(signedHeaders.joined(separator: ";")), "
            + "Signature=\(signature.signature)"
        return SigV4Signature(
            canonicalRequest: signature.canonicalRequest, stringToSign: signature.stringToSign,
            signature: signature.signature,
            headers: [("x-amz-date", amzDate.basic), ("Authorization", authorization)], query: query)
    }

    /// Presigns a request: the returned ``SigV4Signature/query`` carries the credentials and the signature.
    ///
    /// - Parameters:
    ///   - headers: the headers the request will carry and that are signed; at least `host`.
    ///   - expiresInSeconds: the validity, 1 second to 7 days.
    ///   - payloadHash: `UNSIGNED-PAYLOAD` (S3's rule for presigned URLs) unless the body is known.
    public func presign(
        method: String, path: String, query: String = "", headers: [(name: String, value: String)], date: Timestamp,
        expiresInSeconds: Int, payloadHash: String = "UNSIGNED-PAYLOAD"
    ) -> SigV4Signature {
        let amzDate = AmzDate(date)
        let scope = SigV4CredentialScope(date: String(amzDate.day), region: region, service: service)
        let signedHeaders = Set(headers.map { $0.name.lowercased() }).sorted {
            $0.utf8.lexicographicallyPrecedes($1.utf8)
        }
        let encode = { (text: String) in SigV4Canonicalization.uriEncode(Array(text.utf8), encodeSlash: true) }
        let authentication = [
            "X-Amz-Algorithm=\(SigV4Crypto.algorithm)",
            "X-Amz-Credential=\(encode("\(accessKeyID)/\(scope)"))",
            "X-Amz-Date=\(amzDate.basic)",
            "X-Amz-Expires=\(expiresInSeconds)",
            "X-Amz-SignedHeaders=\(encode(signedHeaders.joined(separator: ";")))",
        ].joined(separator: "&")
        let fullQuery = query.isEmpty ? authentication : query + "&" + authentication
        let canonicalQuery = SigV4Canonicalization.query(rawQuery: fullQuery)
        let signature = sign(
            method: method, path: path, canonicalQuery: canonicalQuery, headers: headers, signedHeaders: signedHeaders,
            payloadHash: payloadHash, amzDate: amzDate, scope: scope)
        return SigV4Signature(
            canonicalRequest: signature.canonicalRequest, stringToSign: signature.stringToSign,
            signature: signature.signature,
            headers: [], query: canonicalQuery + "&X-Amz-Signature=" + signature.signature)
    }

    private func sign(
        method: String, path: String, canonicalQuery: String, headers: [(name: String, value: String)],
        signedHeaders: [String], payloadHash: String, amzDate: AmzDate, scope: SigV4CredentialScope
    ) -> (canonicalRequest: String, stringToSign: String, signature: String) {
        let canonical = SigV4Canonicalization.request(
            method: method, path: path, canonicalQuery: canonicalQuery, headers: headers, signedHeaders: signedHeaders,
            payloadHash: payloadHash, service: service)
        guard case .success(let canonicalRequest) = canonical else {
            preconditionFailure("every signed header is taken from the headers given")
        }
        let stringToSign = SigV4Claim.stringToSign(canonicalRequest: canonicalRequest, amzDate: amzDate, scope: scope)
        let key = SigV4Crypto.signingKey(secret: secret, scope: scope)
        return (canonicalRequest, stringToSign, SigV4Crypto.signature(of: stringToSign, using: key))
    }
}

/// The result of signing a request.
public struct SigV4Signature: Sendable {
    /// The canonical request that was signed.
    public var canonicalRequest: String
    /// The string to sign.
    public var stringToSign: String
    /// The signature, 64 lowercase hex digits.
    public var signature: String
    /// Headers to add to the request: `x-amz-date` and `Authorization` when signed in the header, none when presigned.
    public var headers: [(name: String, value: String)]
    /// The query string to send: unchanged when signed in the header, with the `X-Amz-*` parameters when presigned.
    public var query: String
}
