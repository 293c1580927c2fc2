public import ServalCore
public import ServalRuntime
import ServalScheduling

/// The running form of an endpoint: what serves each production variant, and the router that splits traffic.
///
/// A value never changes: an update (new weights, new instances, a new config) builds a new runtime, which the
/// endpoint registry swaps in atomically.
public final class EndpointRuntime: Sendable {
    /// The endpoint's name.
    public let name: String
    /// The variants, in config order.
    public let variants: [any VariantServing]
    /// Each variant's traffic weight, in variant order: the config's, or an override.
    public let weights: [Double]
    /// Each variant's id in the endpoint's deployments, in variant order.
    let ids: [DeploymentStateMachine.VariantID]
    /// The config's data capture, when it is on.
    public let dataCapture: DataCaptureConfig?
    /// Picks the variant of each request.
    private let router: any TrafficRouter
    /// Each variant's capture stream, in variant order; empty when capture is off.
    let captureStreams: [CaptureStream]

    init(
        name: String, variants: [any VariantServing], weights: [Double], ids: [DeploymentStateMachine.VariantID],
        dataCapture: DataCaptureConfig?
    ) {
        precondition(variants.count == weights.count && variants.count == ids.count)
        self.name = name
        self.variants = variants
        self.weights = weights
        self.ids = ids
        self.dataCapture = dataCapture?.isActive == true ? dataCapture : nil
        router = WeightedRouter(endpoint: name, variants: variants.map(\.name), weights: weights)
        captureStreams = self.dataCapture.map { config in
            variants.map { CaptureStream(endpoint: name, variant: $0.name, config: config, observer: $0.observer) }
        } ?? []
    }

    /// Picks the variant for a request: the one named by `target`, or one the router chooses (at random by weight).
    public func variant(target: String?) throws(ServalError) -> any VariantServing {
        var random = SystemRandomNumberGenerator()
        return variants[try router.route(target: target, using: &random)]
    }

    /// The capture stream of `variant`, when the endpoint captures.
    func captureStream(of variant: any VariantServing) -> CaptureStream? {
        guard !captureStreams.isEmpty, let index = variants.firstIndex(where: { $0 === variant }) else { return nil }
        return captureStreams[index]
    }

    /// The variant named `name`, with its weight and id.
    func member(named name: String) -> (variant: any VariantServing, weight: Double, id: DeploymentStateMachine.VariantID)? {
        guard let index = variants.firstIndex(where: { $0.name == name }) else { return nil }
        return (variants[index], weights[index], ids[index])
    }

    /// The endpoint's variants as the deployment state machine knows them.
    var members: [DeploymentStateMachine.Member] {
        zip(ids, variants).map { DeploymentStateMachine.Member(id: $0.0, name: $0.1.name) }
    }
}
