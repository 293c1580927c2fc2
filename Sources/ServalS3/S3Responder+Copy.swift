import Foundation
import Hummingbird
import HTTPTypes
import ServalCore
import ServalObjects

/// CopyObject and UploadPartCopy: `PUT` with `x-amz-copy-source`. The bytes are copied on disk by the store (never
/// through memory), into a temporary file renamed into place.
extension S3Responder {
    /// The source of a copy, checked like the target (S3Authentication requires read permission for it).
    private func copySource(_ header: String) throws -> ObjectLocation {
        let source = try S3CopySource(header: header)
        return try objectLocation(Target(bucket: source.bucket, key: source.key, query: [:], resource: ""))
    }

    func copyObject(_ target: ObjectLocation, source header: String, _ request: Request, _ context: S3RequestContext) async throws -> Response {
        let source = try copySource(header)
        let headers = request.headers
        func directive(_ name: String) throws(S3Error) -> Bool {
            switch headers[HTTPField.Name(name)!] {
            case nil, "COPY"?: return false
            case "REPLACE"?: return true
            case let other?: throw S3Error.invalidArgument("Unknown \(name): \(other); use COPY or REPLACE.")
            }
        }
        let replaceMetadata = try directive("x-amz-metadata-directive")
        let replaceTags = try directive("x-amz-tagging-directive")
        if source == target && !replaceMetadata {
            throw S3Error(
                "InvalidRequest", .badRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
        }
        let given = try Self.attributes(headers)
        let conditions = S3CopyConditions(headers)
        let condition = try Self.writeCondition(headers)
        let info = try await store.copy(from: source, to: target, condition: condition) { original in
            try conditions.check(original)
            return ObjectAttributes(
                contentType: replaceMetadata ? given.contentType : original.contentType,
                metadata: replaceMetadata ? given.metadata : original.metadata,
                tags: replaceTags ? given.tags : original.tags)
        }
        return Self.xmlResponse(Self.copyResult("CopyObjectResult", etag: info.etag, lastModified: info.lastModified), context)
    }

    func uploadPartCopy(
        _ location: ObjectLocation, part: String, uploadID: String, source header: String, _ request: Request,
        _ context: S3RequestContext
    ) async throws -> Response {
        let number = try Self.partNumber(part)
        let source = try copySource(header)
        let range = try request.headers[.init("x-amz-copy-source-range")!].map(S3CopySource.range(header:))
        let conditions = S3CopyConditions(request.headers)
        let info = try await store.uploadPartCopy(from: source, to: location, uploadID: uploadID, number: number) { original in
            try conditions.check(original)
            if let range, range.upperBound >= original.size {
                throw S3Error.invalidArgument("Range specified is not valid for source object of size: \(original.size)")
            }
            return range
        }
        return Self.xmlResponse(Self.copyResult("CopyPartResult", etag: info.etag, lastModified: info.lastModified), context)
    }

    private static func copyResult(_ root: String, etag: String, lastModified: Date) -> S3XML.Writer {
        var xml = S3XML.Writer()
        xml.openRoot(root)
        xml.element("ETag", "\"\(etag)\"")
        xml.element("LastModified", HTTPDate.iso8601(lastModified))
        xml.close(root)
        return xml
    }
}
