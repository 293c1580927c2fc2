public import ServalCore
public import ServalRuntime

/// The running form of an endpoint: one ``VariantRuntime`` per production variant and the traffic split.
///
/// A value never changes: an update (new weights, new instances, a new config) builds a new runtime, which
/// ``EndpointManager`` swaps in atomically.
public final class EndpointRuntime: Sendable {
    /// The endpoint's name.
    public let name: String
    /// The variants, in config order.
    public let variants: [VariantRuntime]
    /// Each variant's traffic weight, in variant order: the config's, or an override.
    public let weights: [Double]
    /// The manager's token of each variant, in variant order, naming it in state changes.
    let tokens: [UInt64]
    /// The config's data capture, when it is on.
    public let dataCapture: DataCaptureConfig?
    private let cumulativeWeights: [Double]

    init(name: String, variants: [VariantRuntime], weights: [Double], tokens: [UInt64], dataCapture: DataCaptureConfig?) {
        precondition(variants.count == weights.count && variants.count == tokens.count)
        self.name = name
        self.variants = variants
        self.weights = weights
        self.tokens = tokens
        self.dataCapture = dataCapture?.isActive == true ? dataCapture : nil
        var total = 0.0
        cumulativeWeights = weights.map {
            total += $0
            return total
        }
    }

    /// Picks the variant for a request: the one named by `target`, or one at random by weight.
    public func variant(target: String?) throws(ServalError) -> VariantRuntime {
        if let target {
            guard let variant = variants.first(where: { $0.spec.variant.name == target }) else {
                throw ServalError(
                    .validationError,
                    "Endpoint \"\(name)\" has no variant \"\(target)\" (X-Amzn-SageMaker-Target-Variant); its variants are \(variants.map { $0.spec.variant.name }.joined(separator: ", ")).")
            }
            return variant
        }
        guard variants.count > 1, let total = cumulativeWeights.last, total > 0 else { return variants[0] }
        let point = Double.random(in: 0..<total)
        let index = cumulativeWeights.firstIndex { point < $0 } ?? variants.count - 1
        return variants[index]
    }

    /// The variant named `name`, with its weight and token.
    func member(named name: String) -> (variant: VariantRuntime, weight: Double, token: UInt64)? {
        guard let index = variants.firstIndex(where: { $0.spec.variant.name == name }) else { return nil }
        return (variants[index], weights[index], tokens[index])
    }
}
