import Foundation
public import NIOCore
import NIOPosix
public import ServalArtifacts
public import ServalCore
public import ServalStore

/// Where a new model's package comes from.
public enum PackageSource: Sendable {
    /// A tar or tar.gz archive Serval wrote itself: a staged upload, or an object in its object store.
    case archive(path: String)
    /// A path a user named (`modelDataUrl`): a tar or tar.gz file, or a folder (copied), under one of the
    /// folders the operator allows (`serve --model-source-root`).
    case userPath(String)
}

/// Creating, reading and deleting models.
public struct ModelService: Sendable {
    let store: any MetadataStore
    let packages: PackageStore
    let clock: any WallClock

    /// Creates the service.
    public init(store: any MetadataStore, packages: PackageStore, clock: any WallClock) {
        self.store = store
        self.packages = packages
        self.clock = clock
    }

    /// Stores the package and records the model.
    ///
    /// - Parameters:
    ///   - code: the entry script and code archive the environment names (``SubmittedCode``), added to the package.
    ///   - sageMakerRequest: the SageMaker `CreateModel` request as JSON, recorded with the model when it came
    ///     through the SageMaker control plane.
    public func create(
        name: String, source: PackageSource, environment: [String: String], code: SubmittedCode? = nil,
        sageMakerRequest: String? = nil
    ) async throws -> Model {
        try ResourceName.validate(name, field: "name")
        try Model.validateEnvironment(environment)
        if try await store.model(named: name) != nil {
            throw ServalError(.conflict, "Model \"\(name)\" already exists; delete it first or choose another name.")
        }
        // Extraction is blocking disk work, possibly gigabytes: keep it off the event loops that serve requests.
        // Cancelling the request (or shutting Serval down, through the store's flag) stops it between two reads.
        let packages = self.packages
        let cancellation = PackageCancellation()
        let result = try await withTaskCancellationHandler {
            try await NIOThreadPool.singleton.runIfActive { () -> Result<StoredPackage, PackageError> in
                do throws(PackageError) {
                    switch source {
                    case .archive(let path):
                        return .success(try packages.storeArchive(at: path, code: code, modelName: name, cancellation: cancellation))
                    case .userPath(let path):
                        return .success(try packages.storeSource(at: path, code: code, modelName: name, cancellation: cancellation))
                    }
                } catch {
                    return .failure(error)
                }
            }
        } onCancel: {
            cancellation.cancel()
        }
        let stored: StoredPackage
        switch result {
        case .success(let package): stored = package
        case .failure(let error): throw error.servalError
        }
        let model = Model(
            name: name, packagePath: stored.relativePath, package: stored.info, environment: environment,
            createdAt: clock.now(), sageMakerRequest: sageMakerRequest)
        do {
            try await store.createModel(model)
        } catch {
            await packages.removeUnused([stored.relativePath], store: store)
            throw error
        }
        return model
    }

    /// Stores an uploaded package (a tar or tar.gz archive, streamed as it arrives) and records the model.
    ///
    /// The body is staged in the package store's staging folder, written on the thread pool (never on the event
    /// loops that serve requests), and refused past the package limit (`serve --max-package-bytes`) as it
    /// arrives; the staged file is removed once the package is stored or refused.
    public func create<Body: AsyncSequence>(name: String, upload body: Body) async throws -> Model
    where Body.Element == ByteBuffer {
        try ResourceName.validate(name, field: "name")
        let archive = try await stage(body)
        defer { unlink(archive) }
        return try await create(name: name, source: .archive(path: archive), environment: [:])
    }

    /// Streams `body` to a new file in the staging folder and returns its path.
    private func stage<Body: AsyncSequence>(_ body: Body) async throws -> String where Body.Element == ByteBuffer {
        let folder = packages.stagingDirectory
        let path = folder + "/upload-\(UUID().uuidString.lowercased())"
        let limit = packages.maxPackageBytes
        let pool = NIOThreadPool.singleton
        let fd = try await pool.runIfActive { () throws -> Int32 in
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw ServalError(.internalFailure, "Cannot stage the upload: \(String(cString: strerror(errno))).")
            }
            return fd
        }
        var staged = false
        defer {
            close(fd)
            if !staged { unlink(path) }
        }
        var total: Int64 = 0
        for try await chunk in body {
            total += Int64(chunk.readableBytes)
            guard total <= limit else {
                throw ServalError(
                    .payloadTooLarge, "The package is larger than \(limit) bytes, the upload limit (--max-package-bytes).")
            }
            try await pool.runIfActive {
                let failure = chunk.withUnsafeReadableBytes { writeFully(fd, $0) }
                if failure != 0 {
                    throw ServalError(.internalFailure, "Cannot stage the upload: \(String(cString: strerror(failure))).")
                }
            }
        }
        guard total > 0 else {
            throw ServalError(.validationError, "The upload is empty: send the package (tar or tar.gz) as the request body.")
        }
        staged = true
        return path
    }

    /// The named model.
    public func get(_ name: String) async throws -> Model {
        guard let model = try await store.model(named: name) else { throw ServalError.notFound("Model", name) }
        return model
    }

    /// Every model.
    public func list() async throws -> [Model] {
        try await store.models()
    }

    /// Deletes the model, as SageMaker allows also while configs and endpoints use it: its package stays while
    /// an endpoint's deployment holds it, and goes with the last such endpoint. Refused while an update is
    /// deploying a config that uses it.
    public func delete(_ name: String) async throws {
        let model = try await get(name)
        for endpoint in try await store.endpoints() {
            guard let pending = endpoint.pendingConfigName,
                let config = try await store.endpointConfig(named: pending),
                config.variants.contains(where: { $0.modelName == name })
            else { continue }
            throw ServalError(
                .conflict,
                "Model \"\(name)\" is being deployed to endpoint \"\(endpoint.name)\" by an update (endpoint config \"\(pending)\"); delete it once the update has finished.")
        }
        guard try await store.deleteModel(named: name) else { throw ServalError.notFound("Model", name) }
        await packages.removeUnused([model.packagePath], store: store)
    }

    /// Removes what a crash left in the data folder: staged uploads and extractions, and package folders that
    /// neither a model nor an endpoint's deployment records. Call it at start, before serving; returns what was
    /// removed and its size, for the log.
    public func removeLeftovers() async throws -> [(path: String, bytes: Int64)] {
        let recorded = try await store.packagePathsInUse()
        let packages = self.packages
        return try await NIOThreadPool.singleton.runIfActive { packages.removeLeftovers(keeping: recorded) }
    }
}

extension PackageStore {
    /// Deletes the packages among `paths` that no model and no endpoint's deployment uses any more, on the
    /// thread pool (a large tree takes a while to remove).
    func removeUnused(_ paths: [String], store: any MetadataStore) async {
        guard !paths.isEmpty, let inUse = try? await store.packagePathsInUse() else { return }
        let unused = Set(paths).subtracting(inUse)
        guard !unused.isEmpty else { return }
        try? await NIOThreadPool.singleton.runIfActive { for path in unused { self.remove(relativePath: path) } }
    }
}

/// Creating, reading and deleting endpoint configs.
public struct EndpointConfigService: Sendable {
    let store: any MetadataStore
    let clock: any WallClock
    let webhookPolicy: WebhookPolicy

    /// Creates the service; webhook URLs in async sections must pass `webhookPolicy`.
    public init(store: any MetadataStore, clock: any WallClock, webhookPolicy: WebhookPolicy = .anyHost) {
        self.store = store
        self.clock = clock
        self.webhookPolicy = webhookPolicy
    }

    /// Validates and records a config; every variant's model must exist, and webhook URLs must be allowed.
    ///
    /// - Parameter sageMakerRequest: the SageMaker `CreateEndpointConfig` request as JSON, recorded with the
    ///   config when it came through the SageMaker control plane.
    public func create(
        name: String, variants: [ProductionVariant], asyncInference: AsyncInferenceConfig? = nil,
        dataCapture: DataCaptureConfig? = nil, sageMakerRequest: String? = nil
    ) async throws -> EndpointConfig {
        let config = EndpointConfig(
            name: name, variants: variants, asyncInference: asyncInference, dataCapture: dataCapture,
            createdAt: clock.now(), sageMakerRequest: sageMakerRequest)
        try config.validate()
        if let success = asyncInference?.successWebhook {
            try webhookPolicy.check(success, field: "asyncInference.successWebhook")
        }
        if let error = asyncInference?.errorWebhook {
            try webhookPolicy.check(error, field: "asyncInference.errorWebhook")
        }
        for (index, variant) in variants.enumerated() where try await store.model(named: variant.modelName) == nil {
            throw ServalError(
                .notFound,
                "variants[\(index)].model: model \"\(variant.modelName)\" does not exist; create it first (POST /models).")
        }
        try await store.createEndpointConfig(config)
        return config
    }

    /// The named config.
    public func get(_ name: String) async throws -> EndpointConfig {
        guard let config = try await store.endpointConfig(named: name) else {
            throw ServalError.notFound("Endpoint config", name)
        }
        return config
    }

    /// Every config.
    public func list() async throws -> [EndpointConfig] {
        try await store.endpointConfigs()
    }

    /// Deletes the config, as SageMaker allows also while endpoints use it (they run their own copy); refused
    /// while an update is moving an endpoint to it.
    public func delete(_ name: String) async throws {
        if let endpoint = try await store.endpoints().first(where: { $0.pendingConfigName == name }) {
            throw ServalError(
                .conflict,
                "Endpoint config \"\(name)\" is being deployed to endpoint \"\(endpoint.name)\" by an update; delete it once the update has finished.")
        }
        guard try await store.deleteEndpointConfig(named: name) else {
            throw ServalError.notFound("Endpoint config", name)
        }
    }
}
