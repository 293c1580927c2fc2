import Crypto
import NIOCore
import Foundation
public import ServalCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A model package stored in the data folder.
public struct StoredPackage: Sendable, Equatable {
    /// The package's folder, relative to the data folder.
    public var relativePath: String
    /// What the package contains.
    public var info: ModelPackageInfo
}

/// Stores model packages under `<data folder>/models`, extracting each through a staging folder.
///
/// A package is extracted into `<data folder>/staging/<random>`, inspected, and only then renamed into
/// `models/<name>-<random>`; a rejected package leaves nothing behind. Stored packages are never modified.
public struct PackageStore: Sendable {
    /// The data folder.
    public let dataDirectory: String
    /// The most bytes a package may unpack to.
    public var maxPackageBytes: Int64 = 50 * 1024 * 1024 * 1024
    /// The most entries a package may have.
    public var maxEntries = 100_000

    /// The file names that select a default handler, in order of precedence.
    public static let artifactFiles: [(name: String, kind: ArtifactKind)] = [
        ("model.joblib", .sklearn), ("model.pkl", .sklearn), ("model.ubj", .xgboost), ("xgboost-model", .xgboost),
        ("model.json", .xgboost), ("model.onnx", .onnx), ("model.pt", .torchscript),
    ]

    /// Creates a store rooted at the data folder.
    public init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }

    /// The absolute path of a stored package folder.
    public func absolutePath(of relativePath: String) -> String {
        dataDirectory + "/" + relativePath
    }

    /// Stores the tar or gzip-compressed tar archive at `archivePath` as a package of model `modelName`.
    public func storeArchive(at archivePath: String, modelName: String) throws(PackageError) -> StoredPackage {
        let fd = open(archivePath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("cannot open \(archivePath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var magic = [UInt8](repeating: 0, count: 2)
        let magicCount = pread(fd, &magic, 2, 0)
        let staging = try makeStagingFolder()
        do {
            var hashing = HashingStream(base: FileDescriptorStream(descriptor: fd))
            var extractor = TarExtractor(
                destination: staging, limits: .init(maxTotalBytes: maxPackageBytes, maxEntries: maxEntries))
            if magicCount == 2 && magic == [0x1F, 0x8B] {
                var gzip = try GzipStream(base: hashing)
                try extractor.extract(from: &gzip)
                hashing = gzip.base
            } else {
                try extractor.extract(from: &hashing)
            }
            let digest = hashing.finish()
            let info = try Self.inspect(folder: staging, digest: digest, sizeBytes: extractor.totalBytes)
            return StoredPackage(relativePath: try commit(staging: staging, modelName: modelName), info: info)
        } catch {
            removeTree(staging)
            throw error
        }
    }

    /// Stores the package folder at `path` (a copy) as a package of model `modelName`.
    public func storeFolder(at path: String, modelName: String) throws(PackageError) -> StoredPackage {
        let archive = dataDirectory + "/staging/upload-\(UUID().uuidString).tar"
        try makeFolder(dataDirectory + "/staging")
        defer { unlink(archive) }
        try TarWriter.archive(folder: path, to: archive)
        return try storeArchive(at: archive, modelName: modelName)
    }

    /// Deletes a stored package folder.
    public func remove(relativePath: String) {
        removeTree(absolutePath(of: relativePath))
    }

    // MARK: Inspection

    /// Finds the artifact, serving code and requirements of an extracted package.
    static func inspect(folder: String, digest: String, sizeBytes: Int64) throws(PackageError) -> ModelPackageInfo {
        let hasCode = isRegularFile(folder + "/code/inference.py")
        var requirements: String?
        let requirementsPath = folder + "/code/requirements.txt"
        if isRegularFile(requirementsPath) {
            guard let data = FileManager.default.contents(atPath: requirementsPath), data.count <= 64 * 1024 else {
                throw .invalid("code/requirements.txt is unreadable or larger than 64 KiB")
            }
            requirements = String(decoding: data, as: UTF8.self)
        }
        var artifact: ArtifactKind?
        for (name, kind) in artifactFiles where isRegularFile(folder + "/" + name) {
            if name == "model.json" && !looksLikeXGBoostJSON(folder + "/" + name) { continue }
            artifact = kind
            break
        }
        guard artifact != nil || hasCode else {
            throw .invalid(
                "it has no model file (\(artifactFiles.map(\.name).joined(separator: ", "))) and no code/inference.py; put one of them at the top of the package"
            )
        }
        return ModelPackageInfo(
            artifact: artifact ?? .custom, hasInferenceCode: hasCode, requirements: requirements, digest: digest,
            sizeBytes: sizeBytes)
    }

    private static func looksLikeXGBoostJSON(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 4096)) ?? Data()
        return String(decoding: head, as: UTF8.self).contains("\"learner\"")
    }

    private static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    }

    // MARK: Folders

    private func makeStagingFolder() throws(PackageError) -> String {
        try makeFolder(dataDirectory + "/staging")
        let path = dataDirectory + "/staging/" + UUID().uuidString.lowercased()
        try makeFolder(path)
        return path
    }

    private func commit(staging: String, modelName: String) throws(PackageError) -> String {
        try makeFolder(dataDirectory + "/models")
        let relative = "models/\(modelName)-\(UUID().uuidString.lowercased().prefix(8))"
        guard rename(staging, absolutePath(of: relative)) == 0 else {
            throw .io("cannot move the package into place: \(String(cString: strerror(errno)))")
        }
        return relative
    }

    private func makeFolder(_ path: String) throws(PackageError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw .io("cannot create \(path): \(error.localizedDescription)")
        }
    }

    private func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Passes a stream through while computing its SHA-256.
struct HashingStream<Base: ByteStream>: ByteStream {
    fileprivate(set) var base: Base
    private var hasher = SHA256()

    init(base: Base) {
        self.base = base
    }

    mutating func next(maxLength: Int) throws(PackageError) -> ByteBuffer? {
        guard let chunk = try base.next(maxLength: maxLength) else { return nil }
        chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        return chunk
    }

    /// The hex digest of everything read so far, after draining the rest of the stream.
    mutating func finish() -> String {
        while let chunk = try? base.next(maxLength: 256 * 1024) {
            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
