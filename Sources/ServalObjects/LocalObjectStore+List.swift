import Foundation
import ServalCore

extension LocalObjectStore {
    /// One entry of a listing before paging: an object's key or a common prefix.
    private enum Entry {
        case object(key: String, path: String)
        case commonPrefix(String)

        var name: String {
            switch self {
            case .object(let key, _): key
            case .commonPrefix(let prefix): prefix
            }
        }
    }

    public func list(_ request: ObjectListRequest) async throws -> ObjectListing {
        try Self.checkBucketName(request.bucket)
        let bucket = bucketPath(request.bucket)
        return try await io {
            guard try FileSystem.status(bucket, follow: true)?.kind == .directory else {
                throw ObjectStoreError.noSuchBucket(request.bucket)
            }
            var marker = request.startAfter
            if let token = request.continuationToken {
                guard let data = Data(base64Encoded: token), let decoded = String(data: data, encoding: .utf8) else {
                    throw ObjectStoreError.invalidArgument("The continuation token is not valid.")
                }
                marker = decoded
            }
            var entries: [Entry] = []
            var prefixes = Set<String>()
            try self.walk(
                folder: bucket, relative: "", bucketRealPath: FileSystem.realPath(bucket), request: request,
                entries: &entries, prefixes: &prefixes)
            entries += prefixes.map { .commonPrefix($0) }
            entries.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
            if let marker {
                entries.removeAll { !marker.utf8.lexicographicallyPrecedes($0.name.utf8) }
            }
            let maxKeys = max(0, min(request.maxKeys, 1000))
            let page = entries.prefix(maxKeys)
            let isTruncated = entries.count > page.count
            var objects: [ObjectInfo] = []
            var commonPrefixes: [String] = []
            for entry in page {
                switch entry {
                case .commonPrefix(let prefix):
                    commonPrefixes.append(prefix)
                case .object(let key, let path):
                    // A file removed since the walk is left out.
                    guard let status = try FileSystem.status(path, follow: true), status.kind == .file else { continue }
                    let location = try ObjectLocation(bucket: request.bucket, key: key)
                    objects.append(self.info(location, status: status))
                }
            }
            let last = isTruncated ? page.last?.name : nil
            return ObjectListing(
                objects: objects, commonPrefixes: commonPrefixes, isTruncated: isTruncated,
                nextContinuationToken: last.map { Data($0.utf8).base64EncodedString() }, lastEntry: last)
        }
    }

    /// Collects the keys under `folder` that match the request's prefix, rolling keys up into common prefixes
    /// when there is a delimiter, without descending into folders that roll up whole.
    private func walk(
        folder: String, relative: String, bucketRealPath: String, request: ObjectListRequest,
        entries: inout [Entry], prefixes: inout Set<String>
    ) throws {
        let prefix = request.prefix
        let delimiter = request.delimiter.flatMap { $0.isEmpty ? nil : $0 }
        func rollUp(_ name: String) -> String? {
            guard let delimiter, name.hasPrefix(prefix) else { return nil }
            let rest = name.dropFirst(prefix.count)
            guard let range = rest.range(of: delimiter) else { return nil }
            return prefix + rest[..<range.upperBound]
        }
        for name in FileSystem.entries(folder) {
            let key = relative + name
            let path = folder + "/" + name
            guard var status = try FileSystem.status(path, follow: false) else { continue }
            if status.kind == .symlink {
                // Followed only to a file inside the bucket; folders behind links are not walked (no loops).
                guard let real = try? FileSystem.realPath(path), real.hasPrefix(bucketRealPath + "/"),
                    let target = try FileSystem.status(path, follow: true), target.kind == .file
                else { continue }
                status = target
            }
            switch status.kind {
            case .directory:
                let folderKey = key + "/"
                guard folderKey.hasPrefix(prefix) || prefix.hasPrefix(folderKey) else { continue }
                if delimiter == "/", let common = rollUp(folderKey) {
                    if !prefixes.contains(common), try Self.containsObject(path) { prefixes.insert(common) }
                    continue
                }
                try walk(
                    folder: path, relative: folderKey, bucketRealPath: bucketRealPath, request: request,
                    entries: &entries, prefixes: &prefixes)
            case .file:
                guard key.hasPrefix(prefix), (try? ObjectLocation.validate(key: key)) != nil else { continue }
                if let common = rollUp(key) {
                    prefixes.insert(common)
                } else {
                    entries.append(.object(key: key, path: path))
                }
            case .symlink, .other:
                continue
            }
        }
    }
}
