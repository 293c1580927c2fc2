import Foundation

/// SplitMix64: a small, fast generator whose whole output follows from its seed, so a fuzz input is reproduced
/// from the seed that made it.
public struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    /// Creates the generator for `seed`.
    public init(seed: UInt64) {
        state = seed
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The seeds a fuzz target runs, one input per seed: with `SERVAL_FUZZ_SEED` set, that seed alone (to reproduce a
/// failure); otherwise the fixed seeds `1...fixed`, then seeds drawn from the clock until `SERVAL_FUZZ_SECONDS`
/// (default 2) have passed since the first. Failures name their seed; the random stream's first seed is printed.
public struct FuzzSeeds: Sequence, IteratorProtocol {
    private var remaining: [UInt64]
    private let deadline: ContinuousClock.Instant
    private var random: SeededGenerator?

    /// Creates the seeds of one target, `name` (printed with the random stream's first seed).
    public init(_ name: String, fixed: UInt64 = 32) {
        let environment = ProcessInfo.processInfo.environment
        let seconds = environment["SERVAL_FUZZ_SECONDS"].flatMap(Double.init) ?? 2
        deadline = .now + .milliseconds(Int(seconds * 1000))
        if let seed = environment["SERVAL_FUZZ_SEED"].flatMap(UInt64.init) {
            remaining = [seed]
            random = nil
        } else {
            remaining = Array((1...fixed).reversed())
            let base = UInt64.random(in: 1_000_000...UInt64.max)
            print("fuzz \(name): random seeds drawn from \(base) (SERVAL_FUZZ_SEED=<seed> replays one input)")
            random = SeededGenerator(seed: base)
        }
    }

    /// The next seed, or `nil` when the fixed seeds are done and the time budget is spent.
    public mutating func next() -> UInt64? {
        if let seed = remaining.popLast() { return seed }
        guard ContinuousClock.now < deadline else { return nil }
        return random?.next()
    }
}

extension RandomNumberGenerator {
    /// `true` with probability `1 / n`.
    public mutating func oneIn(_ n: Int) -> Bool {
        Int.random(in: 0..<n, using: &self) == 0
    }
}
