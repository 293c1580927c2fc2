import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import ServalCore
import ServalObjects

/// The sub-resources of objects (`/bucket/key?tagging` and the like): each is answered on its own and never falls
/// through to a read, write or delete of the object's bytes.
extension S3Responder {
    /// The object sub-resources S3 defines (botocore's `s3` model); `uploads`, `uploadId`, `partNumber` and
    /// `versionId` are handled with the object operations.
    static let objectSubresources = [
        "acl", "attributes", "encryption", "legal-hold", "renameObject", "restore", "retention", "select", "select-type",
        "tagging", "torrent",
    ]

    /// Answers a request for an object sub-resource (or for a bucket sub-resource sent to an object); `nil` when the
    /// request names none and is an object operation.
    func objectSubresource(
        _ location: ObjectLocation, query: [String: String], _ request: Request, _ context: S3RequestContext
    ) async throws -> Response? {
        let method = request.method
        guard let name = (Self.objectSubresources + Self.bucketSubresources.filter { $0 != "uploads" }).first(where: { query[$0] != nil })
        else {
            if query["uploads"] != nil, method != .post { throw Self.methodNotAllowed(method, "uploads") }
            return nil
        }
        switch (name, method) {
        case ("tagging", .get):
            return try await getTagging(location, context)
        case ("tagging", .put):
            let tags = try S3Tagging.parse(body: try await request.body.collect(upTo: context.maxUploadSize))
            try await store.setTags(tags, of: location)
            return Self.response(.ok, context)
        case ("tagging", .delete):
            try await store.setTags([], of: location)
            return Self.response(.noContent, context)
        case ("acl", .get):
            guard try await store.head(location) != nil else { throw ObjectStoreError.noSuchKey(location) }
            return Self.xmlResponse(Self.ownerFullControlACL(), context)
        case ("acl", .put):
            return try await putACL(location, request, context)
        case ("attributes", .get):
            return try await getAttributes(location, request, context)
        case ("retention", .get), ("retention", .put), ("legal-hold", .get), ("legal-hold", .put):
            guard try await store.bucketExists(location.bucket) else { throw ObjectStoreError.noSuchBucket(location.bucket) }
            throw S3Error("InvalidRequest", .badRequest, "Bucket is missing Object Lock Configuration")
        case ("tagging", _), ("acl", _), ("attributes", _), ("retention", _), ("legal-hold", _):
            throw Self.methodNotAllowed(method, name)
        default:
            throw S3Error.notImplemented("\(method) ?\(name) on an object")
        }
    }

    static func methodNotAllowed(_ method: HTTPRequest.Method, _ subresource: String) -> S3Error {
        S3Error("MethodNotAllowed", .methodNotAllowed, "The specified method (\(method)) is not allowed against ?\(subresource) of an object.")
    }

    // MARK: Tagging

    private func getTagging(_ location: ObjectLocation, _ context: S3RequestContext) async throws -> Response {
        guard let info = try await store.head(location) else { throw ObjectStoreError.noSuchKey(location) }
        return Self.xmlResponse(S3Tagging.document(info.tags), context)
    }

    // MARK: ACL

    /// The only ACL Serval's store has: its one owner has full control.
    static func ownerFullControlACL() -> S3XML.Writer {
        var xml = S3XML.Writer()
        xml.openRoot("AccessControlPolicy")
        xml.open("Owner")
        xml.element("ID", ownerID)
        xml.element("DisplayName", ownerID)
        xml.close("Owner")
        xml.open("AccessControlList")
        xml.open("Grant")
        xml.open("Grantee", attributes: [("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"), ("xsi:type", "CanonicalUser")])
        xml.element("ID", ownerID)
        xml.element("DisplayName", ownerID)
        xml.close("Grantee")
        xml.element("Permission", "FULL_CONTROL")
        xml.close("Grant")
        xml.close("AccessControlList")
        xml.close("AccessControlPolicy")
        return xml
    }

    /// The canonical id of the store's one owner, in ACLs and listings.
    static let ownerID = "serval"

    /// Accepts what leaves the ACL as it is — the canned `private` (or `bucket-owner-full-control`, the same for a
    /// store with one owner), a full-control grant to the owner, or that ACL as a body — and refuses anything else
    /// with 501: Serval's objects are readable by every key whose role reads objects, and by nobody else.
    private func putACL(_ location: ObjectLocation, _ request: Request, _ context: S3RequestContext) async throws -> Response {
        let headers = request.headers
        let grants = ["read", "write", "read-acp", "write-acp", "full-control"].compactMap { name in
            headers[HTTPField.Name("x-amz-grant-" + name)!].map { (name, $0) }
        }
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        if let canned = headers[.init("x-amz-acl")!] {
            guard grants.isEmpty, body.readableBytes == 0 else {
                throw S3Error("InvalidRequest", .badRequest, "Specifying both Canned ACLs and Header Grants or a body is not allowed.")
            }
            try Self.checkCannedACL(canned)
        } else if !grants.isEmpty {
            guard grants.count == 1, grants[0].0 == "full-control", grants[0].1 == "id=\"\(Self.ownerID)\"" || grants[0].1 == "id=\(Self.ownerID)" else {
                throw S3Error.notImplemented("Grants other than full control to the owner (id=\"\(Self.ownerID)\")")
            }
        } else if body.readableBytes > 0 {
            try Self.checkOwnerFullControl(try S3XML.parse(body))
        } else {
            throw S3Error("MissingSecurityHeader", .badRequest, "Your request was missing a required header: x-amz-acl, an x-amz-grant-* header or an AccessControlPolicy body.")
        }
        guard try await store.head(location) != nil else { throw ObjectStoreError.noSuchKey(location) }
        return Self.response(.ok, context)
    }

    /// Refuses a canned ACL other than those that leave the owner alone with full control.
    static func checkCannedACL(_ canned: String) throws(S3Error) {
        switch canned {
        case "private", "bucket-owner-full-control": return
        case "public-read", "public-read-write", "authenticated-read", "aws-exec-read", "bucket-owner-read", "log-delivery-write":
            throw S3Error.notImplemented("The canned ACL \(canned) (Serval's objects have one ACL: private)")
        default:
            throw S3Error.invalidArgument("\(canned) is not a canned ACL.")
        }
    }

    /// Accepts an `AccessControlPolicy` body only when it grants full control to the owner and nothing else.
    private static func checkOwnerFullControl(_ policy: S3XML.Element) throws {
        guard policy.name == "AccessControlPolicy", let list = policy.child("AccessControlList") else {
            throw S3XML.MalformedXML(reason: "expected <AccessControlPolicy><AccessControlList>…")
        }
        let grants = list.children.filter { $0.name == "Grant" }
        guard grants.count == 1, grants[0].child("Permission")?.text == "FULL_CONTROL",
            grants[0].child("Grantee")?.child("ID")?.text == ownerID
        else {
            throw S3Error.notImplemented("ACLs other than full control to the owner (\(ownerID))")
        }
    }

    // MARK: Attributes

    /// The attributes `GetObjectAttributes` can ask for.
    static let objectAttributes = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]

    private func getAttributes(_ location: ObjectLocation, _ request: Request, _ context: S3RequestContext) async throws -> Response {
        let headers = request.headers
        let requested = Set(
            (headers[.init("x-amz-object-attributes")!] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        guard !requested.isEmpty else {
            throw S3Error.invalidArgument("The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty.")
        }
        if let unknown = requested.first(where: { !Self.objectAttributes.contains($0) }) {
            throw S3Error.invalidArgument("Invalid attribute name specified: \(unknown).")
        }
        var maxParts = 1000
        if let text = headers[.init("x-amz-max-parts")!] {
            guard let value = Int(text), value >= 0 else { throw S3Error.invalidArgument("x-amz-max-parts must be a non-negative integer.") }
            maxParts = min(value, 1000)
        }
        var marker = 0
        if let text = headers[.init("x-amz-part-number-marker")!] {
            guard let value = Int(text), value >= 0 else { throw S3Error.invalidArgument("x-amz-part-number-marker must be a non-negative integer.") }
            marker = value
        }
        guard let info = try await store.head(location) else { throw ObjectStoreError.noSuchKey(location) }
        var xml = S3XML.Writer()
        xml.openRoot("GetObjectAttributesResponse")
        // Here S3 writes the ETag without quotes.
        if requested.contains("ETag") { xml.element("ETag", info.etag) }
        // Serval keeps no checksums but the MD5 in the ETag, so "Checksum" adds nothing, as in S3 for an object
        // uploaded without one.
        if requested.contains("ObjectParts"), !info.partSizes.isEmpty {
            let parts = Array(info.partSizes.enumerated().dropFirst(marker).prefix(maxParts))
            xml.open("ObjectParts")
            xml.element("PartsCount", String(info.partSizes.count))
            xml.element("PartNumberMarker", String(marker))
            xml.element("NextPartNumberMarker", String(parts.last.map { $0.offset + 1 } ?? marker))
            xml.element("MaxParts", String(maxParts))
            xml.element("IsTruncated", marker + parts.count < info.partSizes.count ? "true" : "false")
            for (index, size) in parts {
                xml.open("Part")
                xml.element("PartNumber", String(index + 1))
                xml.element("Size", String(size))
                xml.close("Part")
            }
            xml.close("ObjectParts")
        }
        if requested.contains("StorageClass") { xml.element("StorageClass", "STANDARD") }
        if requested.contains("ObjectSize") { xml.element("ObjectSize", String(info.size)) }
        xml.close("GetObjectAttributesResponse")
        var response = Self.xmlResponse(xml, context)
        response.headers[.lastModified] = HTTPDate.rfc1123(info.lastModified)
        return response
    }
}
