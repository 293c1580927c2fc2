public import ServalCore
public import ServalRuntime

/// The running form of an endpoint: one ``VariantRuntime`` per production variant and the traffic split.
public final class EndpointRuntime: Sendable {
    /// The endpoint's name.
    public let name: String
    /// The variants, in config order.
    public let variants: [VariantRuntime]
    private let cumulativeWeights: [Double]

    init(name: String, variants: [VariantRuntime]) {
        self.name = name
        self.variants = variants
        var total = 0.0
        cumulativeWeights = variants.map {
            total += $0.spec.variant.weight
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
        if variants.count == 1 { return variants[0] }
        let point = Double.random(in: 0..<cumulativeWeights.last!)
        let index = cumulativeWeights.firstIndex { point < $0 } ?? variants.count - 1
        return variants[index]
    }
}
