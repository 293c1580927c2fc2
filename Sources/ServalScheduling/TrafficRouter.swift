public import ServalCore

/// Picks the variant of an endpoint that takes a request, as a pure function of the request's target, the
/// router's own settings and a random source the caller supplies.
///
/// Routers are immutable values, called from any task at once; an endpoint gets a new router when its traffic split
/// changes. ``WeightedRouter`` is the one Serval uses today; a router that follows a canary's or a shadow's share
/// would conform here.
public protocol TrafficRouter: Sendable {
    /// The index, in the endpoint's variant order, of the variant that takes a request.
    ///
    /// - Parameters:
    ///   - target: the variant the caller asked for by name (SageMaker's `X-Amzn-SageMaker-Target-Variant`, an OIP
    ///     version), or `nil` to let the router choose.
    ///   - random: the source of any random choice.
    /// - Throws: `.validationError` naming the endpoint's variants when `target` is not one of them.
    func route<Random: RandomNumberGenerator>(target: String?, using random: inout Random) throws(ServalError) -> Int
}

/// Splits an endpoint's traffic across its variants in proportion to their weights, and sends a request that names
/// a variant to that variant.
///
/// A variant of weight 0 gets only the requests that name it. When every weight is 0, or there is one variant, the
/// first variant takes every request and no random number is drawn.
public struct WeightedRouter: TrafficRouter, Equatable {
    /// The endpoint's name, for errors.
    public let endpoint: String
    /// The variants' names, in the endpoint's order.
    public let variants: [String]
    /// Each variant's weight, in the same order.
    public let weights: [Double]
    private let cumulativeWeights: [Double]

    /// Creates a router over `variants` (at least one), weighted by `weights` (one per variant, each finite and ≥ 0).
    public init(endpoint: String, variants: [String], weights: [Double]) {
        precondition(!variants.isEmpty && variants.count == weights.count)
        self.endpoint = endpoint
        self.variants = variants
        self.weights = weights
        var total = 0.0
        cumulativeWeights = weights.map {
            total += $0
            return total
        }
    }

    /// The variant `target` names, or one drawn in proportion to the weights.
    public func route<Random: RandomNumberGenerator>(
        target: String?, using random: inout Random
    ) throws(ServalError) -> Int {
        if let target {
            guard let index = variants.firstIndex(of: target) else {
                throw ServalError(
                    .validationError,
                    "Endpoint \"\(endpoint)\" has no variant \"\(target)\" (X-Amzn-SageMaker-Target-Variant); its variants are \(variants.joined(separator: ", ")).")
            }
            return index
        }
        guard variants.count > 1, let total = cumulativeWeights.last, total > 0 else { return 0 }
        let point = Double.random(in: 0..<total, using: &random)
        return cumulativeWeights.firstIndex { point < $0 } ?? variants.count - 1
    }
}
