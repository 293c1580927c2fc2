import ServalCore
import ServalScheduling
import ServalFuzzSupport
import Testing

/// A generator that fails the test if the router draws from it.
struct NoRandom: RandomNumberGenerator {
    mutating func next() -> UInt64 {
        Issue.record("the router drew a random number")
        return 0
    }
}

@Suite("WeightedRouter")
struct TrafficRouterTests {
    /// How many of `count` requests without a target each variant gets.
    func split(_ router: WeightedRouter, count: Int, seed: UInt64) throws -> [Int] {
        var random = SeededGenerator(seed: seed)
        var counts = Array(repeating: 0, count: router.variants.count)
        for _ in 0..<count { counts[try router.route(target: nil, using: &random)] += 1 }
        return counts
    }

    @Test("traffic splits by weight, each share within 4.5 standard deviations of the binomial mean", arguments: [1, 2, 3])
    func splitsByWeight(seed: UInt64) throws {
        let router = WeightedRouter(endpoint: "e", variants: ["a", "b", "c"], weights: [1, 3, 6])
        let count = 20_000
        let counts = try split(router, count: count, seed: seed)
        #expect(counts.reduce(0, +) == count)
        for (index, share) in [0.1, 0.3, 0.6].enumerated() {
            let mean = Double(count) * share
            let deviation = (Double(count) * share * (1 - share)).squareRoot()
            #expect(abs(Double(counts[index]) - mean) <= 4.5 * deviation, "variant \(index): \(counts[index]) of \(count)")
        }
    }

    @Test("a variant of weight 0 gets no traffic unless a request names it")
    func zeroWeight() throws {
        let router = WeightedRouter(endpoint: "e", variants: ["zero", "a", "none", "b"], weights: [0, 1, 0, 1])
        let counts = try split(router, count: 5_000, seed: 7)
        #expect(counts[0] == 0 && counts[2] == 0)
        #expect(counts[1] > 0 && counts[3] > 0)
        var random = NoRandom()
        #expect(try router.route(target: "zero", using: &random) == 0)
        #expect(try router.route(target: "none", using: &random) == 2)
    }

    @Test("every weight 0, or one variant: the first variant takes every request, and no random number is drawn")
    func noChoice() throws {
        var random = NoRandom()
        let zeros = WeightedRouter(endpoint: "e", variants: ["a", "b"], weights: [0, 0])
        #expect(try zeros.route(target: nil, using: &random) == 0)
        let single = WeightedRouter(endpoint: "e", variants: ["only"], weights: [0.5])
        #expect(try single.route(target: nil, using: &random) == 0)
    }

    @Test("a target picks its variant by name whatever the weights, without drawing")
    func targetByName() throws {
        let router = WeightedRouter(endpoint: "e", variants: ["a", "b", "c"], weights: [1, 0, 1])
        var random = NoRandom()
        #expect(try router.route(target: "a", using: &random) == 0)
        #expect(try router.route(target: "b", using: &random) == 1)
        #expect(try router.route(target: "c", using: &random) == 2)
    }

    @Test("an unknown target is a validation error naming the header and the endpoint's variants")
    func unknownTarget() throws {
        let router = WeightedRouter(endpoint: "shop", variants: ["blue", "green"], weights: [1, 1])
        var random = NoRandom()
        let error = try #require(throws: ServalError.self) { try router.route(target: "red", using: &random) }
        #expect(error.code == .validationError)
        #expect(
            error.message
                == "Endpoint \"shop\" has no variant \"red\" (X-Amzn-SageMaker-Target-Variant); its variants are blue, green.")
        // Names are exact: no case folding, no trimming.
        #expect(throws: ServalError.self) { try router.route(target: "Blue", using: &random) }
        #expect(throws: ServalError.self) { try router.route(target: "", using: &random) }
    }

    @Test("the same seed gives the same split")
    func deterministic() throws {
        let router = WeightedRouter(endpoint: "e", variants: ["a", "b"], weights: [2, 5])
        #expect(try split(router, count: 1_000, seed: 42) == split(router, count: 1_000, seed: 42))
    }
}
