import HTTPTypes
import ServalAuth

/// What a request to Serval's HTTP port needs before it is handled: nothing (the open health routes), or an access
/// key whose role permits an ``ServalAuth/AccessAction``; and the protocol whose error shape a refusal takes.
///
/// Decided from the method, the raw path and `X-Amz-Target` alone, before routing, so that unknown routes are
/// refused like known ones. A pure function: `RouteAccess(method:path:target:)`.
struct RouteAccess: Equatable, Sendable {
    /// The protocol a route belongs to, which decides how a refusal is written.
    enum Shape: Equatable, Sendable {
        /// Serval's REST API: `{"code", "message"}`.
        case rest
        /// SageMaker runtime (rest-json): `x-amzn-ErrorType` and `{"message"}`, AWS codes.
        case sageMakerRuntime
        /// SageMaker's control plane (JSON 1.1, `POST /` with `X-Amz-Target`): `{"__type", "message"}`.
        case sageMakerJSON
        /// The Open Inference Protocol: `{"error"}`.
        case openInference
    }

    /// The action the request's key must be permitted; `nil` for an open route.
    var action: AccessAction?
    /// How a refusal is written.
    var shape: Shape

    /// Classifies a request. `path` may carry a query; `target` is the `X-Amz-Target` header.
    init(method: HTTPRequest.Method, path: String, target: String?) {
        let segments = path.prefix { $0 != "?" }.split(separator: "/").map(String.init)
        let reads = method == .get || method == .head
        // Deny by default: a route not listed below needs a deployer to read and an admin to change anything.
        let fallback: AccessAction = reads ? .describeResources : .manageAccessKeys
        func manage(_ action: AccessAction) -> AccessAction { reads ? .describeResources : action }

        switch segments.first {
        case nil:
            if method == .post {
                self.init(action: Self.sageMakerAction(target: target), shape: .sageMakerJSON)
            } else {
                self.init(action: fallback, shape: .rest)
            }
        case "ping" where segments.count == 1 && reads:
            self.init(action: nil, shape: .rest)
        case "openapi.json" where segments.count == 1:
            // Any key may read the API's description.
            self.init(action: .invoke, shape: .rest)
        case "v2":
            self.init(action: Self.openInferenceAction(Array(segments.dropFirst()), method: method), shape: .openInference)
        case "models":
            self.init(action: manage(.manageModels), shape: .rest)
        case "endpoint-configs":
            self.init(action: manage(.manageEndpointConfigs), shape: .rest)
        case "transform-jobs":
            self.init(action: manage(.manageTransformJobs), shape: .rest)
        case "access-keys":
            self.init(action: .manageAccessKeys, shape: .rest)
        case "endpoints":
            let route = Self.endpointRoute(Array(segments.dropFirst()), method: method)
            self.init(action: route.action, shape: route.shape)
        default:
            self.init(action: fallback, shape: .rest)
        }
    }

    init(action: AccessAction?, shape: Shape) {
        self.action = action
        self.shape = shape
    }

    /// `/endpoints[/NAME[/...]]`: the runtime's invocations, async invocations and their results, and the endpoint
    /// resource itself.
    private static func endpointRoute(_ rest: [String], method: HTTPRequest.Method) -> RouteAccess {
        let reads = method == .get || method == .head
        guard rest.count >= 2 else {
            return RouteAccess(action: reads ? .describeResources : .manageEndpoints, shape: .rest)
        }
        switch rest[1] {
        case "invocations", "invocations-response-stream":
            return RouteAccess(action: .invoke, shape: .sageMakerRuntime)
        case "async-invocations":
            if method == .post && rest.count == 2 { return RouteAccess(action: .invoke, shape: .sageMakerRuntime) }
            // Status, listing and results are for whoever may invoke; so is cancelling.
            return RouteAccess(action: reads ? .readInvocationResults : .invoke, shape: .rest)
        default:
            return RouteAccess(action: reads ? .describeResources : .manageEndpoints, shape: .rest)
        }
    }

    /// `/v2/...`: health and server metadata are open; what an inference client needs is `invoke`; statistics and
    /// the repository index describe; loading and unloading manage endpoints.
    private static func openInferenceAction(_ rest: [String], method: HTTPRequest.Method) -> AccessAction? {
        let reads = method == .get || method == .head
        if reads && (rest.isEmpty || rest == ["health", "live"] || rest == ["health", "ready"]) { return nil }
        switch rest.first {
        case "models":
            if rest.last == "stats" { return .describeResources }
            return .invoke
        case "repository":
            if rest.last == "load" || rest.last == "unload" { return .manageEndpoints }
            return .describeResources
        default:
            return reads ? .describeResources : .manageAccessKeys
        }
    }

    /// The action of a SageMaker control-plane operation, from `X-Amz-Target: SageMaker.<Operation>`.
    ///
    /// `Describe*` and `List*` (`ListTags` too) describe; `AddTags` and `DeleteTags` manage tags; `Create*`,
    /// `Delete*`, `Update*` and `Stop*` manage the resource the operation names. Any other operation, or none, needs a deployer (the control plane then refuses it); a
    /// mutating operation on a resource Serval does not know needs an admin.
    static func sageMakerAction(target: String?) -> AccessAction {
        guard let target, let dot = target.lastIndex(of: ".") else { return .describeResources }
        // CloudWatch Logs on the same route only reads workers' output.
        if target.hasPrefix(CloudWatchLogsRoutes.targetPrefix) { return .describeResources }
        let operation = target[target.index(after: dot)...]
        if operation.hasPrefix("Describe") || operation.hasPrefix("List") { return .describeResources }
        if operation == "AddTags" || operation == "DeleteTags" { return .manageTags }
        guard ["Create", "Delete", "Update", "Stop"].contains(where: { operation.hasPrefix($0) }) else {
            return .describeResources
        }
        if operation.contains("TransformJob") { return .manageTransformJobs }
        if operation.contains("EndpointConfig") { return .manageEndpointConfigs }
        if operation.contains("Endpoint") { return .manageEndpoints }
        if operation.contains("Model") { return .manageModels }
        return .manageAccessKeys
    }
}
