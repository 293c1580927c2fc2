/// The framework file a model package carries, which selects the default handler.
public enum ArtifactKind: String, Codable, Sendable, Equatable, CaseIterable {
    /// `model.joblib` or `model.pkl`: scikit-learn or anything joblib loads.
    case sklearn
    /// `model.json`, `model.ubj` or `xgboost-model`: an XGBoost booster.
    case xgboost
    /// `model.onnx`: run with ONNX Runtime.
    case onnx
    /// `model.pt`: a TorchScript module.
    case torchscript
    /// No framework file Serval recognises; `code/inference.py` must load the model.
    case custom

    /// The Python packages the default handler for this kind needs on top of the base runtime.
    public var frameworkRequirements: [String] {
        switch self {
        case .sklearn, .custom: []
        case .xgboost: ["xgboost"]
        case .onnx: ["onnxruntime"]
        case .torchscript: ["torch"]
        }
    }
}

/// What Serval learned from a model package when it was stored.
public struct ModelPackageInfo: Codable, Sendable, Equatable {
    /// The framework artifact found in the package.
    public var artifact: ArtifactKind
    /// Whether the package has SageMaker-style serving code, `code/inference.py`.
    public var hasInferenceCode: Bool
    /// The contents of `code/requirements.txt`, if the package has one.
    public var requirements: String?
    /// SHA-256 of the package as uploaded, hex.
    public var digest: String
    /// Total size of the extracted files, in bytes.
    public var sizeBytes: Int64

    /// Creates package information.
    public init(artifact: ArtifactKind, hasInferenceCode: Bool, requirements: String?, digest: String, sizeBytes: Int64) {
        self.artifact = artifact
        self.hasInferenceCode = hasInferenceCode
        self.requirements = requirements
        self.digest = digest
        self.sizeBytes = sizeBytes
    }
}

/// A model: a name, a stored model package and the environment its workers run with.
public struct Model: Codable, Sendable, Equatable {
    /// The model's name, unique among models.
    public var name: String
    /// The folder holding the extracted package, relative to the data folder.
    public var packagePath: String
    /// What the package contains.
    public var package: ModelPackageInfo
    /// Environment variables set for the model's workers.
    public var environment: [String: String]
    /// When the model was created.
    public var createdAt: Timestamp
    /// The SageMaker `CreateModel` request the model was made with, as JSON, when it came through the SageMaker
    /// control plane: `DescribeModel` reports it back, with the fields Serval records but does not act on
    /// (`Image`, `ExecutionRoleArn`, `VpcConfig`, ...).
    public var sageMakerRequest: String?

    /// Creates a model.
    public init(
        name: String, packagePath: String, package: ModelPackageInfo, environment: [String: String], createdAt: Timestamp,
        sageMakerRequest: String? = nil
    ) {
        self.name = name
        self.packagePath = packagePath
        self.package = package
        self.environment = environment
        self.createdAt = createdAt
        self.sageMakerRequest = sageMakerRequest
    }

    /// Validates a model's environment variables: at most 100, names of letters, digits and underscores.
    public static func validateEnvironment(_ environment: [String: String]) throws(ServalError) {
        guard environment.count <= 100 else {
            throw .invalid("environment", "has \(environment.count) variables; the limit is 100.")
        }
        for (key, value) in environment {
            let validKey =
                !key.isEmpty && key.utf8.count <= 1024
                && key.utf8.allSatisfy { $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) }
                && !(key.utf8.first! >= 0x30 && key.utf8.first! <= 0x39)
            guard validKey else {
                throw .invalid("environment", "\"\(key)\" is not a valid variable name: use letters, digits and underscores, not starting with a digit.")
            }
            guard value.utf8.count <= 1024, !value.utf8.contains(0) else {
                throw .invalid("environment.\(key)", "values are at most 1024 bytes and may not contain NUL.")
            }
        }
    }
}
