public import AsyncHTTPClient
import Foundation
public import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import ServalAuth
public import ServalCore

/// A small client of Serval's S3-compatible object API (path-style), for the CLI and for commands that upload
/// inputs (`serval async submit --file`). Bodies stream: files are never read whole. With an access key, every
/// request is signed with AWS Signature Version 4 (signing name `s3`, bodies `UNSIGNED-PAYLOAD`).
public struct ObjectClient: Sendable {
    /// The S3 API's base URL, e.g. `http://127.0.0.1:9000`.
    public let baseURL: String
    let http: HTTPClient
    let signer: SigV4Signer?

    /// Creates a client; with `apiKey` (`ACCESS_KEY_ID:SECRET`) requests are signed with it.
    public init(baseURL: String, apiKey: String? = nil, region: String = "us-east-1", httpClient: HTTPClient = .shared) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.http = httpClient
        self.signer = apiKey.flatMap { key in
            guard let colon = key.firstIndex(of: ":") else { return nil }
            return SigV4Signer(
                accessKeyID: String(key[..<colon]), secret: AccessKeySecret(String(key[key.index(after: colon)...])),
                region: region, service: "s3")
        }
    }

    /// An object in a listing.
    public struct Object: Sendable, Hashable {
        /// The key.
        public var key: String
        /// The size in bytes.
        public var size: Int64
        /// When it was written, as the server wrote it (ISO 8601).
        public var lastModified: String
        /// The ETag, without quotes.
        public var etag: String
    }

    /// A listing: objects and, with a delimiter, common prefixes.
    public struct Listing: Sendable, Hashable {
        /// The objects, in key order.
        public var objects: [Object]
        /// The common prefixes, in order.
        public var commonPrefixes: [String]
    }

    // MARK: Buckets

    /// Every bucket's name.
    public func buckets() async throws -> [String] {
        let response = try await send(.GET, "/")
        return XMLText.elements("Name", in: try await Self.text(response)).map(XMLText.unescape)
    }

    /// Whether the bucket exists.
    public func bucketExists(_ bucket: String) async throws -> Bool {
        let response = try await send(.HEAD, "/" + bucket, expectError: true)
        if response.status == .notFound { return false }
        try await Self.check(response)
        return true
    }

    /// Creates a bucket; returns `false` when it existed already.
    @discardableResult
    public func createBucket(_ bucket: String) async throws -> Bool {
        let response = try await send(.PUT, "/" + bucket, expectError: true)
        if response.status == .conflict {
            let text = try await Self.text(response)
            if text.contains("<Code>BucketAlreadyOwnedByYou</Code>") { return false }
            throw Self.error(response.status, text)
        }
        try await Self.check(response)
        return true
    }

    // MARK: Objects

    /// Uploads a file, streaming it, creating the bucket first if it does not exist; returns the ETag.
    @discardableResult
    public func put(file path: String, to location: ObjectLocation, contentType: String? = nil) async throws -> String {
        guard let file = FileHandle(forReadingAtPath: path),
            let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int64
        else { throw ServalError(.validationError, "Cannot read \(path).") }
        defer { try? file.close() }
        let chunks = AsyncStream<ByteBuffer> {
            guard let data = try? file.read(upToCount: 1 << 20), !data.isEmpty else { return nil }
            return ByteBuffer(data: data)
        }
        return try await put(.stream(chunks, length: .known(size)), to: location, contentType: contentType)
    }

    /// Uploads bytes held in memory, creating the bucket first if it does not exist; returns the ETag.
    @discardableResult
    public func put(_ bytes: ByteBuffer, to location: ObjectLocation, contentType: String? = nil) async throws -> String {
        try await put(.bytes(bytes), to: location, contentType: contentType)
    }

    private func put(_ body: HTTPClientRequest.Body, to location: ObjectLocation, contentType: String?) async throws -> String {
        if try await !bucketExists(location.bucket) { try await createBucket(location.bucket) }
        var headers = [("Content-Type", contentType ?? "application/octet-stream")]
        headers.append(("x-amz-content-sha256", "UNSIGNED-PAYLOAD"))
        let response = try await send(.PUT, Self.path(location), headers: headers, body: body)
        try await Self.check(response)
        return (response.headers.first(name: "ETag") ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    /// Downloads an object, handing its bytes to `consume` chunk by chunk.
    public func get(_ location: ObjectLocation, _ consume: (ByteBuffer) async throws -> Void) async throws {
        let response = try await send(.GET, Self.path(location), expectError: true)
        try await Self.check(response)
        for try await chunk in response.body { try await consume(chunk) }
    }

    /// Downloads an object into a file, streaming; the file appears complete or not at all.
    public func get(_ location: ObjectLocation, toFile path: String) async throws {
        let temporary = path + ".serval-download-" + UUID().uuidString.prefix(8)
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
            let file = FileHandle(forWritingAtPath: temporary)
        else { throw ServalError(.validationError, "Cannot write \(path).") }
        do {
            try await get(location) { chunk in try file.write(contentsOf: chunk.readableBytesView) }
            try file.close()
            if FileManager.default.fileExists(atPath: path) {
                _ = try FileManager.default.replaceItemAt(URL(fileURLWithPath: path), withItemAt: URL(fileURLWithPath: temporary))
            } else {
                try FileManager.default.moveItem(atPath: temporary, toPath: path)
            }
        } catch {
            try? file.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }

    /// Lists a bucket's objects under a prefix, following every page.
    public func list(bucket: String, prefix: String = "", delimiter: String? = nil) async throws -> Listing {
        var listing = Listing(objects: [], commonPrefixes: [])
        var token: String?
        repeat {
            var query = "list-type=2&prefix=\(Self.escape(prefix))"
            if let delimiter { query += "&delimiter=\(Self.escape(delimiter))" }
            if let token { query += "&continuation-token=\(Self.escape(token))" }
            let response = try await send(.GET, "/\(bucket)?\(query)")
            let text = try await Self.text(response)
            for contents in XMLText.elements("Contents", in: text) {
                listing.objects.append(
                    Object(
                        key: XMLText.unescape(XMLText.elements("Key", in: contents).first ?? ""),
                        size: Int64(XMLText.elements("Size", in: contents).first ?? "") ?? 0,
                        lastModified: String(XMLText.elements("LastModified", in: contents).first ?? ""),
                        etag: XMLText.unescape(XMLText.elements("ETag", in: contents).first ?? "")
                            .trimmingCharacters(in: CharacterSet(charactersIn: "\""))))
            }
            for common in XMLText.elements("CommonPrefixes", in: text) {
                listing.commonPrefixes.append(XMLText.unescape(XMLText.elements("Prefix", in: common).first ?? ""))
            }
            token = XMLText.elements("NextContinuationToken", in: text).first.map(XMLText.unescape)
        } while token != nil
        return listing
    }

    /// Deletes an object (no error when there is none).
    public func delete(_ location: ObjectLocation) async throws {
        try await Self.check(try await send(.DELETE, Self.path(location), expectError: true))
    }

    // MARK: HTTP

    private func send(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: HTTPClientRequest.Body? = nil,
        expectError: Bool = false
    ) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        for (name, value) in signed(method, path, headers) { request.headers.add(name: name, value: value) }
        request.body = body
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .hours(1))
        } catch {
            throw ServalError(
                .serviceUnavailable,
                "Cannot reach Serval's object API at \(baseURL) (\(error)); is `serval serve` running? Use --s3-url or SERVAL_S3_URL to point elsewhere.")
        }
        if !expectError { try await Self.check(response) }
        return response
    }

    /// `headers` with a SigV4 signature added when the client has a key: `host` and `x-amz-content-sha256`
    /// (`UNSIGNED-PAYLOAD`) are signed with them.
    private func signed(_ method: HTTPMethod, _ path: String, _ headers: [(String, String)]) -> [(String, String)] {
        guard let signer else { return headers }
        var fields = headers.map { (name: $0.0, value: $0.1) }
        if !fields.contains(where: { $0.name.lowercased() == "x-amz-content-sha256" }) {
            fields.append(("x-amz-content-sha256", "UNSIGNED-PAYLOAD"))
        }
        fields.append(("Host", Self.hostHeader(baseURL)))
        let rawPath = String(path.prefix { $0 != "?" })
        let rawQuery = path.firstIndex(of: "?").map { String(path[path.index(after: $0)...]) } ?? ""
        let now = Timestamp(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1000).rounded()))
        let signature = signer.sign(
            method: method.rawValue, path: rawPath, query: rawQuery, headers: fields, payloadHash: "UNSIGNED-PAYLOAD",
            date: now)
        return (fields + signature.headers).map { ($0.name, $0.value) }
    }

    /// The `Host` header for a base URL, as HTTP clients send it: the port only when it is not the scheme's default.
    static func hostHeader(_ baseURL: String) -> String {
        guard let components = URLComponents(string: baseURL), let host = components.host else { return baseURL }
        let bracketed = host.contains(":") ? "[\(host)]" : host
        guard let port = components.port else { return bracketed }
        let defaultPort = components.scheme == "https" ? 443 : 80
        return port == defaultPort ? bracketed : "\(bracketed):\(port)"
    }

    private static func check(_ response: HTTPClientResponse) async throws {
        guard (200..<300).contains(response.status.code) else {
            throw error(response.status, try await text(response))
        }
    }

    private static func error(_ status: HTTPResponseStatus, _ text: String) -> ServalError {
        let code = XMLText.elements("Code", in: text).first.map(String.init) ?? "HTTP \(status.code)"
        let message = XMLText.elements("Message", in: text).first.map(XMLText.unescape) ?? status.reasonPhrase
        let servalCode: ServalError.Code =
            switch status.code {
            case 404: .notFound
            case 409: .conflict
            case 400..<500: .validationError
            default: .internalFailure
            }
        return ServalError(servalCode, "\(code): \(message)")
    }

    private static func text(_ response: HTTPClientResponse) async throws -> String {
        String(buffer: try await response.body.collect(upTo: 64 << 20))
    }

    static func path(_ location: ObjectLocation) -> String {
        "/" + location.bucket + "/" + location.key.split(separator: "/").map { escape(String($0)) }.joined(separator: "/")
    }

    static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// Reads the few values the client needs out of S3's XML answers (flat elements, no attributes on them).
enum XMLText {
    /// The contents of every `<name>...</name>` in order (not nested in each other).
    static func elements(_ name: String, in text: some StringProtocol) -> [Substring] {
        var results: [Substring] = []
        let open = "<\(name)>"
        let close = "</\(name)>"
        var rest = Substring(text)
        while let start = rest.range(of: open), let end = rest[start.upperBound...].range(of: close) {
            results.append(rest[start.upperBound..<end.lowerBound])
            rest = rest[end.upperBound...]
        }
        return results
    }

    /// Decodes the predefined and numeric entities.
    static func unescape(_ text: Substring) -> String {
        guard text.contains("&") else { return String(text) }
        var result = ""
        var rest = text
        while let amp = rest.firstIndex(of: "&") {
            result += rest[..<amp]
            guard let semicolon = rest[amp...].firstIndex(of: ";") else { break }
            let entity = rest[rest.index(after: amp)..<semicolon]
            switch entity {
            case "amp": result += "&"
            case "lt": result += "<"
            case "gt": result += ">"
            case "quot": result += "\""
            case "apos": result += "'"
            default:
                let value = entity.hasPrefix("#x") ? UInt32(entity.dropFirst(2), radix: 16) : UInt32(entity.dropFirst(), radix: 10)
                if let value, let scalar = Unicode.Scalar(value) { result.unicodeScalars.append(scalar) }
            }
            rest = rest[rest.index(after: semicolon)...]
        }
        return result + rest
    }
}
