/// Seals values that are secrets before they are stored, and opens them when they are read back. ServalAuth's
/// `SecretSealer` implements it with AES-GCM under the data folder's master key.
public protocol ValueSealer: Sendable {
    /// `value` sealed, bound to `context` (a sealed value copied to another context does not open).
    func seal(_ value: String, context: String) throws -> String
    /// The value `sealed` was made from under the same `context`.
    func open(_ sealed: String, context: String) throws -> String
}

/// Which stored values are secrets, and how a sealed one is recognised.
public enum SealedValues {
    /// The start of every sealed value; what follows is base64.
    public static let prefix = "serval-sealed:v1:"

    /// Whether `value` is sealed (a value stored before sealing existed is not, and is read as it is).
    public static func isSealed(_ value: String) -> Bool {
        value.hasPrefix(prefix)
    }

    /// Whether an environment variable's value is treated as a secret, by its name: one holding SECRET, PASSWORD,
    /// PASSWD, TOKEN, KEY, CREDENTIAL, AUTH or PRIVATE, in any case.
    public static func looksSecret(variable name: String) -> Bool {
        let upper = name.uppercased()
        return ["SECRET", "PASSWORD", "PASSWD", "TOKEN", "KEY", "CREDENTIAL", "AUTH", "PRIVATE"].contains { upper.contains($0) }
    }
}

extension Model {
    /// The model with each secret value (environment values whose names look secret, and the SageMaker request it
    /// was made with, which holds its environment) passed through `transform` with its context.
    public func mappingSecrets(_ transform: (_ value: String, _ context: String) throws -> String) rethrows -> Model {
        var model = self
        for (key, value) in environment where SealedValues.looksSecret(variable: key) {
            model.environment[key] = try transform(value, "model/\(name)/environment/\(key)")
        }
        if let request = sageMakerRequest {
            model.sageMakerRequest = try transform(request, "model/\(name)/sagemaker-request")
        }
        return model
    }
}

extension EndpointConfig {
    /// The config with its webhook secret passed through `transform` with its context.
    public func mappingSecrets(_ transform: (_ value: String, _ context: String) throws -> String) rethrows -> EndpointConfig {
        var config = self
        if let secret = asyncInference?.webhookSecret {
            config.asyncInference?.webhookSecret = try transform(secret, "endpoint-config/\(name)/webhook-secret")
        }
        return config
    }
}

extension Endpoint {
    /// The endpoint with the secrets of its own copy of its config and models passed through `transform`, each
    /// with the context it has in the config's or model's own record.
    public func mappingSecrets(_ transform: (_ value: String, _ context: String) throws -> String) rethrows -> Endpoint {
        var endpoint = self
        if let deployment {
            endpoint.deployment = EndpointDeployment(
                config: try deployment.config.mappingSecrets(transform),
                models: try deployment.models.map { try $0.mappingSecrets(transform) })
        }
        return endpoint
    }
}
