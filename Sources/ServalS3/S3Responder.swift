import Foundation
public import Hummingbird
import HTTPTypes
import Logging
import NIOCore
public import ServalAuth
import ServalCore
public import ServalObjects
import Synchronization

/// Per-request data of the S3 frontend.
public struct S3RequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The id returned as `x-amz-request-id` and logged as `request_id`.
    public let requestID: String
    /// For a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` upload, the verifier of its chunk signatures.
    var chunkSignatures: SigV4ChunkVerifier?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        requestID = S3RequestIDs.next()
        logger[metadataKey: "request_id"] = .string(requestID)
    }

    /// XML request bodies (CompleteMultipartUpload, Delete, Tagging, AccessControlPolicy) are small; object bodies are
    /// streamed, not collected.
    public var maxUploadSize: Int { 2 << 20 }
}

/// Unique request ids in S3's style: 16 uppercase hex digits.
enum S3RequestIDs {
    private static let prefix = UInt64(UInt32.random(in: 0...UInt32.max)) << 32
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let value = prefix | (counter.add(1, ordering: .relaxed).newValue & 0xFFFF_FFFF)
        let hex = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 16 - hex.count)) + hex
    }
}

/// Serves the S3 REST API (path-style) over an ``ServalObjects/ObjectStore``.
public struct S3Responder: HTTPResponder {
    public typealias Context = S3RequestContext

    let store: any ObjectStore
    /// Checks every request's SigV4 signature (header or presigned URL); `nil` when authentication is off.
    let authenticator: RequestAuthenticator?

    /// Creates a responder over `store`; with an `authenticator`, every request must be signed with an access key
    /// whose role may read (GET, HEAD) or write (everything else) objects.
    public init(store: any ObjectStore, authenticator: RequestAuthenticator? = nil) {
        self.store = store
        self.authenticator = authenticator
    }

    /// What a request addresses: the bucket and key from the path, and the query.
    struct Target {
        var bucket: String
        var key: String
        var query: [String: String]
        /// The path, for `<Resource>` in errors.
        var resource: String
    }

    public func respond(to incoming: Request, context incomingContext: S3RequestContext) async throws -> Response {
        var request = incoming
        var context = incomingContext
        let target = Self.target(of: request)
        do {
            if let authenticator {
                try await S3Authentication.check(&request, context: &context, authenticator: authenticator)
            }
            return try await route(request, target, context: context)
        } catch {
            let s3Error: S3Error
            switch error {
            case let error as S3Error: s3Error = error
            case let error as AuthenticationFailure:
                context.logger.notice("Request refused: not authenticated", metadata: ["reason": "\(error)"])
                s3Error = S3Error(error.s3Error)
            case let error as AccessDenied:
                context.logger.notice("Request refused: role not permitted", metadata: ["action": "\(error.action.rawValue)"])
                s3Error = S3Error(error.s3Error)
            case let error as ObjectStoreError:
                s3Error = S3Error(error)
                if case .io(let detail) = error { context.logger.error("Object store failure: \(detail)") }
            case let error as ServalError: s3Error = S3Error(error)
            case let error as AWSChunkedDecoder.DecodingError:
                s3Error = S3Error("IncompleteBody", .badRequest, "The aws-chunked body is not valid: \(error).")
            case let error as S3XML.MalformedXML:
                s3Error = S3Error(
                    "MalformedXML", .badRequest,
                    "The XML you provided was not well-formed or did not validate against our published schema: \(error.reason).")
            default:
                context.logger.error("S3 request failed: \(error)")
                s3Error = .internalError
            }
            return Self.errorResponse(s3Error, resource: target.resource, requestID: context.requestID, method: request.method)
        }
    }

    // MARK: Routing

    private func route(_ request: Request, _ target: Target, context: S3RequestContext) async throws -> Response {
        let query = target.query
        if target.bucket.isEmpty {
            guard request.method == .get else { throw S3Error("MethodNotAllowed", .methodNotAllowed, "Only GET is allowed on /.") }
            return try await listBuckets(context)
        }
        if target.key.isEmpty {
            try checkBucketName(target.bucket)
            switch request.method {
            case .put:
                if let resource = Self.unsupportedSubresource(query) { throw S3Error.notImplemented("PUT ?\(resource)") }
                return try await createBucket(target.bucket, context)
            case .head:
                guard try await store.bucketExists(target.bucket) else { throw ObjectStoreError.noSuchBucket(target.bucket) }
                return Self.response(.ok, context, headers: [.init("x-amz-bucket-region")!: "us-east-1"])
            case .delete:
                if let resource = Self.unsupportedSubresource(query) { throw S3Error.notImplemented("DELETE ?\(resource)") }
                try await store.deleteBucket(target.bucket)
                return Self.response(.noContent, context)
            case .get:
                if query["location"] != nil { return try await bucketLocation(target.bucket, context) }
                if let resource = Self.unsupportedSubresource(query) { throw S3Error.notImplemented("GET ?\(resource)") }
                return try await listObjects(target.bucket, query: query, context)
            case .post where query["delete"] != nil:
                return try await deleteObjects(target.bucket, request, context)
            default:
                throw S3Error("MethodNotAllowed", .methodNotAllowed, "\(request.method) is not allowed on a bucket.")
            }
        }
        let location = try objectLocation(target)
        if let versionID = query["versionId"], versionID != "null" {
            // "null" is the id S3 gives the only version of an object in a bucket without versioning.
            throw S3Error.notImplemented("Object versions (?versionId)")
        }
        if let response = try await objectSubresource(location, query: query, request, context) { return response }
        let copySource = request.headers[.init("x-amz-copy-source")!]
        switch request.method {
        case .put:
            switch (query["partNumber"], query["uploadId"]) {
            case (let part?, let uploadID?):
                guard let copySource else { return try await uploadPart(location, part: part, uploadID: uploadID, request, context) }
                return try await uploadPartCopy(location, part: part, uploadID: uploadID, source: copySource, request, context)
            case (nil, nil):
                guard let copySource else { return try await putObject(location, request, context) }
                return try await copyObject(location, source: copySource, request, context)
            default:
                throw S3Error.invalidArgument("An upload of a part needs both partNumber and uploadId.")
            }
        case .get, .head:
            if query["uploadId"] != nil { throw S3Error.notImplemented("ListParts") }
            return try await getObject(location, query: query, request, context, head: request.method == .head)
        case .delete:
            if let uploadID = query["uploadId"] {
                try await store.abortMultipartUpload(location, uploadID: uploadID)
            } else {
                try await store.delete(location)
            }
            return Self.response(.noContent, context)
        case .post:
            if query["uploads"] != nil { return try await createMultipartUpload(location, request, context) }
            if let uploadID = query["uploadId"] {
                return try await completeMultipartUpload(location, uploadID: uploadID, request, context)
            }
            throw S3Error("InvalidRequest", .badRequest, "POST on an object needs ?uploads or ?uploadId.")
        default:
            throw S3Error("MethodNotAllowed", .methodNotAllowed, "\(request.method) is not allowed on an object.")
        }
    }

    /// Sub-resources S3 has on buckets and Serval does not serve (answering them as listings would mislead clients).
    private static func unsupportedSubresource(_ query: [String: String]) -> String? {
        bucketSubresources.first { query[$0] != nil }
    }

    /// The bucket sub-resources S3 defines (botocore's `s3` model) besides `?location`, `?delete` and `?list-type`,
    /// which Serval serves.
    static let bucketSubresources = [
        "abac", "accelerate", "acl", "analytics", "cors", "encryption", "intelligent-tiering", "inventory", "lifecycle",
        "logging", "metadataConfiguration", "metadataInventoryTable", "metadataJournalTable", "metadataTable", "metrics",
        "notification", "object-lock", "ownershipControls", "policy", "policyStatus", "publicAccessBlock", "replication",
        "requestPayment", "session", "tagging", "uploads", "versioning", "versions", "website",
    ]

    private func checkBucketName(_ bucket: String) throws {
        do {
            try ObjectLocation.validate(bucket: bucket)
        } catch {
            throw S3Error("InvalidBucketName", .badRequest, error.message)
        }
    }

    func objectLocation(_ target: Target) throws -> ObjectLocation {
        try checkBucketName(target.bucket)
        if target.key.utf8.count > 1024 {
            throw S3Error("KeyTooLongError", .badRequest, "Your key is too long: keys are at most 1024 bytes.")
        }
        do {
            return try ObjectLocation(bucket: target.bucket, key: target.key)
        } catch {
            throw S3Error.invalidArgument(error.message)
        }
    }

    // MARK: Buckets

    private func listBuckets(_ context: S3RequestContext) async throws -> Response {
        var xml = S3XML.Writer()
        xml.openRoot("ListAllMyBucketsResult")
        xml.open("Owner")
        xml.element("ID", Self.ownerID)
        xml.element("DisplayName", Self.ownerID)
        xml.close("Owner")
        xml.open("Buckets")
        for bucket in try await store.listBuckets() {
            xml.open("Bucket")
            xml.element("Name", bucket.name)
            xml.element("CreationDate", HTTPDate.iso8601(bucket.creationDate))
            xml.close("Bucket")
        }
        xml.close("Buckets")
        xml.close("ListAllMyBucketsResult")
        return Self.xmlResponse(xml, context)
    }

    private func createBucket(_ bucket: String, _ context: S3RequestContext) async throws -> Response {
        guard try await store.createBucket(bucket) else {
            throw S3Error(
                "BucketAlreadyOwnedByYou", .conflict,
                "Your previous request to create the named bucket succeeded and you already own it.")
        }
        return Self.response(.ok, context, headers: [.location: "/" + bucket])
    }

    private func bucketLocation(_ bucket: String, _ context: S3RequestContext) async throws -> Response {
        guard try await store.bucketExists(bucket) else { throw ObjectStoreError.noSuchBucket(bucket) }
        var xml = S3XML.Writer()
        // An empty LocationConstraint means us-east-1, as S3 answers for it.
        xml.root("LocationConstraint", text: "")
        return Self.xmlResponse(xml, context)
    }

    // MARK: Listing

    private func listObjects(_ bucket: String, query: [String: String], _ context: S3RequestContext) async throws -> Response {
        let version2 = query["list-type"] == "2"
        var maxKeys = 1000
        if let text = query["max-keys"] {
            guard let value = Int(text), value >= 0 else {
                throw S3Error.invalidArgument("max-keys must be a non-negative integer.")
            }
            maxKeys = min(value, 1000)
        }
        let urlEncoded = query["encoding-type"] == "url"
        if let encoding = query["encoding-type"], encoding != "url" {
            throw S3Error.invalidArgument("Invalid Encoding Method specified in Request: \(encoding).")
        }
        let delimiter = query["delimiter"].flatMap { $0.isEmpty ? nil : $0 }
        let prefix = query["prefix"] ?? ""
        let request = ObjectListRequest(
            bucket: bucket, prefix: prefix, delimiter: delimiter,
            startAfter: version2 ? query["start-after"] : query["marker"],
            continuationToken: version2 ? query["continuation-token"] : nil, maxKeys: maxKeys)
        let listing = try await store.list(request)
        func encoded(_ text: String) -> String { urlEncoded ? Self.urlEncode(text) : text }

        var xml = S3XML.Writer()
        xml.openRoot("ListBucketResult")
        xml.element("Name", bucket)
        xml.element("Prefix", encoded(prefix))
        if let delimiter { xml.element("Delimiter", encoded(delimiter)) }
        xml.element("MaxKeys", String(maxKeys))
        if urlEncoded { xml.element("EncodingType", "url") }
        xml.element("IsTruncated", listing.isTruncated ? "true" : "false")
        if version2 {
            xml.element("KeyCount", String(listing.objects.count + listing.commonPrefixes.count))
            if let token = query["continuation-token"] { xml.element("ContinuationToken", token) }
            if let token = listing.nextContinuationToken { xml.element("NextContinuationToken", token) }
            if let startAfter = query["start-after"] { xml.element("StartAfter", encoded(startAfter)) }
        } else {
            xml.element("Marker", encoded(query["marker"] ?? ""))
            if let next = listing.lastEntry, delimiter != nil { xml.element("NextMarker", encoded(next)) }
        }
        for object in listing.objects {
            xml.open("Contents")
            xml.element("Key", encoded(object.location.key))
            xml.element("LastModified", HTTPDate.iso8601(object.lastModified))
            xml.element("ETag", "\"\(object.etag)\"")
            xml.element("Size", String(object.size))
            xml.element("StorageClass", "STANDARD")
            xml.close("Contents")
        }
        for prefix in listing.commonPrefixes {
            xml.open("CommonPrefixes")
            xml.element("Prefix", encoded(prefix))
            xml.close("CommonPrefixes")
        }
        xml.close("ListBucketResult")
        return Self.xmlResponse(xml, context)
    }

    // MARK: Objects

    /// The length and the decoded body of an upload, with `aws-chunked` framing removed when it is used.
    private func storeBody<Result: Sendable>(
        _ request: Request, _ context: S3RequestContext,
        _ store: (_ length: Int64?, _ md5: [UInt8]?, _ body: any AsyncSequence<ByteBuffer, any Error> & Sendable) async throws -> Result
    ) async throws -> Result {
        let headers = request.headers
        var md5: [UInt8]?
        if let text = headers[.init("Content-MD5")!] {
            guard let data = Data(base64Encoded: text), data.count == 16 else {
                throw S3Error("InvalidDigest", .badRequest, "The Content-MD5 you specified was invalid.")
            }
            md5 = Array(data)
        }
        let raw = TruncatedBodyMapping(base: request.body, announced: headers[.contentLength].flatMap { Int64($0) })
        let chunked =
            headers[.init("x-amz-content-sha256")!]?.hasPrefix("STREAMING-") == true
            || headers[.contentEncoding]?.contains("aws-chunked") == true
        if chunked {
            let length = headers[.init("x-amz-decoded-content-length")!].flatMap { Int64($0) }
            return try await store(length, md5, AWSChunkedBody(raw, signatures: context.chunkSignatures))
        }
        let length = headers[.contentLength].flatMap { Int64($0) }
        if length == nil, headers[.transferEncoding] == nil {
            throw S3Error("MissingContentLength", .init(code: 411), "You must provide the Content-Length HTTP header.")
        }
        return try await store(length, md5, raw)
    }

    /// User metadata from `x-amz-meta-*` headers.
    private static func metadata(_ headers: HTTPFields) -> [String: String] {
        var metadata: [String: String] = [:]
        for field in headers where field.name.canonicalName.hasPrefix("x-amz-meta-") {
            metadata[String(field.name.canonicalName.dropFirst("x-amz-meta-".count))] = field.value
        }
        return metadata
    }

    /// The attributes of a new object from its request's headers: `Content-Type`, `x-amz-meta-*` and `x-amz-tagging`
    /// (a canned ACL other than `private` is refused).
    static func attributes(_ headers: HTTPFields) throws -> ObjectAttributes {
        if let canned = headers[.init("x-amz-acl")!] { try checkCannedACL(canned) }
        return ObjectAttributes(
            contentType: headers[.contentType], metadata: metadata(headers),
            tags: try headers[.init("x-amz-tagging")!].map(S3Tagging.parse(header:)) ?? [])
    }

    /// The condition of a conditional write: `If-None-Match: *` or `If-Match: <etag>`.
    static func writeCondition(_ headers: HTTPFields) throws(S3Error) -> WriteCondition? {
        switch (headers[.ifNoneMatch], headers[.ifMatch]) {
        case (nil, nil): return nil
        case ("*"?, nil): return .absent
        case (_?, nil):
            throw S3Error.notImplemented("If-None-Match with a value other than * on a write")
        case (nil, let etag?):
            let trimmed = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
            guard !trimmed.isEmpty, trimmed != "*", !trimmed.contains(",") else {
                throw S3Error.notImplemented("If-Match with a value other than one ETag on a write")
            }
            return .matching(etag: trimmed)
        case (_?, _?):
            throw S3Error("InvalidRequest", .badRequest, "A write can be conditional on If-Match or on If-None-Match, not both.")
        }
    }

    private func putObject(_ location: ObjectLocation, _ request: Request, _ context: S3RequestContext) async throws -> Response {
        let attributes = try Self.attributes(request.headers)
        let condition = try Self.writeCondition(request.headers)
        let info = try await storeBody(request, context) { length, md5, body in
            try await store.put(
                location, attributes: attributes, body: body, expectedLength: length, expectedMD5: md5, condition: condition)
        }
        return Self.response(.ok, context, headers: [.eTag: "\"\(info.etag)\""])
    }

    /// The `response-*` query parameters of GetObject and HeadObject, and the headers they set.
    static let responseOverrides: [(parameter: String, header: HTTPField.Name)] = [
        ("response-content-type", .contentType), ("response-content-language", .contentLanguage),
        ("response-expires", .expires), ("response-cache-control", .cacheControl),
        ("response-content-disposition", .contentDisposition), ("response-content-encoding", .contentEncoding),
    ]

    private func getObject(
        _ location: ObjectLocation, query: [String: String], _ request: Request, _ context: S3RequestContext, head: Bool
    ) async throws -> Response {
        // Serval answers part 1 of an object that was not uploaded in parts (all of it), as S3 does; the parts of a
        // multipart object are not served one by one.
        if let part = query["partNumber"], part != "1" {
            throw S3Error.notImplemented("GetObject of one part (?partNumber) of a multipart object")
        }
        let range = query["partNumber"] != nil ? nil : request.headers[.range].flatMap { S3Range(header: $0) }
        let reader = try await store.read(location) { size in
            guard let range else { return nil }
            guard let selected = range.resolve(size: size) else { throw ObjectStoreError.invalidRange(size: size) }
            return selected
        }
        let info = reader.info
        var headers: HTTPFields = [
            .contentType: info.contentType,
            .eTag: "\"\(info.etag)\"",
            .lastModified: HTTPDate.rfc1123(info.lastModified),
            .acceptRanges: "bytes",
            .contentLength: String(reader.length),
        ]
        for (name, value) in info.metadata.sorted(by: { $0.key < $1.key }) {
            if let field = HTTPField.Name("x-amz-meta-" + name) { headers[field] = value }
        }
        if !info.tags.isEmpty { headers[.init("x-amz-tagging-count")!] = String(info.tags.count) }
        if query["partNumber"] != nil {
            guard info.partSizes.isEmpty, !info.etag.contains("-") else {
                throw S3Error.notImplemented("GetObject of one part (?partNumber) of a multipart object")
            }
            headers[.init("x-amz-mp-parts-count")!] = "1"
        }
        for (parameter, header) in Self.responseOverrides {
            if let value = query[parameter] { headers[header] = value }
        }
        var status = HTTPResponse.Status.ok
        if let selected = reader.range {
            status = .partialContent
            headers[.contentRange] = "bytes \(selected.lowerBound)-\(selected.upperBound)/\(info.size)"
        }
        headers[.init("x-amz-request-id")!] = context.requestID
        if head { return Response(status: status, headers: headers, body: ResponseBody()) }
        let body = reader.body
        return Response(
            status: status, headers: headers,
            body: ResponseBody(contentLength: Int(reader.length)) { writer in
                for try await chunk in body { try await writer.write(chunk) }
                try await writer.finish(nil)
            })
    }

    private func deleteObjects(_ bucket: String, _ request: Request, _ context: S3RequestContext) async throws -> Response {
        let body = try DeleteObjectsBody(try await request.body.collect(upTo: context.maxUploadSize))
        var xml = S3XML.Writer()
        xml.openRoot("DeleteResult")
        for key in body.keys {
            do {
                let location = try objectLocation(Target(bucket: bucket, key: key, query: [:], resource: ""))
                try await store.delete(location)
                if !body.quiet {
                    xml.open("Deleted")
                    xml.element("Key", key)
                    xml.close("Deleted")
                }
            } catch {
                let s3Error = (error as? S3Error) ?? (error as? ObjectStoreError).map(S3Error.init) ?? .internalError
                xml.open("Error")
                xml.element("Key", key)
                xml.element("Code", s3Error.code)
                xml.element("Message", s3Error.message)
                xml.close("Error")
            }
        }
        xml.close("DeleteResult")
        return Self.xmlResponse(xml, context)
    }

    // MARK: Multipart uploads

    private func createMultipartUpload(_ location: ObjectLocation, _ request: Request, _ context: S3RequestContext) async throws -> Response {
        let id = try await store.createMultipartUpload(location, attributes: try Self.attributes(request.headers))
        var xml = S3XML.Writer()
        xml.openRoot("InitiateMultipartUploadResult")
        xml.element("Bucket", location.bucket)
        xml.element("Key", location.key)
        xml.element("UploadId", id)
        xml.close("InitiateMultipartUploadResult")
        return Self.xmlResponse(xml, context)
    }

    private func uploadPart(
        _ location: ObjectLocation, part: String, uploadID: String, _ request: Request, _ context: S3RequestContext
    ) async throws -> Response {
        let number = try Self.partNumber(part)
        let info = try await storeBody(request, context) { length, md5, body in
            try await store.uploadPart(location, uploadID: uploadID, number: number, body: body, expectedLength: length, expectedMD5: md5)
        }
        return Self.response(.ok, context, headers: [.eTag: "\"\(info.etag)\""])
    }

    static func partNumber(_ text: String) throws(S3Error) -> Int {
        guard let number = Int(text), (1...10_000).contains(number) else {
            throw S3Error.invalidArgument("Part number must be an integer between 1 and 10000, inclusive.")
        }
        return number
    }

    private func completeMultipartUpload(
        _ location: ObjectLocation, uploadID: String, _ request: Request, _ context: S3RequestContext
    ) async throws -> Response {
        let condition = try Self.writeCondition(request.headers)
        let body = try CompleteMultipartUploadBody(try await request.body.collect(upTo: context.maxUploadSize))
        let info = try await store.completeMultipartUpload(
            location, uploadID: uploadID, parts: body.parts.map { ($0.number, $0.etag) }, condition: condition)
        var xml = S3XML.Writer()
        xml.openRoot("CompleteMultipartUploadResult")
        xml.element("Location", "/\(location.bucket)/\(location.key)")
        xml.element("Bucket", location.bucket)
        xml.element("Key", location.key)
        xml.element("ETag", "\"\(info.etag)\"")
        xml.close("CompleteMultipartUploadResult")
        return Self.xmlResponse(xml, context)
    }

    // MARK: Responses

    static func response(_ status: HTTPResponse.Status, _ context: S3RequestContext, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.init("x-amz-request-id")!] = context.requestID
        return Response(status: status, headers: headers, body: ResponseBody())
    }

    static func xmlResponse(_ xml: S3XML.Writer, _ context: S3RequestContext) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "application/xml", .init("x-amz-request-id")!: context.requestID],
            body: ResponseBody(byteBuffer: xml.buffer))
    }

    static func errorResponse(_ error: S3Error, resource: String, requestID: String, method: HTTPRequest.Method) -> Response {
        var headers: HTTPFields = [.init("x-amz-request-id")!: requestID]
        if method == .head {
            // HEAD answers carry no body; clients read the status.
            return Response(status: error.status, headers: headers, body: ResponseBody())
        }
        var xml = S3XML.Writer()
        xml.open("Error")
        xml.element("Code", error.code)
        xml.element("Message", error.message)
        xml.element("Resource", resource)
        xml.element("RequestId", requestID)
        xml.close("Error")
        headers[.contentType] = "application/xml"
        return Response(status: error.status, headers: headers, body: ResponseBody(byteBuffer: xml.buffer))
    }

    // MARK: Parsing

    /// Splits the raw path into bucket and key (percent-decoded) and decodes the query.
    static func target(of request: Request) -> Target {
        let path = request.uri.path
        var rest = Substring(path)
        if rest.first == "/" { rest.removeFirst() }
        let bucket = rest.prefix { $0 != "/" }
        let key = rest.dropFirst(bucket.count + 1)
        var query: [String: String] = [:]
        for pair in (request.uri.query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecode(parts[0])
            query[name] = parts.count > 1 ? percentDecode(parts[1]) : ""
        }
        return Target(bucket: percentDecode(bucket), key: percentDecode(key), query: query, resource: path)
    }

    static func percentDecode(_ text: Substring) -> String {
        guard text.contains("%") else { return String(text) }
        return text.removingPercentEncoding ?? String(text)
    }

    /// Encodes a key for `encoding-type=url` listings as S3 does (everything but unreserved characters and `/`).
    static func urlEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// A request body whose transport failures — the client closing its side before the announced `Content-Length`
/// arrived, which the HTTP parser reports as its own error — become S3's 400 `IncompleteBody`; a failed signature
/// check of the body stays what it is.
struct TruncatedBodyMapping<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer

    let base: Base
    let announced: Int64?

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let announced: Int64?
        var received: Int64 = 0

        mutating func next() async throws -> ByteBuffer? {
            do {
                let chunk = try await base.next()
                received += Int64(chunk?.readableBytes ?? 0)
                return chunk
            } catch let error as AuthenticationFailure {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                let expected = announced.map { " of the \($0) announced" } ?? ""
                throw S3Error("IncompleteBody", .badRequest, "The request body ended after \(received)\(expected) bytes: the connection closed early.")
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), announced: announced)
    }
}
