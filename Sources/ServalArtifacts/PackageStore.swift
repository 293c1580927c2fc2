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
/// Every read is bounded (an archive by ``maxPackageBytes``, what it unpacks to by ``maxUnpackedBytes`` and
/// ``diskReserveBytes``) and stops when the caller's ``PackageCancellation`` or ``shutdown`` is cancelled.
public struct PackageStore: Sendable {
    /// The data folder.
    public let dataDirectory: String
    /// The largest archive read, in bytes (`serve --max-package-bytes`).
    public var maxPackageBytes: Int64 = 10 * 1024 * 1024 * 1024
    /// The most bytes a package may unpack to (`serve --max-unpacked-bytes`).
    public var maxUnpackedBytes: Int64 = 100 * 1024 * 1024 * 1024
    /// The free bytes extraction must leave on the data folder's disk (`serve --disk-reserve-bytes`).
    public var diskReserveBytes: Int64 = 1024 * 1024 * 1024
    /// The most entries a package may have.
    public var maxEntries = 100_000
    /// The folders whose packages users may name by path (`serve --model-source-root`); none by default.
    public var sourceRoots = PackageSourceRoots.none
    /// Cancelled when Serval shuts down: stops every copy and extraction in progress.
    public let shutdown = PackageCancellation()

    /// The file names that select a default handler, in order of precedence.
    public static let artifactFiles: [(name: String, kind: ArtifactKind)] = [
        ("model.joblib", .sklearn), ("model.pkl", .sklearn), ("model.ubj", .xgboost), ("xgboost-model", .xgboost),
        ("model.json", .xgboost), ("model.onnx", .onnx), ("model.pt", .torchscript),
    ]

    /// Creates a store rooted at the data folder.
    public init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }

    /// The folder uploads and extractions are staged in.
    public var stagingDirectory: String { dataDirectory + "/staging" }

    /// The absolute path of a stored package folder.
    public func absolutePath(of relativePath: String) -> String {
        dataDirectory + "/" + relativePath
    }

    /// Stores the tar or gzip-compressed tar archive at `archivePath`, a file Serval wrote itself (a staged upload
    /// or an object of its object store), as a package of model `modelName`.
    ///
    /// - Parameter code: the SageMaker SDK's `sourcedir.tar.gz` to add to the package's `code/` folder, if any.
    public func storeArchive(
        at archivePath: String, code: SubmittedCode? = nil, modelName: String,
        cancellation: PackageCancellation = PackageCancellation()
    ) throws(PackageError) -> StoredPackage {
        let (fd, size) = try Self.openArchive(archivePath)
        defer { close(fd) }
        return try storeArchive(descriptor: fd, size: size, code: code, modelName: modelName, cancellation: cancellation)
    }

    /// Opens a file Serval wrote itself (never following a link) and returns its descriptor and size.
    private static func openArchive(_ path: String) throws(PackageError) -> (descriptor: Int32, size: Int64) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw .io("cannot open \(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw .io("\(path) is not a regular file")
        }
        return (fd, Int64(info.st_size))
    }

    /// Stores the package a user named by path (`modelDataUrl`): a tar or tar.gz file, or a folder (copied), that
    /// must lie under one of ``sourceRoots``.
    public func storeSource(
        at path: String, code: SubmittedCode? = nil, modelName: String,
        cancellation: PackageCancellation = PackageCancellation()
    ) throws(PackageError) -> StoredPackage {
        let source = try sourceRoots.openSource(path)
        defer { close(source.descriptor) }
        guard source.isDirectory else {
            return try storeArchive(
                descriptor: source.descriptor, size: source.size, code: code, modelName: modelName,
                cancellation: cancellation)
        }
        let stop = PackageCancellation(parents: [shutdown, cancellation])
        try makeFolder(stagingDirectory)
        let archive = stagingDirectory + "/folder-\(UUID().uuidString.lowercased()).tar"
        defer { unlink(archive) }
        var budget = WriteBudget(
            maxBytes: maxUnpackedBytes, diskReserveBytes: diskReserveBytes, folder: stagingDirectory, cancellation: stop)
        try TarWriter.archive(directory: source.descriptor, to: archive, maxEntries: maxEntries, budget: &budget)
        return try storeArchive(at: archive, code: code, modelName: modelName, cancellation: cancellation)
    }

    private func storeArchive(
        descriptor fd: Int32, size: Int64, code: SubmittedCode?, modelName: String, cancellation: PackageCancellation
    ) throws(PackageError) -> StoredPackage {
        let stop = PackageCancellation(parents: [shutdown, cancellation])
        let staging = try makeStagingFolder()
        do {
            let (digest, unpacked) = try extract(descriptor: fd, size: size, into: staging, maxBytes: maxUnpackedBytes, stop: stop)
            var total = unpacked
            if let code, let archive = code.archivePath {
                total += try addCode(archive, uri: code.uri, to: staging, maxBytes: maxUnpackedBytes - unpacked, stop: stop)
            }
            try stop.check()
            let info = try Self.inspect(folder: staging, digest: digest, sizeBytes: total, program: code?.program)
            return StoredPackage(relativePath: try commit(staging: staging, modelName: modelName), info: info)
        } catch {
            removeTree(staging)
            throw error
        }
    }

    /// Extracts the tar or tar.gz archive open at `fd` into the folder `destination`, unpacking at most `maxBytes`;
    /// returns the archive's SHA-256 and the bytes unpacked.
    private func extract(
        descriptor fd: Int32, size: Int64, into destination: String, maxBytes: Int64, stop: PackageCancellation
    ) throws(PackageError) -> (digest: String, unpacked: Int64) {
        guard size <= maxPackageBytes else {
            throw .tooLarge("the archive is \(size) bytes, more than \(maxPackageBytes), the package limit (serve --max-package-bytes)")
        }
        var magic = [UInt8](repeating: 0, count: 2)
        let magicCount = pread(fd, &magic, 2, 0)
        var hashing = HashingStream(base: FileDescriptorStream(descriptor: fd, limit: size, cancellation: stop))
        var extractor = TarExtractor(
            destination: destination, maxEntries: maxEntries,
            budget: WriteBudget(
                maxBytes: maxBytes, diskReserveBytes: diskReserveBytes, folder: destination, cancellation: stop))
        if magicCount == 2 && magic == [0x1F, 0x8B] {
            var gzip = try GzipStream(base: hashing)
            try extractor.extract(from: &gzip)
            hashing = gzip.base
        } else {
            try extractor.extract(from: &hashing)
        }
        return (hashing.finish(), extractor.totalBytes)
    }

    /// Extracts the submitted code archive through its own staging folder and moves its entries into the package's
    /// `code/` folder, replacing same-named files there (SageMaker puts the submit directory first on `sys.path`).
    /// Returns the bytes unpacked. Errors name `SAGEMAKER_SUBMIT_DIRECTORY`.
    private func addCode(
        _ archive: String, uri: String, to package: String, maxBytes: Int64, stop: PackageCancellation
    ) throws(PackageError) -> Int64 {
        let folder = try makeStagingFolder()
        defer { removeTree(folder) }
        let unpacked: Int64
        do {
            let (fd, size) = try Self.openArchive(archive)
            defer { close(fd) }
            unpacked = try extract(descriptor: fd, size: size, into: folder, maxBytes: maxBytes, stop: stop).unpacked
        } catch {
            let origin = "\(SubmittedCode.directoryVariable) \(uri)"
            switch error {
            case .invalid(let message): throw .invalid("\(origin): \(message)")
            case .tooLarge(let message): throw .tooLarge("\(origin): \(message)")
            default: throw error
            }
        }
        try Self.merge(folder, into: package + "/code")
        return unpacked
    }

    /// Moves every entry of `source` into `destination` (created when missing), merging folders that exist in both;
    /// anything else in `destination` with an entry's name is replaced. Neither tree's links are followed.
    private static func merge(_ source: String, into destination: String) throws(PackageError) {
        var info = stat()
        if lstat(destination, &info) == 0, info.st_mode & S_IFMT != S_IFDIR {
            try? FileManager.default.removeItem(atPath: destination)
        }
        if lstat(destination, &info) != 0 {
            guard rename(source, destination) == 0 else {
                throw .io("cannot move the submitted code into place: \(String(cString: strerror(errno)))")
            }
            return
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: source)) ?? []
        for name in names {
            var entry = stat()
            guard lstat(source + "/" + name, &entry) == 0 else { continue }
            if entry.st_mode & S_IFMT == S_IFDIR {
                try merge(source + "/" + name, into: destination + "/" + name)
            } else {
                var existing = stat()
                if lstat(destination + "/" + name, &existing) == 0, existing.st_mode & S_IFMT == S_IFDIR {
                    try? FileManager.default.removeItem(atPath: destination + "/" + name)
                }
                guard rename(source + "/" + name, destination + "/" + name) == 0 else {
                    throw .io("cannot move the submitted code into place: \(String(cString: strerror(errno)))")
                }
            }
        }
    }

    /// Removes what an interrupted upload or extraction left in the staging folder, and package folders that no
    /// model records (`keeping` lists the recorded ones): a crash between storing a package and recording its
    /// model leaves one. Call it at start, before anything is stored. Returns what was removed and its size.
    public func removeLeftovers(keeping recorded: Set<String>) -> [(path: String, bytes: Int64)] {
        var removed: [(path: String, bytes: Int64)] = []
        for (folder, keep) in [("staging", Set<String>()), ("models", recorded)] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dataDirectory + "/" + folder)) ?? []
            for name in names.sorted() where !keep.contains(folder + "/" + name) {
                let relative = folder + "/" + name
                let bytes = Self.treeSize(absolutePath(of: relative))
                removeTree(absolutePath(of: relative))
                removed.append((relative, bytes))
            }
        }
        return removed
    }

    private static func treeSize(_ path: String) -> Int64 {
        var info = stat()
        guard lstat(path, &info) == 0 else { return 0 }
        guard info.st_mode & S_IFMT == S_IFDIR else { return Int64(info.st_size) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.reduce(0) { $0 + treeSize(path + "/" + $1) }
    }

    /// Deletes a stored package folder.
    public func remove(relativePath: String) {
        removeTree(absolutePath(of: relativePath))
    }

    // MARK: Inspection

    /// Finds the artifact, serving code and requirements of an extracted package.
    ///
    /// - Parameter program: the entry script in `code/` (`SAGEMAKER_PROGRAM`); `inference.py` when nil.
    static func inspect(
        folder: String, digest: String, sizeBytes: Int64, program: String? = nil
    ) throws(PackageError) -> ModelPackageInfo {
        let script = program ?? "inference.py"
        let hasCode = isRegularFile(folder + "/code/" + script)
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
                "it has no model file (\(artifactFiles.map(\.name).joined(separator: ", "))) and no code/\(script); put one of them at the top of the package"
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
        try makeFolder(stagingDirectory)
        let path = stagingDirectory + "/" + UUID().uuidString.lowercased()
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
