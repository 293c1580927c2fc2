/// The canonical forms SigV4 signs: URI, query string and headers.
///
/// Verifier and signer share these functions, so a request Serval signs is canonicalized exactly as one it verifies.
enum SigV4Canonicalization {
    /// The canonical request: method, canonical URI, canonical query, canonical headers, signed headers and payload
    /// hash, one per line. Fails with the first signed header the request lacks.
    static func request(
        method: String, path: String, canonicalQuery: String, headers fields: [(name: String, value: String)],
        signedHeaders: [String], payloadHash: String, service: String
    ) -> Result<String, MissingHeader> {
        headers(signed: signedHeaders, from: fields).map { canonical in
            [
                method, uri(rawPath: path, service: service), canonicalQuery, canonical.block, canonical.signedHeaders,
                payloadHash,
            ]
            .joined(separator: "\n")
        }
    }

    /// Whether a service signs its path the S3 way: encoded once, never normalized.
    static func usesS3PathRules(service: some StringProtocol) -> Bool {
        service == "s3"
    }

    /// The canonical URI for a request's raw (still percent-encoded) path.
    ///
    /// - S3: each `/`-separated segment is percent-decoded and encoded again exactly once, so `/test$file.text` and
    ///   `/test%24file.text` both sign as `/test%24file.text`; dot segments and repeated slashes are kept, because in
    ///   S3 they are part of an object key.
    /// - Every other service (SageMaker among them): the raw path's dot segments are removed and repeated slashes
    ///   collapsed, then the raw path is encoded *again*, so a wire path `/a%20b` signs as `/a%2520b`. That is the
    ///   "double encoding" the SigV4 documentation describes, and what botocore computes.
    static func uri(rawPath: String, service: some StringProtocol) -> String {
        if rawPath.isEmpty { return "/" }
        if usesS3PathRules(service: service) {
            return rawPath.split(separator: "/", omittingEmptySubsequences: false)
                .map { uriEncode(percentDecode($0), encodeSlash: true) }
                .joined(separator: "/")
        }
        return uriEncode(Array(removingDotSegments(rawPath).utf8), encodeSlash: false)
    }

    /// RFC 3986 dot-segment removal, also collapsing repeated slashes, as AWS services other than S3 require.
    static func removingDotSegments(_ path: String) -> String {
        var output: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) where segment != "." {
            if segment == ".." {
                _ = output.popLast()
            } else {
                output.append(segment)
            }
        }
        let leading = path.hasPrefix("/") ? "/" : ""
        let trailing = path.hasSuffix("/") && !output.isEmpty ? "/" : ""
        let joined = leading + output.joined(separator: "/") + trailing
        return joined.isEmpty ? "/" : joined
    }

    /// The canonical query string: every `name=value` pair percent-decoded and encoded again, sorted by encoded name
    /// and then by encoded value (bytewise), joined with `&`. A name without `=` gets an empty value; `+` is a plus
    /// sign, not a space. Pairs named `excluding` (decoded) are left out: the presigned signature itself.
    static func query(rawQuery: String, excluding excludedName: String? = nil) -> String {
        var pairs: [(name: String, value: String)] = []
        for (name, value) in rawQueryPairs(rawQuery) {
            if let excludedName, String(decoding: name, as: UTF8.self) == excludedName { continue }
            pairs.append((uriEncode(name, encodeSlash: true), uriEncode(value, encodeSlash: true)))
        }
        pairs.sort { left, right in
            left.name == right.name
                ? left.value.utf8.lexicographicallyPrecedes(right.value.utf8)
                : left.name.utf8.lexicographicallyPrecedes(right.name.utf8)
        }
        return pairs.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
    }

    /// The decoded `(name, value)` byte pairs of a raw query string, in order. Empty pieces (`a=1&&b=2`) are skipped.
    static func rawQueryPairs(_ rawQuery: String) -> [(name: [UInt8], value: [UInt8])] {
        rawQuery.split(separator: "&", omittingEmptySubsequences: true).map { piece in
            if let equals = piece.firstIndex(of: "=") {
                (percentDecode(piece[..<equals]), percentDecode(piece[piece.index(after: equals)...]))
            } else {
                (percentDecode(piece), [])
            }
        }
    }

    /// A header value as SigV4 signs it: leading and trailing whitespace removed, inner runs of spaces and tabs
    /// collapsed to one space.
    static func headerValue(_ value: some StringProtocol) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    /// The canonical headers block and the signed-headers line for the named headers.
    ///
    /// Each name's values are gathered from every field of that name (case-insensitively), in the order received,
    /// each trimmed, and joined with commas. Returns the first signed name the request lacks, if any.
    static func headers(
        signed names: [String], from fields: [(name: String, value: String)]
    ) -> Result<(block: String, signedHeaders: String), MissingHeader> {
        var block = ""
        for name in names {
            let values = fields.filter { $0.name.lowercased() == name }.map { headerValue($0.value) }
            guard !values.isEmpty else { return .failure(MissingHeader(name: name)) }
            block += "\(name):\(values.joined(separator: ","))\n"
        }
        return .success((block, names.joined(separator: ";")))
    }

    /// A signed header that the request does not carry.
    struct MissingHeader: Error {
        var name: String
    }

    /// Percent-encodes bytes with uppercase hex, leaving RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`)
    /// and, unless `encodeSlash`, `/`.
    static func uriEncode(_ bytes: some Sequence<UInt8>, encodeSlash: Bool) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where !encodeSlash:
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes `%XX` escapes; a `%` not followed by two hex digits stays a literal `%`.
    static func percentDecode(_ text: some StringProtocol) -> [UInt8] {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hexValue(bytes[index + 1]),
                let low = hexValue(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }
}
