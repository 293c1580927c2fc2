import Foundation
import HTTPTypes
import ServalObjects

/// The source of a CopyObject or UploadPartCopy: the `x-amz-copy-source` header, `[/]bucket/key` URL-encoded, with
/// the `x-amz-copy-source-if-*` conditions on it.
struct S3CopySource: Equatable {
    var bucket: String
    var key: String
}

extension S3CopySource {
    /// Parses the header. A `?versionId=` other than `null` is refused: Serval's store keeps no versions.
    init(header: String) throws(S3Error) {
        var path = Substring(header)
        if let question = path.firstIndex(of: "?") {
            let query = path[path.index(after: question)...]
            path = path[..<question]
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts[0] == "versionId" else {
                    throw .invalidArgument("x-amz-copy-source takes only a versionId query parameter; got \"\(parts[0])\".")
                }
                if parts.count < 2 || parts[1] != "null" {
                    throw S3Error.notImplemented("Copying a version of an object (x-amz-copy-source with ?versionId)")
                }
            }
        }
        guard let decoded = String(path).removingPercentEncoding else {
            throw .invalidArgument("x-amz-copy-source is not valid URL encoding.")
        }
        var rest = Substring(decoded)
        if rest.first == "/" { rest.removeFirst() }
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex, rest.index(after: slash) != rest.endIndex else {
            throw .invalidArgument("Invalid copy source object key: x-amz-copy-source must be bucket/key (URL-encoded).")
        }
        bucket = String(rest[..<slash])
        key = String(rest[rest.index(after: slash)...])
    }

    /// Parses `x-amz-copy-source-range: bytes=first-last` (both offsets required, as S3 requires).
    static func range(header: String) throws(S3Error) -> ClosedRange<Int64> {
        guard case .from(let first, let last?) = S3Range(header: header) else {
            throw .invalidArgument(
                "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy.")
        }
        return first...last
    }
}

/// The `x-amz-copy-source-if-match`, `-if-none-match`, `-if-modified-since` and `-if-unmodified-since` conditions,
/// combined as S3 does: a matching `if-match` overrides a failed `if-unmodified-since`, and a holding
/// `if-none-match` a failed `if-modified-since`.
struct S3CopyConditions: Equatable {
    var ifMatch: String?
    var ifNoneMatch: String?
    var ifModifiedSince: Date?
    var ifUnmodifiedSince: Date?

    init(ifMatch: String? = nil, ifNoneMatch: String? = nil, ifModifiedSince: Date? = nil, ifUnmodifiedSince: Date? = nil) {
        self.ifMatch = ifMatch
        self.ifNoneMatch = ifNoneMatch
        self.ifModifiedSince = ifModifiedSince
        self.ifUnmodifiedSince = ifUnmodifiedSince
    }

    /// Reads the headers; an unreadable date is ignored, as S3 ignores it.
    init(_ headers: HTTPFields) {
        func header(_ name: String) -> String? { headers[HTTPField.Name("x-amz-copy-source-" + name)!] }
        self.init(
            ifMatch: header("if-match"), ifNoneMatch: header("if-none-match"),
            ifModifiedSince: header("if-modified-since").flatMap(HTTPDate.parse),
            ifUnmodifiedSince: header("if-unmodified-since").flatMap(HTTPDate.parse))
    }

    /// Throws 412 `PreconditionFailed` unless the conditions hold for `source`.
    func check(_ source: ObjectInfo) throws(S3Error) {
        // HTTP dates have whole seconds.
        let modified = Date(timeIntervalSince1970: source.lastModified.timeIntervalSince1970.rounded(.down))
        if let ifMatch {
            guard Self.matches(ifMatch, source.etag) else { throw Self.failed }
        } else if let ifUnmodifiedSince, modified > ifUnmodifiedSince {
            throw Self.failed
        }
        if let ifNoneMatch {
            guard !Self.matches(ifNoneMatch, source.etag) else { throw Self.failed }
        } else if let ifModifiedSince, modified <= ifModifiedSince {
            throw Self.failed
        }
    }

    /// Whether an `If-Match`-style list (`"etag"`, `etag`, `*`, comma-separated) names `etag`.
    static func matches(_ list: String, _ etag: String) -> Bool {
        list.split(separator: ",").contains { item in
            let trimmed = item.trimmingCharacters(in: .whitespaces)
            return trimmed == "*" || trimmed.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) == etag
        }
    }

    static let failed = S3Error("PreconditionFailed", .preconditionFailed, "At least one of the pre-conditions you specified did not hold.")
}
