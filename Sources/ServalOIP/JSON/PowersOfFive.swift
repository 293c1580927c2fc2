/// The table of the Eisel–Lemire algorithm: 5^q for q in −342…308, each as the top 128 bits of a normalised
/// binary approximation (truncated for q ≥ 0, rounded up for q < 0), exactly as `fast_float` builds it.
///
/// Built once, on first use, with ``BigUInt`` (about a millisecond) rather than pasted in as 1,302 literals.
enum PowersOfFive {
    /// The smallest exponent in the table; below it every 19-digit mantissa rounds to zero.
    static let smallestExponent = -342
    /// The largest exponent in the table; above it every nonzero mantissa overflows.
    static let largestExponent = 308

    /// Two words (high, low) per exponent, from ``smallestExponent`` up.
    static let table: [UInt64] = {
        var negative: [(UInt64, UInt64)] = []
        var power = BigUInt(1)
        for exponent in 1...(-smallestExponent) {
            power.multiply(by: 5)
            // power is never a power of two, so its bit width is the smallest z with 2^z >= power.
            let width = power.bitWidth
            let scale = exponent <= 27 ? width + 127 : 2 * width + 128
            var quotient = BigUInt(1)
            quotient.shiftLeft(by: scale)
            quotient.divide(byPowerOfFive: exponent)
            quotient.multiply(by: 1, adding: 1)
            if quotient.bitWidth > 128 { quotient.shiftRight(by: quotient.bitWidth - 128) }
            negative.append(quotient.low128)
        }
        var table: [UInt64] = []
        table.reserveCapacity(2 * (largestExponent - smallestExponent + 1))
        for (high, low) in negative.reversed() { table += [high, low] }
        power = BigUInt(1)
        for exponent in 0...largestExponent {
            if exponent > 0 { power.multiply(by: 5) }
            var normalised = power
            let width = normalised.bitWidth
            if width > 128 { normalised.shiftRight(by: width - 128) } else { normalised.shiftLeft(by: 128 - width) }
            let (high, low) = normalised.low128
            table += [high, low]
        }
        return table
    }()
}
